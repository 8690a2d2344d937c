"""Throughput of the training input pipeline alone, per modality, decoding every epoch vs. cached.

    .venv/bin/python benchmarks/input_pipeline.py [--config configs/demo.yaml] [--set k=v ...]
        [--cache memory] [--step-seconds 3]

For each modality of the config's tasks it writes records shaped as ingestion writes them
(frames of `ingestion.short_side` pixels at `ingestion.fps`, waveforms at
`ingestion.sample_rate`, `ingestion.clip_seconds` long) and times `make_dataset(training=True)`
with the task's batch size and the config's augmentation on two paths in alternating rounds
(so both see a shared machine's same load): `off` (every record parsed and decoded every
epoch, as before the cache) and `--cache` (decoded once; the first epoch is in the warm-up).
Rows: clips/s, CPU ms per batch (all threads of the process), and with `--step-seconds` > 0
the ratio to the examples/s that the same config's train step consumes, timed in this run by
benchmarks/train_step.py's benchmark (the issue's goal: at least 3x).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# core.env first: it sets the environment TensorFlow reads when it loads.
from core import env  # noqa: E402, F401, I001
from core import logs  # noqa: E402, I001

logs.setup()  # an entry point, before the stack's imports warn about anything
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from core import cli_args  # noqa: E402
from core import config as config_lib  # noqa: E402
from core import features as keys  # noqa: E402
from transforms import input_pipeline  # noqa: E402

PATHS = ("off",)  # the reference path; --cache adds the cached one


def synthetic_frame(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth gradient with mild noise: compresses like camera frames, unlike pure noise."""
    y, x = np.mgrid[0:height, 0:width]
    base = (x * 255 // max(width - 1, 1) + y * 255 // max(height - 1, 1)) // 2
    pixels = base[..., None] + rng.integers(-20, 21, [height, width, 3])
    return np.clip(pixels, 0, 255).astype(np.uint8)


def synthetic_record(modality: str, index: int, config: config_lib.Config, num_classes: int):
    rng = np.random.default_rng(index)
    ingestion = config.ingestion
    example = tf.train.SequenceExample()
    context = example.context.feature
    context[keys.LABEL_INDEX].int64_list.value.append(index % num_classes)
    context[keys.FILENAME].bytes_list.value.append(f"synthetic-{index}".encode())
    context[keys.SAMPLE_RATE].int64_list.value.append(ingestion.sample_rate)
    context[keys.FRAME_RATE].float_list.value.append(ingestion.fps)
    if modality == "audio":
        samples = int(ingestion.clip_seconds * ingestion.sample_rate)
        t = np.arange(samples) / ingestion.sample_rate
        wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * index) * t) + 0.05 * rng.standard_normal(
            samples
        )
        feature = example.feature_lists.feature_list[keys.WAVEFORM].feature.add()
        feature.float_list.value.extend(wave.astype(np.float32))
    else:
        side = ingestion.short_side
        num_frames = (
            1 if modality == "image" else max(1, int(ingestion.clip_seconds * ingestion.fps))
        )
        frame_list = example.feature_lists.feature_list[keys.IMAGE_ENCODED]
        for _ in range(num_frames):
            jpeg = tf.io.encode_jpeg(synthetic_frame(rng, side, side * 4 // 3), quality=90)
            frame_list.feature.add().bytes_list.value.append(jpeg.numpy())
    return example.SerializeToString()


def write_records(folder: str, name: str, records: list[bytes]) -> str:
    path = os.path.join(folder, f"{name}-00000-of-00001.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for record in records:
            writer.write(record)
    return os.path.join(folder, f"{name}-*.gz")


def timed_rounds(iterators: dict, batches: int, rounds: int = 4) -> dict[str, tuple[float, float]]:
    """{path: (wall s, CPU s)} for `batches` batches of each path, taken in alternating rounds."""
    totals = {path: [0.0, 0.0] for path in iterators}
    per_round = max(1, batches // rounds)
    for _ in range(rounds):
        for path, iterator in iterators.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(per_round):
                next(iterator)
            totals[path][0] += time.perf_counter() - wall
            totals[path][1] += time.process_time() - cpu
    return {path: (wall, cpu) for path, (wall, cpu) in totals.items()}


def step_rates(config: config_lib.Config, seconds: float) -> dict[str, float]:
    """examples/s of each modality's train step (benchmarks/train_step.py), 0 when skipped."""
    if seconds <= 0:
        return {}
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import train_step  # noqa: PLC0415  (a sibling script, loaded only when asked for)

    rows = train_step.benchmark(config, seconds, jit=config.training.jit_compile)
    return {row["modality"]: row["examples/s"] for row in rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli_args.add_config_args(parser)
    parser.add_argument("--records", type=int, default=64, help="records per modality")
    parser.add_argument("--warmup", type=int, default=5, help="batches before timing")
    parser.add_argument("--batches", type=int, default=40, help="timed batches per path")
    parser.add_argument(
        "--cache",
        default="memory",
        choices=("memory", "file", "off"),
        help="the cached path's training.cache_decoded (off: the reference row only)",
    )
    parser.add_argument(
        "--step-seconds",
        type=float,
        default=3.0,
        help="seconds per train-step timing for the ratio column (0: no train steps)",
    )
    args = parser.parse_args(argv)
    config = cli_args.load_config(args)
    paths = PATHS + ((args.cache,) if args.cache != "off" else ())

    # One task per modality: the first of the config's tasks with that modality.
    tasks = {}
    for task in config.tasks:
        tasks.setdefault(task.modality, task)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for modality, task in tasks.items():
            print(f"{modality}: writing {args.records} records like task {task.name!r}", flush=True)
            records = [
                synthetic_record(modality, i, config, task.num_classes) for i in range(args.records)
            ]
            pattern = write_records(folder, task.name, records)
            # The warm-up covers the first epoch, which fills the cache.
            warmup = max(args.warmup, -(-args.records // task.batch_size) + 2)
            iterators = {}
            for path in paths:
                dataset = input_pipeline.make_dataset(
                    pattern,
                    task,
                    config.inputs,
                    training=True,
                    batch_size=task.batch_size,
                    seed=config.training.seed,
                    cache=path,
                    cache_dir=os.path.join(folder, "cache"),
                )
                iterators[path] = iter(dataset)
                for _ in range(warmup):
                    next(iterators[path])
            print(f"{modality}: timing {args.batches} batches of {task.batch_size} per path")
            timings = timed_rounds(iterators, args.batches)
            for path, (wall, cpu) in timings.items():
                batches = max(1, args.batches // 4) * 4
                rows.append(
                    {
                        "modality": modality,
                        "task": task.name,
                        "cache": path,
                        "batch": task.batch_size,
                        "clips/s": batches * task.batch_size / wall,
                        "cpu ms/batch": 1000 * cpu / batches,
                    }
                )
    steps = step_rates(config, args.step_seconds)

    print(f"\ninput pipeline throughput ({os.cpu_count()} CPU cores, training mode)")
    print(
        f"{'modality':<9}{'task':<10}{'cache':<8}{'batch':>6}{'clips/s':>10}"
        f"{'cpu ms/batch':>14}{'step ex/s':>11}{'x step':>8}"
    )
    for row in rows:
        step = steps.get(row["modality"], 0.0)
        ratio = f"{row['clips/s'] / step:.2f}" if step else "-"
        print(
            f"{row['modality']:<9}{row['task']:<10}{row['cache']:<8}{row['batch']:>6}"
            f"{row['clips/s']:>10.1f}{row['cpu ms/batch']:>14.2f}{step:>11.1f}{ratio:>8}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
