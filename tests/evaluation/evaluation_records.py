"""Tiny real DMVR records of four tasks (image, video, audio, multi-label audio) laid out as an
Examples artifact (`Split-<split>/<task>-00000-of-00001.gz` + `labels/<task>.txt`), and the
matching tiny config, both from tests/support. Shared by the evaluation tests (Transform, eval
signatures, TFMA, report).
"""

from __future__ import annotations

import numpy as np

from core import config as config_lib
from media.dmvr import parse_sequence_example
from tests.support import configs
from tests.support import records as support_records

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
# Eval tasks with one more record: the first one's media under another label, so no model is
# perfect on them and a threshold of 1.0 always fails (the report test relies on it).
AMBIGUOUS_EVAL_TASKS = ("dtmf",)

SETTINGS = {
    **configs.model_overrides(
        hidden_size=16,
        num_layers=1,
        num_heads=2,
        mlp_dim=32,
        patch_size=4,
        zero_init_heads=False,  # so that scores differ between inputs
    ),
    "ingestion.sample_rate": RATE,
    "inputs.image_size": 8,
    "inputs.video_size": 8,
    "inputs.num_frames": 2,
    "inputs.frame_stride": 1,
    "inputs.audio_seconds": 0.1,
    "inputs.num_mel_bins": 8,
    "inputs.eval_clips": 2,
}


def tiny_config(**overrides) -> config_lib.Config:
    """The four tasks' tiny config; `overrides`: dotted keys, e.g. tasks.dtmf.eval.min_metric."""
    tasks = configs.four_tasks(dtmf_classes=3, tone_mix_classes=6)
    tasks["digits"]["eval"] = {"min_metric": 0.0}
    return configs.tiny_config(tasks, {**SETTINGS, **overrides})


def labels_for(task: str, i: int) -> tuple[str, ...]:
    """Every class appears in 12 train records; a few twice, so frequency order is not sorted
    order. tone_mix (multi-label) has two labels on even records, one on odd ones."""
    vocabulary = VOCABULARIES[task]
    size = len(vocabulary)
    first = vocabulary[(i * 7) % size]
    if task == "tone_mix" and i % 2 == 0:
        return tuple(sorted({first, vocabulary[(i * 7 + 2) % size]}))
    return (first,)


def _waveform(rng, i: int, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    tone = 0.4 * np.sin(2 * np.pi * (300 + 150 * i) * t)
    return np.clip(tone + 0.05 * rng.standard_normal(t.size), -1, 1).astype(np.float32)


def _record(task: str, labels: tuple[str, ...], filename: str, frames=None, waveform=None):
    return support_records.record(
        task=task,
        labels=labels,
        label_indices=[VOCABULARIES[task].index(label) for label in labels],
        frames=frames,
        waveform=waveform,
        sample_rate=RATE,
        filename=filename,
    )


def make_record(task: str, i: int, rng) -> bytes:
    modality = MODALITIES[task]
    frames, waveform = None, None
    if modality == "audio":
        waveform = _waveform(rng, i, 0.15 + 0.05 * (i % 3))
    else:
        frames = support_records.random_jpegs(rng, 1 if modality == "image" else 5, 12, 10, 90)
    return _record(task, labels_for(task, i), f"{task}/{i:03d}.bin", frames, waveform)


def same_media_other_label(task: str, serialized: bytes) -> bytes:
    """The record's media again, labelled with the first label it does not have."""
    clip = parse_sequence_example(serialized)
    other = next(label for label in VOCABULARIES[task] if label not in clip.labels)
    frames = clip.frames or None
    return _record(task, (other,), f"{clip.filename}.relabelled", frames, clip.waveform)


def write_examples(root: str, seed: int = 0) -> dict[str, dict[str, list[bytes]]]:
    """Writes the artifact under `root`; returns {split: {task: [serialized records]}}."""
    rng = np.random.default_rng(seed)
    written: dict[str, dict[str, list[bytes]]] = {}
    for split, count in PER_TASK.items():
        written[split] = {}
        for task in VOCABULARIES:
            offset = 0 if split == "train" else 1000
            written[split][task] = [make_record(task, offset + i, rng) for i in range(count)]
    for task in AMBIGUOUS_EVAL_TASKS:
        eval_records = written["eval"][task]
        eval_records.append(same_media_other_label(task, eval_records[0]))
    support_records.write_examples_artifact(root, written, VOCABULARIES)
    return written
