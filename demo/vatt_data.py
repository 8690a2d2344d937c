"""Demo data for VATT pretraining, where the soundtrack and the captions describe the video.

A digit drifts up, down, left or right, slowly or fast, over a textured background (the motion
demo's renderer, demo/video.py). Its soundtrack is a train of notes: each note's pitch is set
by the digit (a higher digit sounds higher), rises while the digit moves up, falls while it
moves down and stays level for left (one note per beat) and right (two short notes per beat);
the beats come faster for a faster digit. Its captions name the digit, the direction and the
speed, two candidates separated by `|`:

    the digit three moves up fast | a fast 3 going up

    <out>/vatt/videos/<set>_<n>.mp4
    <out>/vatt/pretrain.csv        the pretraining set: no label column (an unlabelled task)
    <out>/vatt/pretrain_eval.csv   the retrieval eval set: every clip a different (digit,
                                   direction, speed), so every query has one right caption
    <out>/vatt/few.csv             the labelled set: `labelled_per_class` clips per direction
    <out>/vatt/few_eval.csv        its eval split

Every `NO_AUDIO_EVERY`-th pretraining clip has no soundtrack and every `NO_CAPTION_EVERY`-th no
caption, so the losses' masks are exercised.

    polyvit make-demo-data DIR --vatt       (or python -m demo.vatt_data DIR [options])
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Callable

import numpy as np

from demo import images, presets, video, writers

ROOT = "vatt"
HEADER = ("video_path", "start", "end", "label", "caption")
UNLABELLED_HEADER = ("video_path", "start", "end", "caption")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIRECTIONS = tuple(video.DIRECTIONS)
# Pixels per frame (at the spec's fps): far enough apart to see and to hear.
SPEEDS = {"slowly": (0.6, 0.9), "fast": (1.7, 2.2)}
NO_AUDIO_EVERY, NO_CAPTION_EVERY = 7, 5
CSVS = ("pretrain.csv", "pretrain_eval.csv", "few.csv", "few_eval.csv")
# Every clip lasts ingestion.clip_seconds of configs/vatt.yaml: one record per video, so no two
# records share a caption by coming from the same video.
CLIP_SECONDS = 2.0

# The soundtrack: a note every beat of BEAT_PIXELS of motion, each NOTE_SECONDS long.
BEAT_PIXELS = 8.0
NOTE_SECONDS = 0.12
LOW_HZ = 330.0  # the note of the digit 0
DIGIT_OCTAVES = 1.0 / 8.0  # octaves between consecutive digits
GLIDE_OCTAVES = 1.0  # how far a note glides up (moving up) or down (moving down)


def captions_for(digit: int, direction: str, speed: str) -> str:
    adjective = "fast" if speed == "fast" else "slow"
    first = f"the digit {NUMBERS[digit]} moves {direction} {speed}"
    return f"{first} | a {adjective} {digit} going {direction}"


def _envelope(n: int, fade: int) -> np.ndarray:
    env = np.ones(n)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
    env[:fade], env[n - fade :] = ramp, ramp[::-1]
    return env


def _note(f0: float, octaves: float, seconds: float, sample_rate: int) -> np.ndarray:
    """A tone gliding exponentially from f0 by `octaves` (0: level) over `seconds`."""
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    if octaves:
        k = octaves * np.log(2.0) / seconds
        phase = 2 * np.pi * f0 * (np.exp(k * t) - 1.0) / k
    else:
        phase = 2 * np.pi * f0 * t
    return np.sin(phase) * _envelope(n, max(1, int(0.005 * sample_rate)))


def soundtrack(
    digit: int, motion: video.Motion, fps: int, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Mono float32 as long as the clip: the note train described above."""
    n = int(round(motion.num_frames / fps * sample_rate))
    wave = rng.normal(0.0, 0.01, size=n)
    f0 = LOW_HZ * 2.0 ** (digit * DIGIT_OCTAVES)
    if motion.direction == "up":
        notes = [(0.0, _note(f0, GLIDE_OCTAVES, NOTE_SECONDS, sample_rate))]
    elif motion.direction == "down":
        top = f0 * 2.0**GLIDE_OCTAVES
        notes = [(0.0, _note(top, -GLIDE_OCTAVES, NOTE_SECONDS, sample_rate))]
    else:
        short = NOTE_SECONDS / 2 if motion.direction == "right" else NOTE_SECONDS
        tone = _note(f0, 0.0, short, sample_rate)
        notes = [(0.0, tone)] if motion.direction == "left" else [(0.0, tone), (0.08, tone)]
    beat = BEAT_PIXELS / (motion.speed * fps)  # seconds
    for begin in np.arange(rng.uniform(0.0, beat), n / sample_rate, beat):
        for onset, sound in notes:
            at = int(round((begin + onset) * sample_rate))
            part = sound[: max(0, n - at)]
            wave[at : at + len(part)] += 0.4 * part
    return np.clip(wave, -1.0, 1.0).astype(np.float32)


def _motion(direction: str, speed: str, rng: np.random.Generator) -> video.Motion:
    spec = presets.VIDEO
    return video.Motion(
        direction=direction,
        start=(round(rng.uniform(0, spec.height), 3), round(rng.uniform(0, spec.width), 3)),
        speed=round(rng.uniform(*SPEEDS[speed]), 3),
        num_frames=int(round(CLIP_SECONDS * spec.fps)),
    )


def _write_clip(
    path: str,
    digit: int,
    motion: video.Motion,
    ink: np.ndarray,
    with_audio: bool,
    rng: np.random.Generator,
) -> None:
    spec = presets.VIDEO
    background = video.textured_background(rng, spec.height, spec.width)
    alpha = video.sprite_alpha(ink, spec.sprite_size)
    color = rng.uniform(190, 255, size=3)
    frames = video.render_clip(motion, background, alpha, color, spec.noise_std, rng)
    sound = soundtrack(digit, motion, spec.fps, spec.audio_sample_rate, rng) if with_audio else None
    video.write_motion_clip(path, frames, spec, sound)


def _combos(name: str, count: int, rng: np.random.Generator, distinct: bool, balanced: bool):
    """(digit, direction, speed) per clip: all different (distinct), `count` per direction
    (balanced) or drawn freely."""
    if distinct:
        every = list(itertools.product(range(10), DIRECTIONS, SPEEDS))
        if count > len(every):
            raise ValueError(f"{name}: at most {len(every)} clips with distinct captions")
        return [every[i] for i in rng.permutation(len(every))[:count]]
    speeds = list(SPEEDS)
    # Pretraining: every direction equally often (up to one), in a random order.
    directions = (
        [d for d in DIRECTIONS for _ in range(count)]
        if balanced
        else [DIRECTIONS[i % 4] for i in rng.permutation(count)]
    )
    return [(int(rng.integers(10)), d, speeds[int(rng.integers(len(speeds)))]) for d in directions]


def _clip_rows(
    root: str,
    name: str,
    combos: list[tuple[int, str, str]],
    seed: int,
    gaps: bool,
    progress: Callable[[int], None],
) -> list[tuple]:
    """CSV rows (path, start, end, direction, caption); `gaps`: some without audio/caption."""
    ink, digits = images.load_digit_ink()
    by_digit = [np.flatnonzero(digits == d) for d in range(10)]
    rows = []
    for k, (digit, direction, speed) in enumerate(combos):
        rng = np.random.default_rng([seed, k, sum(map(ord, name))])
        sample = int(rng.choice(by_digit[digit]))
        motion = _motion(direction, speed, rng)
        no_audio = gaps and k % NO_AUDIO_EVERY == NO_AUDIO_EVERY - 1
        no_caption = gaps and k % NO_CAPTION_EVERY == NO_CAPTION_EVERY - 1
        rel = f"videos/{name}_{k:04d}.mp4"
        _write_clip(os.path.join(root, rel), digit, motion, ink[sample], not no_audio, rng)
        caption = "" if no_caption else captions_for(digit, direction, speed)
        duration = round(motion.num_frames / presets.VIDEO.fps, 3)
        rows.append((rel, 0, duration, direction, caption))
        progress(1)
    return rows


def generate(
    out: str,
    pretrain_clips: int = 240,
    eval_clips: int = 40,
    labelled_per_class: int = 3,
    eval_per_class: int = 12,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, int]:
    """Writes the files above under `out`/vatt; returns the clip count of each CSV."""
    root = os.path.join(out, ROOT)
    rng = np.random.default_rng([seed, 16])
    plans = {
        "pretrain.csv": ("pre", _combos("pretrain", pretrain_clips, rng, False, False), True),
        "pretrain_eval.csv": (
            "preval",
            _combos("pretrain_eval", eval_clips, rng, True, False),
            True,
        ),
        "few.csv": ("few", _combos("few", labelled_per_class, rng, False, True), False),
        "few_eval.csv": ("fewval", _combos("few_eval", eval_per_class, rng, False, True), False),
    }
    total = sum(len(plan[1]) for plan in plans.values())
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(ROOT, done, total)

    counts = {}
    for index, (csv_name, (name, combos, gaps)) in enumerate(plans.items()):
        rows: list[tuple[str, ...]] = list(_clip_rows(root, name, combos, seed + index, gaps, tick))
        header: tuple[str, ...] = HEADER
        if gaps:  # the pretraining sets: unlabelled, the direction is only in the captions
            header, rows = UNLABELLED_HEADER, [(*row[:3], row[4]) for row in rows]
        writers.write_csv(os.path.join(root, csv_name), header, rows)
        counts[csv_name] = len(rows)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.vatt_data", description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--pretrain-clips", type=int, default=240)
    parser.add_argument("--eval-clips", type=int, default=40)
    parser.add_argument("--labelled", type=int, default=3, help="labelled clips per direction")
    parser.add_argument("--eval-per-class", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = generate(
        args.out,
        args.pretrain_clips,
        args.eval_clips,
        args.labelled,
        args.eval_per_class,
        args.seed,
    )
    for name, count in counts.items():
        print(f"{ROOT}/{name}: {count} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
