"""The input-pipeline tests' tiny settings: small frames, short clips and audio at 8 kHz, and
one task per modality (pics, clips, sounds), built from the production dataclasses."""

from __future__ import annotations

import dataclasses
from typing import Any

from core.config import Inputs, Task

TINY_INPUTS = Inputs(
    image_size=16,
    video_size=16,
    num_frames=4,
    frame_stride=2,
    audio_seconds=0.5,
    num_mel_bins=16,
    shuffle_buffer=16,
    audio_sample_rate=8000,
)


def tiny_inputs(**fields: Any) -> Inputs:
    """TINY_INPUTS with `fields` replaced."""
    return dataclasses.replace(TINY_INPUTS, **fields)


def modality_tasks(
    image_classes: int, video_classes: int, audio_classes: int, audio_label_type: str = "single"
) -> dict[str, Task]:
    """{modality: task}: `pics` (image), `clips` (video) and `sounds` (audio)."""
    return {
        "image": Task(name="pics", modality="image", num_classes=image_classes),
        "video": Task(name="clips", modality="video", num_classes=video_classes),
        "audio": Task(
            name="sounds",
            modality="audio",
            num_classes=audio_classes,
            label_type=audio_label_type,
        ),
    }
