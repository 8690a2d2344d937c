"""Builds the four demo datasets under one folder and describes them in `manifest.json`.

Each dataset (and each file in it) draws from its own random stream derived from the seed, so
the output does not depend on the order of generation and the same seed gives the same bytes.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from demo import audio, images, presets, video, writers
from demo.presets import Scale

SPLITS = ("train", "eval")
_STREAM_IDS = {name: i for i, name in enumerate(presets.DATASETS)}
Progress = Callable[[str, int, int], None]  # (dataset, files done, files total)


def _rng(seed: int, dataset: str, *keys: int) -> np.random.Generator:
    """An independent random stream per (seed, dataset, keys...)."""
    return np.random.default_rng([seed, _STREAM_IDS[dataset], *keys])


@dataclass
class DatasetResult:
    name: str
    modality: str
    files_per_split: dict[str, int]
    manifest: dict
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def _no_progress(dataset: str, done: int, total: int) -> None:
    pass


# --------------------------------------------------------------------------------------------
# digits: digits/{train,val}/<label>/*.png|jpg. Every source digit lands in one split only;
# each training source is drawn `digit_renditions` times (a new rotation, scale, shift, tint and
# noise each time), each held-out one once.


def make_digits(out_dir: str, scale: Scale, seed: int, progress: Progress) -> DatasetResult:
    spec = presets.IMAGE
    ink, labels = images.load_digit_ink()
    picks = images.pick_per_class(labels, scale.images_per_class, _rng(seed, presets.DIGITS))
    held_out = scale.digit_eval_per_class
    train_per_class = (scale.images_per_class - held_out) * scale.digit_renditions
    total = 10 * (train_per_class + held_out)
    files = []
    for digit, indices in enumerate(picks):
        label = images.DIGIT_LABELS[digit]
        for i, sample in enumerate(indices):
            split = "eval" if i < held_out else "train"
            for r in range(1 if split == "eval" else scale.digit_renditions):
                n = i * scale.digit_renditions + r  # unique per class, sets the file's kind
                rng = _rng(seed, presets.DIGITS, 1, digit, i, r)
                grayscale = n % 3 == 2
                pixels = images.augmented_digit(ink[sample], rng, spec, grayscale=grayscale)
                ext = "jpg" if n % spec.jpeg_every == spec.jpeg_every - 1 else "png"
                folder = presets.DIGITS_SPLIT_DIRS[split]
                rel = f"{presets.DIGITS}/{folder}/{label}/digit{label}_{i:04d}_{r}.{ext}"
                writers.write_image(os.path.join(out_dir, rel), pixels, spec.jpeg_quality)
                files.append(
                    {
                        "path": rel,
                        "split": split,
                        "label": label,
                        "width": int(pixels.shape[1]),
                        "height": int(pixels.shape[0]),
                        "channels": 1 if grayscale else 3,
                        "source_index": sample,
                    }
                )
                progress(presets.DIGITS, len(files), total)
    manifest = {
        "modality": "image",
        "layout": "folders",
        "labels": list(images.DIGIT_LABELS),
        "split_dirs": presets.DIGITS_SPLIT_DIRS,
        "files": files,
    }
    counts = {s: sum(f["split"] == s for f in files) for s in SPLITS}
    return DatasetResult(presets.DIGITS, "image", counts, manifest)


# --------------------------------------------------------------------------------------------
# motion: motion/{train,val}/<direction>/*.mp4, a third of them with a matching soundtrack.


def make_motion(out_dir: str, scale: Scale, seed: int, progress: Progress) -> DatasetResult:
    spec = presets.VIDEO
    ink, _ = images.load_digit_ink()
    directions = list(video.DIRECTIONS)
    total = len(directions) * sum(scale.clips_per_direction.values())
    files, counts = [], {}
    for s, split in enumerate(SPLITS):
        folder = presets.MOTION_SPLIT_DIRS[split]
        counts[split] = 0
        for d, direction in enumerate(directions):
            for i in range(scale.clips_per_direction[split]):
                rng = _rng(seed, presets.MOTION, s, d, i)
                sample = int(rng.integers(len(ink)))
                frames, motion = video.synthesize_clip(direction, ink[sample], rng, spec)
                has_audio = i % spec.audio_every == 0
                sound = None
                if has_audio:
                    sound = video.motion_audio(motion, spec.fps, spec.audio_sample_rate, rng)
                suffix = "_av" if has_audio else ""
                rel = f"{presets.MOTION}/{folder}/{direction}/{direction}_{i:04d}{suffix}.mp4"
                video.write_motion_clip(os.path.join(out_dir, rel), frames, spec, sound)
                files.append(
                    {
                        "path": rel,
                        "split": split,
                        "label": direction,
                        "num_frames": motion.num_frames,
                        "duration": motion.num_frames / spec.fps,
                        "has_audio": has_audio,
                        "start": list(motion.start),
                        "velocity": [round(v, 3) for v in motion.velocity],
                        "digit_index": sample,
                    }
                )
                counts[split] += 1
                progress(presets.MOTION, len(files), total)
    manifest = {
        "modality": "video",
        "layout": "folders",
        "labels": directions,
        "split_folders": dict(presets.MOTION_SPLIT_DIRS),
        "fps": spec.fps,
        "width": spec.width,
        "height": spec.height,
        "codec": "h264",
        "pix_fmt": "yuv420p",
        "audio": {"codec": "aac", "sample_rate": spec.audio_sample_rate, "channels": 1},
        "notes": "start is the sprite centre (row, column) in frame 0 and velocity is in pixels "
        "per frame (rows grow downwards); the sprite wraps around the frame edges. Clips with "
        "has_audio (names ending in _av) carry a soundtrack that matches the motion: rising "
        "chirps (up), falling chirps (down), single pulses (left), double pulses (right).",
        "files": files,
    }
    return DatasetResult(presets.MOTION, "video", counts, manifest)


# --------------------------------------------------------------------------------------------
# dtmf: dtmf/{train,eval}.csv (video_path,start,end,label) over dtmf/audio/*.wav|flac.


def make_dtmf(out_dir: str, scale: Scale, seed: int, progress: Progress) -> DatasetResult:
    spec = presets.DTMF_AUDIO
    total = len(audio.DTMF_KEYS) * sum(scale.clips_per_key.values())
    files, counts = [], {}
    for s, split in enumerate(SPLITS):
        rows = []
        for k, key in enumerate(audio.DTMF_KEYS):
            for i in range(scale.clips_per_key[split]):
                clip = audio.dtmf_clip(key, _rng(seed, presets.DTMF, s, k, i), spec)
                # File numbers run across splits so that names are unique in the one folder.
                number = i + (scale.clips_per_key["train"] if split == "eval" else 0)
                ext = "flac" if number % spec.flac_every == spec.flac_every - 1 else "wav"
                media = f"{presets.AUDIO_DIR}/k{key}_{number:04d}.{ext}"
                writers.write_audio(
                    os.path.join(out_dir, presets.DTMF, media), clip.wave, spec.sample_rate
                )
                rows.append((media, f"{clip.start:.3f}", f"{clip.end:.3f}", key))
                files.append(
                    {
                        "path": f"{presets.DTMF}/{media}",
                        "split": split,
                        "label": key,
                        "start": clip.start,
                        "end": clip.end,
                        "duration": len(clip.wave) / spec.sample_rate,
                        "distractor": clip.distractor,
                        "distractor_start": clip.distractor_start,
                    }
                )
                progress(presets.DTMF, len(files), total)
        csv_path = os.path.join(out_dir, presets.DTMF, presets.DTMF_CSVS[split])
        writers.write_csv(csv_path, ("video_path", "start", "end", "label"), rows)
        counts[split] = len(rows)
    manifest = {
        "modality": "audio",
        "layout": "dmvr_csv",
        "labels": list(audio.DTMF_KEYS),
        "csv": dict(presets.DTMF_CSVS),
        "sample_rate": spec.sample_rate,
        "channels": 1,
        "frequencies_hz": {k: list(v) for k, v in audio.DTMF_FREQUENCIES.items()},
        "notes": "CSV paths are relative to dtmf/. The key sounds in [start, end] seconds; "
        "some files also sound a distractor key outside that window, so only a reader that "
        "honours start/end gets their label right.",
        "files": files,
    }
    return DatasetResult(presets.DTMF, "audio", counts, manifest)


# --------------------------------------------------------------------------------------------
# tone_mix: AudioSet layout, segments CSVs + class_labels_indices.csv + audio/<YTID>.flac|wav.

_YTID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
_YTID_LENGTH = 11
_MAX_VIDEO_START = 290  # segment starts in the (imaginary) source videos, whole seconds


def random_ytids(count: int, rng: np.random.Generator) -> list[str]:
    """`count` distinct YouTube-like 11-character ids."""
    ids: list[str] = []
    seen = set()
    while len(ids) < count:
        ytid = "".join(rng.choice(_YTID_ALPHABET, size=_YTID_LENGTH))
        if ytid not in seen:
            seen.add(ytid)
            ids.append(ytid)
    return ids


def make_tone_mix(out_dir: str, scale: Scale, seed: int, progress: Progress) -> DatasetResult:
    spec = presets.TONE_MIX_AUDIO
    classes = audio.TONE_MIX_CLASSES
    root = os.path.join(out_dir, presets.TONE_MIX)
    ytids = random_ytids(sum(scale.mixtures.values()), _rng(seed, presets.TONE_MIX))
    total = len(ytids)
    files, counts, number = [], {}, 0
    for s, split in enumerate(SPLITS):
        rows = []
        for i in range(scale.mixtures[split]):
            rng = _rng(seed, presets.TONE_MIX, 1, s, i)
            labels = audio.mixture_labels(i, rng, spec.max_labels)
            wave = audio.tone_mixture(labels, rng, spec)
            ytid = ytids[number]
            ext = "wav" if number % spec.wav_every == spec.wav_every - 1 else "flac"
            number += 1
            rel = f"{presets.TONE_MIX}/{presets.AUDIO_DIR}/{ytid}.{ext}"
            writers.write_audio(os.path.join(out_dir, rel), wave, spec.sample_rate)
            # As in AudioSet, start/end locate the segment in its source video; the file holds
            # just the segment.
            start = float(rng.integers(0, _MAX_VIDEO_START))
            end = start + spec.segment_seconds
            mids = [classes[c].mid for c in labels]
            rows.append((ytid, start, end, mids))
            files.append(
                {
                    "path": rel,
                    "ytid": ytid,
                    "split": split,
                    "labels": mids,
                    "label_names": [classes[c].display_name for c in labels],
                    "start": start,
                    "end": end,
                    "duration": len(wave) / spec.sample_rate,
                }
            )
            progress(presets.TONE_MIX, len(files), total)
        csv_path = os.path.join(root, presets.TONE_MIX_CSVS[split])
        writers.write_audioset_segments(csv_path, "polyvit make-demo-data", rows)
        counts[split] = len(rows)
    writers.write_class_labels(
        os.path.join(root, presets.TONE_MIX_LABELS_CSV),
        [(c.mid, c.display_name) for c in classes],
    )
    manifest = {
        "modality": "audio",
        "layout": "audioset_csv",
        "label_type": "multi",
        "labels": [
            {"index": i, "mid": c.mid, "display_name": c.display_name}
            for i, c in enumerate(classes)
        ],
        "csv": dict(presets.TONE_MIX_CSVS),
        "label_names_csv": presets.TONE_MIX_LABELS_CSV,
        "media_dir": presets.AUDIO_DIR,
        "sample_rate": spec.sample_rate,
        "channels": 1,
        "notes": "As in AudioSet downloads, each file is the already-cut segment: start/end in "
        "the CSVs are offsets in the source video, not in the file. Every sound of a clip "
        "recurs at least every 0.5 s, so any crop of 1 s or more carries all its labels.",
        "files": files,
    }
    return DatasetResult(presets.TONE_MIX, "audio", counts, manifest)


BUILDERS = {
    presets.DIGITS: make_digits,
    presets.MOTION: make_motion,
    presets.DTMF: make_dtmf,
    presets.TONE_MIX: make_tone_mix,
}


# --------------------------------------------------------------------------------------------


def _clear_previous(out_dir: str, force: bool) -> None:
    """Removes an earlier generation's dataset folders, so that no stale file survives.

    Folders we did not make (no manifest.json beside them) are only removed with `force`.
    """
    ours = os.path.exists(os.path.join(out_dir, presets.MANIFEST))
    existing = [d for d in presets.DATASETS if os.path.exists(os.path.join(out_dir, d))]
    if existing and not (ours or force):
        raise FileExistsError(
            f"{out_dir}: already holds {', '.join(existing)} but no {presets.MANIFEST}; "
            "refusing to overwrite data that make-demo-data did not write (pass --force)"
        )
    for name in existing:
        shutil.rmtree(os.path.join(out_dir, name))
    if ours:
        os.remove(os.path.join(out_dir, presets.MANIFEST))


def generate(
    out_dir: str,
    scale: str | Scale = "small",
    seed: int = 0,
    force: bool = False,
    progress: Progress | None = None,
) -> list[DatasetResult]:
    """Writes every demo dataset and `manifest.json` under out_dir; returns one result each.
    `scale`: a preset's name (presets.SCALES) or the sizes themselves (demo/spans.py)."""
    if isinstance(scale, Scale):
        chosen = scale
    elif scale in presets.SCALES:
        chosen = presets.SCALES[scale]
    else:
        raise ValueError(f"scale: {scale!r} is not one of {sorted(presets.SCALES)}")
    os.makedirs(out_dir, exist_ok=True)
    _clear_previous(out_dir, force)
    results = []
    for build in BUILDERS.values():
        began = time.perf_counter()
        result = build(out_dir, chosen, seed, progress or _no_progress)
        result.seconds = time.perf_counter() - began
        results.append(result)
    manifest = {
        "generator": "polyvit make-demo-data",
        "seed": seed,
        "scale": chosen.name,
        "datasets": {r.name: r.manifest for r in results},
    }
    # Written last: its presence marks a complete generation.
    writers.write_json(os.path.join(out_dir, presets.MANIFEST), manifest)
    return results
