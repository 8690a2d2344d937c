"""Video encodings at equal steps: PolyViT's tubelets against IV-ViT's frames fused late.

On the demo's image and video tasks (default config: configs/ivvit.yaml, digits and motion),
trains one model per mode with the same records, schedule, task step budgets and seed, with the
co-training loop (trainer/train_loop.py), the mode set by `model.video_encoding` (and
`model.late_fusion`), then prints one row per mode:

    mode | <task> <metric> per task | parameters | loop examples/s | <task> step examples/s

- accuracy: the loop's final evaluation on the eval split (difference to the PolyViT row);
- parameters: trainable, with the ratio to the PolyViT row;
- loop examples/s: training examples (clips for video) per second in the real loop on the real
  records, input pipeline included, over the log windows after the first (the first holds the
  tracing); ratio to the PolyViT row;
- step examples/s: each task's own train step (train_loop's step body, the real optimizer
  update) on a fixed random batch, no input pipeline; ratio to the PolyViT row.

    python benchmarks/compare_modes.py [--config configs/ivvit.yaml] [--records DIR]
        [--work runs/bench_modes] [--scale small|full] [--modes tubelets,frames-logits]
        [--step-seconds 4] [--set key=value ...]

Without --records the demo media are written and ingested under --work first (as
benchmarks/cotrain_vs_single.py does; the same helpers).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import glob
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import core.env  # noqa: E402,F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)
from core import cli_args, logs  # noqa: E402

logs.setup()  # an entry point, before the stack's imports warn about anything

# isort: split
import tensorflow as tf  # noqa: E402

from benchmarks.cotrain_vs_single import ensure_records, train_and_score  # noqa: E402
from benchmarks.train_step import _constant_dataset, run_for  # noqa: E402
from core import config as config_lib  # noqa: E402
from trainer import schedules, train_loop  # noqa: E402

DEFAULT_CONFIG = "configs/ivvit.yaml"
REFERENCE = "tubelets"
# Each mode: the overrides applied after the command line's --set.
MODES = {
    "tubelets": ["model.video_encoding=tubelets"],
    "frames-logits": ["model.video_encoding=frames", "model.late_fusion=logits"],
    "frames-features": ["model.video_encoding=frames", "model.late_fusion=features"],
}
LABELS = {
    "tubelets": "PolyViT tubelets",
    "frames-logits": "IV-ViT frames, fused logits",
    "frames-features": "IV-ViT frames, pooled features",
}


def mode_config(args: argparse.Namespace, mode: str) -> config_lib.Config:
    """The command line's config with the mode's video encoding (ConfigError names the key)."""
    return cli_args.load_config(
        argparse.Namespace(config=args.config, overrides=[*args.overrides, *MODES[mode]])
    )


# ----------------------------------------------------------------------------------------------
# Loop throughput, from the loop's own TensorBoard scalars (steps_per_sec per log window).


def window_rates(train_log_dir: str) -> dict[int, float]:
    """{end step of a log window: its steps/s}, as trainer.train_loop wrote them."""
    rates = {}
    for path in sorted(glob.glob(os.path.join(train_log_dir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "steps_per_sec":
                    rates[int(event.step)] = float(tf.make_ndarray(value.tensor))
    return rates


def loop_examples_per_second(
    rates: dict[int, float], schedule: schedules.TaskSchedule, batch_sizes: dict[str, int]
) -> tuple[float, int]:
    """(examples/s, windows used) over the log windows after the first (which holds the
    tracing and the first batches' input start-up); all windows when there is only one.

    A window's examples are those of the schedule's steps in it; its time, its steps / rate."""
    ends = sorted(rates)
    starts = [0, *ends[:-1]]
    windows = list(zip(starts, ends, strict=True))
    used = windows[1:] or windows
    examples = seconds = 0.0
    for start, end in used:
        examples += sum(batch_sizes[t] for i in range(start, end) for t in schedule.tasks_at(i))
        seconds += (end - start) / rates[end]
    return examples / seconds, len(used)


# ----------------------------------------------------------------------------------------------
# Isolated train steps: the loop's own step bodies, one task each, on a fixed random batch.


def isolated_steps(config: config_lib.Config) -> dict[str, tuple]:
    """{task: (run one step and wait for it, batch size)}: train_loop's own single-task step
    (model, loss, gradient clipping, the optimizer update) on one fixed batch of the task's
    input shape, traced."""
    from transforms.input_pipeline import feature_shape

    trainer_config = config_lib.trainer_config(config)
    if trainer_config.training.schedule not in schedules.SINGLE_TASK_SCHEDULES:
        # One step per task (every_task and accumulate steps visit every task at once).
        training = dataclasses.replace(trainer_config.training, schedule="weighted")
        trainer_config = dataclasses.replace(trainer_config, training=training)
    training = trainer_config.training
    strategy = tf.distribute.get_strategy()
    schedule = schedules.TaskSchedule(trainer_config.tasks, training, training.steps)
    state = train_loop.restore(
        trainer_config,
        strategy,
        schedule,
        training.steps,
        train_loop._default_build_model,
        tempfile.mkdtemp(prefix="polyvit-modes-bench-"),
    )
    features, labels = {}, {}
    for task in trainer_config.tasks:
        shape = feature_shape(task, config.inputs)
        features[task.name] = tf.random.normal((task.batch_size, *shape))
        labels[task.name] = tf.one_hot(
            tf.range(task.batch_size) % task.num_classes, task.num_classes
        )
    patterns = {t.name: "constant" for t in trainer_config.tasks}
    iterators = train_loop.task_iterators(
        trainer_config, strategy, patterns, _constant_dataset(features, labels), 0
    )
    traced = train_loop.step_functions(trainer_config, strategy, state, iterators)
    steps = {}
    for task in trainer_config.tasks:
        step = traced[(task.name,)]
        run = functools.partial(lambda s, n: s()[n]["loss"].numpy(), step, task.name)
        run()  # trace
        steps[task.name] = (run, task.batch_size)
    return steps


def interleaved_rates(
    steps: dict[str, dict[str, tuple]], seconds: float, rounds: int = 4
) -> dict[str, dict[str, float]]:
    """{mode: {task: examples/s}}, every (mode, task) step timed in turn for `rounds` rounds,
    so that all of them see the same load on a shared machine."""
    calls = {m: dict.fromkeys(s, 0) for m, s in steps.items()}
    elapsed = {m: dict.fromkeys(s, 0.0) for m, s in steps.items()}
    for _ in range(rounds):
        for mode, tasks in steps.items():
            for task, (run, _batch) in tasks.items():
                n, t = run_for(run, seconds / rounds)
                calls[mode][task] += n
                elapsed[mode][task] += t
    return {
        mode: {
            task: calls[mode][task] * batch / elapsed[mode][task]
            for task, (_, batch) in tasks.items()
        }
        for mode, tasks in steps.items()
    }


# ----------------------------------------------------------------------------------------------
# One mode, and the table.


def run_mode(config: config_lib.Config, records: str, model_dir: str) -> dict:
    """Trains and scores one mode; its loop's examples/s from the loop's own summaries."""
    scored = train_and_score(config, records, model_dir)
    training = config.training
    schedule = schedules.TaskSchedule(config.tasks, training, training.steps)
    batch_sizes = {t.name: t.batch_size for t in config.tasks}
    rates = window_rates(os.path.join(model_dir, "train"))
    loop_rate, windows = loop_examples_per_second(rates, schedule, batch_sizes)
    return {
        **scored,
        "loop examples/s": loop_rate,
        "loop windows": windows,
    }


def _ratio(value: float, reference: float | None) -> str:
    return f" ({value / reference:.2f}x)" if reference else ""


def _difference(value: float, reference: float | None) -> str:
    return f" ({value - reference:+.3f})" if reference is not None else ""


def table(results: dict[str, dict], config: config_lib.Config) -> str:
    """Markdown: one row per mode; figures in brackets are against the PolyViT row (ratios;
    differences for accuracy). Pure: the results of run_mode in, text out."""
    ref = results.get(REFERENCE)
    tasks = [t.name for t in config.tasks]
    metric = {t: next(iter(results.values()))["tasks"][t]["metric"] for t in tasks}
    header = ["mode", *[f"{t} {metric[t]}" for t in tasks], "parameters", "loop examples/s"]
    header += [f"{t} step examples/s" for t in tasks]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for mode, r in results.items():
        is_ref = mode == REFERENCE or ref is None
        cells = [LABELS.get(mode, mode)]
        for t in tasks:
            value = r["tasks"][t]["value"]
            cells.append(
                f"{value:.3f}" + ("" if is_ref else _difference(value, ref["tasks"][t]["value"]))
            )
        cells.append(
            f"{r['parameters']:,}" + ("" if is_ref else _ratio(r["parameters"], ref["parameters"]))
        )
        rate = r["loop examples/s"]
        cells.append(f"{rate:,.0f}" + ("" if is_ref else _ratio(rate, ref["loop examples/s"])))
        for t in tasks:
            step = r["step examples/s"][t]
            cells.append(
                f"{step:,.0f}" + ("" if is_ref else _ratio(step, ref["step examples/s"][t]))
            )
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cli_args.add_config_args(parser)
    parser.set_defaults(config=DEFAULT_CONFIG)
    parser.add_argument("--records", default="", help="ingested records (Examples layout)")
    parser.add_argument("--work", default="runs/bench_modes")
    parser.add_argument("--scale", default="full", help="demo data scale without --records")
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}"
    )
    parser.add_argument(
        "--step-seconds", type=float, default=4.0, help="timed seconds per mode and task's step"
    )
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"--modes: unknown mode(s) {unknown}; choose from {list(MODES)}")

    configs = {mode: mode_config(args, mode) for mode in modes}  # every config checked first
    first = configs[modes[0]]
    records = args.records or ensure_records(first, args.work, args.scale)
    run_dir = os.path.join(args.work, f"run-{int(time.time())}")
    steps = first.training.steps
    results = {}
    for mode, config in configs.items():
        print(f"{LABELS[mode]}: {steps} steps ({config.training.schedule}) ...", flush=True)
        results[mode] = run_mode(config, records, os.path.join(run_dir, mode))
    print("Timing each mode's train steps in turn ...", flush=True)
    isolated = {mode: isolated_steps(config) for mode, config in configs.items()}
    for mode, rates in interleaved_rates(isolated, args.step_seconds).items():
        results[mode]["step examples/s"] = rates
    report = table(results, first)
    print(f"\n{len(first.tasks)} tasks, {steps} steps each mode, model {first.model.preset}:")
    print(report)
    with open(os.path.join(run_dir, "compare_modes.json"), "w") as f:
        json.dump({"results": results, "table": report}, f, indent=2, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
