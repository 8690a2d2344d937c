"""DMVR-layout records for the schema and gate tests (placeholder JPEG bytes, no media decoding),
built by tests/support/records.py, and the config of their tasks."""

from __future__ import annotations

import os

from core import features
from tests.support import configs
from tests.support import records as support_records

PLACEHOLDER_JPEG = b"\xff\xd8jpeg\xff\xd9"


def sequence_example(
    task: str,
    labels: list[str],
    *,
    frames: int | None = None,
    waveform: list[float] | None = None,
    sample_rate: int = 8000,
) -> bytes:
    """One record: `frames` JPEG placeholders (0: an empty frame list) and/or a waveform."""
    return support_records.record(
        task=task,
        labels=labels,
        frames=None if frames is None else [PLACEHOLDER_JPEG] * frames,
        waveform=waveform,
        sample_rate=sample_rate,
        filename=f"{task}/{labels[0] if labels else 'unlabelled'}.bin",
    )


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
    tasks = {task: configs.task(modality, 4, task) for task, modality in MODALITIES.items()}
    tasks["tone_mix"]["label_type"] = "multi"
    return {"pipeline_name": "polyvit-records", "tasks": tasks}


def write_split(root: str, split: str, records: list[bytes]) -> str:
    """Writes gzip TFRecords to `<root>/<split>/records.gz` (ImportExampleGen's input layout)."""
    return support_records.write_tfrecords(os.path.join(root, split, "records.gz"), records)
