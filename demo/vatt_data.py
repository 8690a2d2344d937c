"""Demo data for VATT pretraining: a digit moving in one of four directions, a soundtrack that
follows the motion (rising chirps up, falling down, single / double pulses left / right: the
motion demo's soundtracks) and captions that name the digit and the direction.

    <out>/vatt/videos/<id>.mp4
    <out>/vatt/pretrain.csv, pretrain_eval.csv   the large set for pretraining (its label
                                                  column, the direction, is not used by
                                                  pretraining; the ingestion schema wants one)
    <out>/vatt/few.csv, few_eval.csv              the labelled set: `labelled_per_class` clips
                                                  per direction for fine-tuning

Every `no_audio_every`-th pretraining clip has no soundtrack and every `no_caption_every`-th
no caption, so the masks are exercised. Captions: two candidates separated by `|`.

    python -m demo.vatt_data OUT [--per-direction 24] [--labelled 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from demo import images, presets, video, writers

HEADER = ("video_path", "start", "end", "label", "caption")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def captions_for(digit: int, direction: str) -> str:
    return f"the digit {NUMBERS[digit]} moves {direction} | a {digit} going {direction}"


def _clip_rows(
    out_dir: str, name: str, count: int, seed: int, no_audio: int, no_caption: int
) -> list[tuple]:
    spec = presets.VIDEO
    ink, digits = images.load_digit_ink()
    rows = []
    for d, direction in enumerate(video.DIRECTIONS):
        for i in range(count):
            rng = np.random.default_rng([seed, d, i, sum(map(ord, name))])
            sample = int(rng.integers(len(ink)))
            frames, motion = video.synthesize_clip(direction, ink[sample], rng, spec)
            k = d * count + i
            sound = None
            if not (no_audio and k % no_audio == no_audio - 1):
                sound = video.motion_audio(motion, spec.fps, spec.audio_sample_rate, rng)
            rel = f"videos/{name}_{direction}_{i:04d}.mp4"
            writers.write_video(
                os.path.join(out_dir, rel),
                frames,
                spec.fps,
                spec.crf,
                audio=sound,
                audio_sample_rate=spec.audio_sample_rate,
                audio_bitrate=spec.audio_bitrate,
            )
            caption = "" if no_caption and k % no_caption == no_caption - 1 else None
            if caption is None:
                caption = captions_for(int(digits[sample]), direction)
            rows.append((rel, 0, round(motion.num_frames / spec.fps, 3), direction, caption))
    return rows


def generate(
    out: str,
    per_direction: int = 24,
    eval_per_direction: int = 8,
    labelled_per_class: int = 3,
    seed: int = 0,
) -> dict[str, int]:
    """Writes the files above; returns the clip count of each CSV."""
    root = os.path.join(out, "vatt")
    sets = {
        "pretrain.csv": _clip_rows(root, "pre", per_direction, seed, 7, 5),
        "pretrain_eval.csv": _clip_rows(root, "preval", eval_per_direction, seed + 1, 7, 5),
        "few.csv": _clip_rows(root, "few", labelled_per_class, seed + 2, 0, 0),
        "few_eval.csv": _clip_rows(root, "fewval", eval_per_direction, seed + 3, 0, 0),
    }
    for name, rows in sets.items():
        writers.write_csv(os.path.join(root, name), HEADER, rows)
    return {name: len(rows) for name, rows in sets.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.vatt_data", description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--per-direction", type=int, default=24)
    parser.add_argument("--eval-per-direction", type=int, default=8)
    parser.add_argument("--labelled", type=int, default=3, help="labelled clips per direction")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = generate(
        args.out, args.per_direction, args.eval_per_direction, args.labelled, args.seed
    )
    for name, count in counts.items():
        print(f"vatt/{name}: {count} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
