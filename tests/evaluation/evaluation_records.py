"""Tiny real DMVR records of four tasks (image, video, audio, multi-label audio) laid out as an
Examples artifact (`Split-<split>/<task>-00000-of-00001.gz` + `labels/<task>.txt`), and the
matching tiny config. Shared by the evaluation tests (Transform, eval signatures, TFMA, report).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from core import config as config_lib
from core import features as keys
from media.decode import DecodedClip
from media.dmvr import ClipMetadata, build_sequence_example

RATE = 16000
VOCABULARIES = {
    # Deliberately not in frequency order (see labels_for): the vocabulary must still be sorted.
    "digits": ["eight", "five", "four", "nine", "one", "seven", "six", "three", "two", "zero"],
    "motion": ["down", "left", "right", "up"],
    "dtmf": ["a", "b", "c"],
    "tone_mix": ["high", "low", "mid", "noise", "pulse", "sweep"],
}
MODALITIES = {"digits": "image", "motion": "video", "dtmf": "audio", "tone_mix": "audio"}
PER_TASK = {"train": 12, "eval": 10}


def tiny_config(**overrides) -> config_lib.Config:
    data = {
        "tasks": {
            "digits": {
                "modality": "image",
                "data": {"root": "d"},
                "num_classes": 10,
                "eval": {"min_metric": 0.0},
            },
            "motion": {"modality": "video", "data": {"root": "m"}, "num_classes": 4},
            "dtmf": {"modality": "audio", "data": {"root": "a"}, "num_classes": 3},
            "tone_mix": {
                "modality": "audio",
                "data": {"root": "t"},
                "num_classes": 6,
                "label_type": "multi",
            },
        },
        "model": {
            "preset": "tiny",
            "overrides": {
                "hidden_size": 16,
                "num_layers": 1,
                "num_heads": 2,
                "mlp_dim": 32,
                "patch_size": 4,
                "zero_init_heads": False,  # so that scores differ between inputs
            },
        },
        "ingestion": {"sample_rate": RATE},
        "inputs": {
            "image_size": 8,
            "video_size": 8,
            "num_frames": 2,
            "frame_stride": 1,
            "audio_seconds": 0.1,
            "num_mel_bins": 8,
            "eval_clips": 2,
        },
    }
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return config_lib.from_dict(data)


def labels_for(task: str, i: int) -> tuple[str, ...]:
    """Every class appears in 12 train records; a few twice, so frequency order is not sorted
    order. tone_mix (multi-label) has two labels on even records, one on odd ones."""
    vocabulary = VOCABULARIES[task]
    size = len(vocabulary)
    first = vocabulary[(i * 7) % size]
    if task == "tone_mix" and i % 2 == 0:
        return tuple(sorted({first, vocabulary[(i * 7 + 2) % size]}))
    return (first,)


def _jpegs(rng, count: int) -> list[bytes]:
    frames = rng.integers(0, 256, size=(count, 12, 10, 3), dtype=np.uint8)
    return [tf.io.encode_jpeg(f, quality=90).numpy() for f in frames]


def _waveform(rng, i: int, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    tone = 0.4 * np.sin(2 * np.pi * (300 + 150 * i) * t)
    return np.clip(tone + 0.05 * rng.standard_normal(t.size), -1, 1).astype(np.float32)


def make_record(task: str, i: int, rng) -> bytes:
    modality = MODALITIES[task]
    frames = _jpegs(rng, 1 if modality == "image" else 5) if modality != "audio" else []
    waveform = _waveform(rng, i, 0.15 + 0.05 * (i % 3)) if modality == "audio" else None
    clip = DecodedClip(
        start_s=0.0,
        end_s=1.0,
        frames=frames,
        frame_rate=8.0 if frames else 0.0,
        width=10 if frames else 0,
        height=12 if frames else 0,
        waveform=waveform,
        sample_rate=RATE if waveform is not None else 0,
    )
    labels = labels_for(task, i)
    meta = ClipMetadata(
        task=task,
        filename=f"{task}/{i:03d}.bin",
        start_us=0,
        end_us=1_000_000,
        labels=labels,
        label_indices=tuple(VOCABULARIES[task].index(label) for label in labels),
    )
    return build_sequence_example(clip, meta).SerializeToString()


def write_examples(root: str, seed: int = 0) -> dict[str, dict[str, list[bytes]]]:
    """Writes the artifact under `root`; returns {split: {task: [serialized records]}}."""
    rng = np.random.default_rng(seed)
    written: dict[str, dict[str, list[bytes]]] = {}
    for split, count in PER_TASK.items():
        os.makedirs(keys.split_dir(root, split), exist_ok=True)
        written[split] = {}
        for task in VOCABULARIES:
            offset = 0 if split == "train" else 1000
            records = [make_record(task, offset + i, rng) for i in range(count)]
            path = os.path.join(keys.split_dir(root, split), f"{task}-00000-of-00001.gz")
            with tf.io.TFRecordWriter(path, options="GZIP") as writer:
                for record in records:
                    writer.write(record)
            written[split][task] = records
    os.makedirs(os.path.join(root, "labels"), exist_ok=True)
    for task, vocabulary in VOCABULARIES.items():
        with open(keys.vocabulary_path(root, task), "w") as f:
            f.write("".join(f"{label}\n" for label in vocabulary))
    return written
