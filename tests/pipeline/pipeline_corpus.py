"""Tiny real media for the pipeline tests (written by tests/support/media.py) and its config.

The corpus has three tasks, one per modality and layout, with their own train/eval splits:
    shapes/  image, class folders:  train/<class>/*.png, val/<class>/*.png
    moves/   video, class folders:  train/<class>/*.mp4, val/<class>/*.mp4  (1 s H.264)
    beeps/   audio, DMVR CSV:       train.csv, eval.csv naming wav/*.wav (1 s, 16-bit PCM)
    sweeps/  audio, DMVR records:   existing records (no task name, another tool's label
                                    numbering), train-00000-of-00001 uncompressed and
                                    eval-00000-of-00001 gzip, neither with a suffix
plus one text file renamed `.png` in a class folder, which ingestion must quarantine.
"""

from __future__ import annotations

import os

import numpy as np

from core import config as config_lib
from core import features
from tests.support import configs, media, records

# (task, split, class) -> number of files; the eval splits use every train class.
IMAGES = {
    ("train", "circle"): 2,
    ("train", "square"): 2,
    ("val", "circle"): 1,
    ("val", "square"): 1,
}
VIDEOS = {("train", "left"): 1, ("train", "right"): 1, ("val", "left"): 1, ("val", "right"): 1}
BEEPS = {("train", "low"): 2, ("train", "high"): 2, ("eval", "low"): 1, ("eval", "high"): 1}
RECORDS = {("train", "up"): 2, ("train", "down"): 2, ("eval", "up"): 1, ("eval", "down"): 1}
# Another tool's numbering of the records' labels; ingestion re-keys them by text.
FOREIGN_INDEX = {"up": 11, "down": 4}
BAD_IMAGE = "shapes/train/circle/notes.png"
VIDEO_FPS, VIDEO_SECONDS, AUDIO_RATE = 8, 1.0, 8000


def _png(path: str, value: int) -> None:
    pixels = np.zeros((24, 32, 3), np.uint8)
    pixels[4:20, 8:24] = value
    media.write_image(path, pixels)


def _mp4(path: str, direction: int) -> None:
    """A bright square moving left (-1) or right (+1), 32x32, H.264."""
    frames = media.moving_square_frames(round(VIDEO_FPS * VIDEO_SECONDS), direction)
    media.write_frames(path, frames, VIDEO_FPS)


def _wav(path: str, hz: float) -> None:
    media.write_wav(path, seconds=1.0, rate=AUDIO_RATE, tone_hz=hz)


def write_corpus(root: str) -> dict[str, dict[str, int]]:
    """Writes the corpus below `root`; returns the good inputs per task and split."""
    for (split, label), count in IMAGES.items():
        for i in range(count):
            _png(os.path.join(root, "shapes", split, label, f"{i}.png"), 100 + 50 * i)
    media.write_text(os.path.join(root, BAD_IMAGE), "not an image, only a file named like one\n")
    for (split, label), count in VIDEOS.items():
        for i in range(count):
            _mp4(
                os.path.join(root, "moves", split, label, f"{i}.mp4"), 1 if label == "right" else -1
            )
    rows: dict[str, list[str]] = {"train": [], "eval": []}
    for (split, label), count in BEEPS.items():
        for i in range(count):
            name = f"wav/{split}_{label}_{i}.wav"
            _wav(os.path.join(root, "beeps", name), 300.0 if label == "low" else 1200.0 + 100 * i)
            rows[split].append(f"{name},0,1,{label}")
    for split, lines in rows.items():
        text = "video_path,start,end,label\n" + "\n".join(lines) + "\n"
        media.write_text(os.path.join(root, "beeps", f"{split}.csv"), text)
    _write_records(os.path.join(root, "sweeps"))
    expected: dict[str, dict[str, int]] = {}
    tables = (("shapes", IMAGES), ("moves", VIDEOS), ("beeps", BEEPS), ("sweeps", RECORDS))
    for task, table in tables:
        for (split, _), count in table.items():
            split_name = features.EVAL if split in ("val", "eval") else features.TRAIN
            per_split = expected.setdefault(task, {features.TRAIN: 0, features.EVAL: 0})
            per_split[split_name] += count
    return expected


def _write_records(folder: str) -> None:
    """DMVR records of 1 s sines (rising for "up", falling for "down") as another tool wrote
    them: labels by text with its own indices, no `task/name`."""
    for split, compression in (("train", "none"), ("eval", "gzip")):
        serialized = []
        for (in_split, label), count in RECORDS.items():
            for i in range(count):
                if in_split != split:
                    continue
                hz = (
                    np.linspace(300, 900, AUDIO_RATE)
                    if label == "up"
                    else np.linspace(900, 300, AUDIO_RATE)
                )
                wave = 0.4 * np.sin(2 * np.pi * np.cumsum(hz + 50 * i) / AUDIO_RATE)
                example = records.sequence_example(
                    labels=[label],
                    label_indices=[FOREIGN_INDEX[label]],
                    waveform=wave.astype(np.float32),
                    sample_rate=AUDIO_RATE,
                    filename=f"sweeps/{split}_{label}_{i}.wav",
                )
                del example.context.feature[features.TASK]
                serialized.append(example.SerializeToString())
        records.write_tfrecords(
            os.path.join(folder, f"{split}-00000-of-00001"), serialized, compression
        )


def _folders(root: str) -> dict:
    return {"root": root, "layout": "folders", "train": "train", "eval": "val"}


def corpus_config_dict(data_root: str, pipeline_root: str) -> dict:
    """A config for the corpus (the YAML layout of configs/*.yaml, as a dict)."""
    return {
        "pipeline_name": "polyvit-test",
        "data_root": data_root,
        "pipeline_root": pipeline_root,
        "tasks": {
            "shapes": configs.task("image", 2, data=_folders("shapes")),
            "moves": configs.task("video", 2, data=_folders("moves")),
            "beeps": configs.task(
                "audio",
                2,
                data={
                    "root": "beeps",
                    "layout": "dmvr_csv",
                    "train": "train.csv",
                    "eval": "eval.csv",
                },
            ),
            "sweeps": configs.task(
                "audio",
                2,
                data={
                    "root": "sweeps",
                    "layout": "dmvr_records",
                    "train": "train-*",
                    "eval": "eval-*",
                },
            ),
        },
        # One bad input of 19 must stay below the threshold.
        "ingestion": {
            "fps": 4,
            "short_side": 16,
            "clip_seconds": 1.0,
            "sample_rate": AUDIO_RATE,
            "max_bad_fraction": 0.2,
        },
        # One Beam worker: the tests share 2 cores with other work.
        "beam_pipeline_args": ["--direct_num_workers=1"],
        # The model stages run too; a few steps show they are wired (the demo trains for real).
        "training": {"steps": 6, "warmup_steps": 2, "log_every": 3, "eval_steps": 2},
        "serving": {"push_dir": f"{pipeline_root}/serving"},
    }


def corpus_config(data_root: str, pipeline_root: str = "") -> config_lib.Config:
    return configs.build(corpus_config_dict(data_root, pipeline_root))
