"""Sizes and media parameters of the demo datasets: the one place to tune `make-demo-data`.

The dataset names and file names here must match `configs/demo.yaml` (tests check that).
"""

from __future__ import annotations

from dataclasses import dataclass

# Dataset roots and split names, as `configs/demo.yaml` expects them.
DIGITS = "digits"
MOTION = "motion"
DTMF = "dtmf"
TONE_MIX = "tone_mix"
DATASETS = (DIGITS, MOTION, DTMF, TONE_MIX)
MANIFEST = "manifest.json"

DIGITS_SPLIT_DIRS = {"train": "train", "eval": "val"}
MOTION_SPLIT_DIRS = {"train": "train", "eval": "val"}
DTMF_CSVS = {"train": "train.csv", "eval": "eval.csv"}
TONE_MIX_CSVS = {"train": "balanced_train_segments.csv", "eval": "eval_segments.csv"}
TONE_MIX_LABELS_CSV = "class_labels_indices.csv"
AUDIO_DIR = "audio"


@dataclass(frozen=True)
class ImageSpec:
    # (width, height) choices: the images need not be square nor all the same size.
    sizes: tuple[tuple[int, int], ...] = ((40, 48), (48, 48), (44, 40))
    max_shift: float = 3.0  # pixels, in the upscaled image
    max_rotation: float = 12.0  # degrees
    scale_range: tuple[float, float] = (0.85, 1.15)
    noise_std: tuple[float, float] = (2.0, 12.0)  # grey levels, drawn per image
    jpeg_quality: int = 90
    jpeg_every: int = 2  # every n-th image of a class is a JPEG, the others PNG


@dataclass(frozen=True)
class VideoSpec:
    width: int = 64
    height: int = 48
    fps: int = 16
    durations: tuple[float, ...] = (2.0, 2.5, 3.0)  # seconds, drawn per clip
    sprite_size: int = 16  # the 8x8 digit, upscaled
    speed_range: tuple[float, float] = (0.8, 2.0)  # pixels per frame
    noise_std: float = 4.0  # per-frame sensor noise, grey levels
    crf: int = 20
    audio_every: int = 3  # every n-th clip of a class carries a matching audio track
    audio_sample_rate: int = 16000
    audio_bitrate: int = 48000


@dataclass(frozen=True)
class DtmfSpec:
    sample_rate: int = 16000
    durations: tuple[float, float] = (2.5, 3.0)  # seconds of noise per file
    tone_seconds: tuple[float, float] = (0.9, 1.1)  # length of the labelled [start, end] window
    snr_db: tuple[float, float] = (5.0, 20.0)
    # Share of files with a second, shorter key tone outside the labelled window: only a
    # reader that honours start/end gets the right label for those.
    distractor_fraction: float = 0.5
    distractor_seconds: float = 0.3
    min_gap_seconds: float = 0.3  # silence (noise) between the window and the distractor
    flac_every: int = 2  # every n-th file of a key is FLAC, the others WAV


@dataclass(frozen=True)
class ToneMixSpec:
    sample_rate: int = 16000
    # AudioSet segments are 10 s cut from longer videos; shorter keeps the demo light. Every
    # sound in a mixture recurs at least every 0.5 s, so any 1 s crop carries all its labels.
    segment_seconds: float = 4.0
    max_labels: int = 3
    snr_db: tuple[float, float] = (10.0, 25.0)
    wav_every: int = 4  # every n-th file is WAV, the others FLAC


@dataclass(frozen=True)
class Scale:
    name: str
    images_per_class: int  # distinct source digits per class, over both splits
    digit_eval_per_class: int  # of those, held out for the eval split (drawn once each)
    digit_renditions: int  # images drawn from each training source digit
    clips_per_direction: dict[str, int]  # per split
    clips_per_key: dict[str, int]  # per split
    mixtures: dict[str, int]  # per split


SCALES: dict[str, Scale] = {
    # For tests: the whole generation takes a few seconds.
    "small": Scale(
        name="small",
        images_per_class=3,
        digit_eval_per_class=1,
        digit_renditions=2,
        clips_per_direction={"train": 2, "eval": 2},
        clips_per_key={"train": 2, "eval": 1},
        mixtures={"train": 12, "eval": 6},
    ),
    # For the demo: a tiny transformer reaches high accuracy in minutes on 2 CPU cores.
    "full": Scale(
        name="full",
        images_per_class=170,  # of the 174-183 per digit that scikit-learn ships
        digit_eval_per_class=34,
        # A from-scratch ViT overfits 136 fixed images per digit; new draws of the same
        # digits are what lifts it to ~0.95 (one eval image per held-out digit).
        digit_renditions=4,
        clips_per_direction={"train": 50, "eval": 12},
        clips_per_key={"train": 32, "eval": 8},
        mixtures={"train": 240, "eval": 60},
    ),
}

IMAGE = ImageSpec()
VIDEO = VideoSpec()
DTMF_AUDIO = DtmfSpec()
TONE_MIX_AUDIO = ToneMixSpec()
