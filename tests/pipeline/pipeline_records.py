"""Hand-made DMVR-layout SequenceExamples for schema and gate tests (no media decoding)."""

from __future__ import annotations

import os

import tensorflow as tf

from core import features


def sequence_example(
    task: str,
    labels: list[str],
    *,
    frames: int | None = None,
    waveform: list[float] | None = None,
    sample_rate: int = 8000,
) -> bytes:
    """One record: `frames` JPEG placeholders (0: an empty frame list) and/or a waveform."""
    example = tf.train.SequenceExample()
    context = example.context.feature
    context[features.TASK].bytes_list.value.append(task.encode())
    context[features.LABEL_TEXT].bytes_list.value.extend(label.encode() for label in labels)
    context[features.LABEL_INDEX].int64_list.value.extend(range(len(labels)))
    context[features.FILENAME].bytes_list.value.append(f"{task}/{labels[0]}.bin".encode())
    context[features.START_US].int64_list.value.append(0)
    context[features.END_US].int64_list.value.append(1_000_000)
    if frames is not None:
        frame_list = example.feature_lists.feature_list[features.IMAGE_ENCODED]
        for _ in range(frames):
            frame_list.feature.add().bytes_list.value.append(b"\xff\xd8jpeg\xff\xd9")
        context[features.FRAME_RATE].float_list.value.append(8.0)
    if waveform is not None:
        wave_list = example.feature_lists.feature_list[features.WAVEFORM]
        wave_list.feature.add().float_list.value.extend(waveform)
        context[features.SAMPLE_RATE].int64_list.value.append(sample_rate)
    return example.SerializeToString()


def good_split(split: str) -> list[bytes]:
    """Records like the demo's: images (1 frame), videos (4 frames), audio, multi-label audio."""
    n = 3 if split == features.TRAIN else 1
    records = []
    for i in range(n):
        records.append(sequence_example("digits", [str(i % 2)], frames=1))
        records.append(sequence_example("motion", ["up" if i % 2 else "down"], frames=4))
        records.append(sequence_example("dtmf", ["5"], waveform=[0.0, 0.5, -0.5]))
        records.append(sequence_example("tone_mix", ["a", "b"], waveform=[0.1, -0.1]))
    return records


TASKS = ["digits", "motion", "dtmf", "tone_mix"]
MODALITIES = {"digits": "image", "motion": "video", "dtmf": "audio", "tone_mix": "audio"}


def records_config_dict() -> dict:
    """A config whose tasks are the ones of `good_split` (data paths unused)."""
    tasks = {
        task: {"modality": modality, "data": {"root": task}, "num_classes": 4}
        for task, modality in MODALITIES.items()
    }
    tasks["tone_mix"]["label_type"] = "multi"
    return {"pipeline_name": "polyvit-records", "tasks": tasks}


def write_split(root: str, split: str, records: list[bytes]) -> str:
    """Writes gzip TFRecords to `<root>/<split>/records.gz` (ImportExampleGen's input layout)."""
    os.makedirs(os.path.join(root, split), exist_ok=True)
    path = os.path.join(root, split, "records.gz")
    with tf.io.TFRecordWriter(path, "GZIP") as writer:
        for record in records:
            writer.write(record)
    return path
