"""Throughput of the training input pipeline alone: clips/s per modality on generated records.

    .venv/bin/python benchmarks/input_pipeline.py [--config configs/demo.yaml] [--set k=v ...]

For each modality of the config's tasks it writes records shaped as ingestion writes them
(frames of `ingestion.short_side` pixels at `ingestion.fps`, waveforms at
`ingestion.sample_rate`, `ingestion.clip_seconds` long), runs `make_dataset(training=True)`
with the task's batch size and the config's augmentation, and prints clips/s after a warm-up.
The trainer benchmark compares these figures to what a train step consumes (goal: >= 3x).
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


def measure(dataset: tf.data.Dataset, warmup: int, batches: int) -> tuple[float, int]:
    """(seconds for `batches` batches after `warmup` batches, clips per batch)."""
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for step in range(batches):
        features, _ = next(iterator)
        if (step + 1) % max(1, batches // 4) == 0:
            rate = (step + 1) / (time.perf_counter() - start)
            print(f"    {step + 1}/{batches} batches, {rate:.1f} batches/s", flush=True)
    elapsed = time.perf_counter() - start
    clips = int(next(iter(features.values())).shape[0])
    return elapsed, clips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli_args.add_config_args(parser)
    parser.add_argument("--records", type=int, default=64, help="records per modality")
    parser.add_argument("--warmup", type=int, default=5, help="batches before timing")
    parser.add_argument("--batches", type=int, default=40, help="timed batches")
    args = parser.parse_args(argv)
    config = cli_args.load_config(args)

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
            dataset = input_pipeline.make_dataset(
                pattern,
                task,
                config.inputs,
                training=True,
                batch_size=task.batch_size,
                seed=config.training.seed,
            )
            print(f"{modality}: timing {args.batches} batches of {task.batch_size}", flush=True)
            elapsed, clips = measure(dataset, args.warmup, args.batches)
            shape = input_pipeline.feature_shape(task, config.inputs)
            rows.append(
                (
                    modality,
                    task.name,
                    shape,
                    clips,
                    args.batches * clips / elapsed,
                    1000 * elapsed / args.batches,
                )
            )

    print(f"\ninput pipeline throughput ({os.cpu_count()} CPU cores, training mode)")
    print(
        f"{'modality':<9}{'task':<12}{'clip shape':<20}{'batch':>6}{'clips/s':>10}{'ms/batch':>10}"
    )
    for modality, name, shape, clips, rate, ms in rows:
        print(f"{modality:<9}{name:<12}{str(shape):<20}{clips:>6}{rate:>10.1f}{ms:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
