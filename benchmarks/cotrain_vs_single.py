"""Co-training versus single-task training on the demo data: accuracy (or mAP) and parameters.

Trains ONE PolyViT on every task of the config (its `training.steps`, `training.schedule`), and
one single-task model per task with that task's step budget (`tasks.T.steps`, else
`training.steps`), all with the same training loop (trainer/train_loop.py), then prints

    task | metric | single-task | co-trained | difference | single-task parameters

and the total parameters of the N single-task models against the one co-trained model.
PolyViT's claim to check: about 1/N of the parameters at accuracy within a couple of points.

    python benchmarks/cotrain_vs_single.py [--config configs/demo.yaml] [--records DIR]
        [--work runs/bench_cotrain] [--scale small|full] [--set key=value ...]

Without --records it writes the demo media (`polyvit make-demo-data`) and ingests them
(MediaExampleGen's Beam ingestion, DirectRunner) under --work first. --records is a folder in
the Examples layout (`Split-train/<task>-*.gz`, `Split-eval/...`), e.g. from `polyvit ingest`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import core.env  # noqa: E402,F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)
from core import cli_args, logs  # noqa: E402

logs.setup()  # an entry point, before the stack's imports warn about anything

# isort: split
from benchmarks._records import ingest_once  # noqa: E402
from core import config as config_lib  # noqa: E402
from core import features  # noqa: E402
from trainer import train_loop  # noqa: E402


def ensure_records(config: config_lib.Config, work: str, scale: str) -> str:
    """The demo media written and ingested under `work` (skipped when already there)."""
    from demo.generate import generate

    data_dir = os.path.join(work, "demo_data")

    def write_media() -> None:
        print(f"Writing the {scale} demo media to {data_dir} ...", flush=True)
        generate(data_dir, scale, seed=0, force=True)

    return ingest_once(config, work, data_dir, write_media)


def patterns(records: str, config: config_lib.Config, split: str) -> dict[str, str]:
    return {t.name: features.task_file_pattern(records, split, t.name) for t in config.tasks}


def single_task_config(config: config_lib.Config, task: config_lib.Task) -> config_lib.Config:
    steps = task.steps or config.training.steps
    training = dataclasses.replace(config.training, steps=steps, checkpoint_every=steps)
    return dataclasses.replace(config, tasks=[task], training=training)


def train_and_score(config: config_lib.Config, records: str, model_dir: str) -> dict:
    began = time.perf_counter()
    result = train_loop.train(
        config_lib.trainer_config(config),
        model_dir,
        patterns(records, config, "train"),
        patterns(records, config, "eval"),
    )
    params = sum(int(v.shape.num_elements()) for v in result.model.trainable_variables)
    return {"tasks": result.metrics, "parameters": params, "seconds": time.perf_counter() - began}


def table(config, single: dict, cotrained: dict) -> str:
    rows = [
        "| task | metric | single-task | co-trained | difference | single-task parameters |",
        "|---|---|---|---|---|---|",
    ]
    for task in config.tasks:
        s, c = single[task.name]["tasks"][task.name], cotrained["tasks"][task.name]
        rows.append(
            f"| {task.name} | {s['metric']} | {s['value']:.3f} | {c['value']:.3f} | "
            f"{c['value'] - s['value']:+.3f} | {single[task.name]['parameters']:,} |"
        )
    total_single = sum(r["parameters"] for r in single.values())
    rows.append(
        f"| **all {len(config.tasks)}** | | | | | {total_single:,} single vs "
        f"{cotrained['parameters']:,} co-trained ({cotrained['parameters'] / total_single:.2f}x) |"
    )
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cli_args.add_config_args(parser)
    parser.add_argument("--records", default="", help="ingested records (Examples layout)")
    parser.add_argument("--work", default="runs/bench_cotrain")
    parser.add_argument("--scale", default="small", help="demo data scale without --records")
    args = parser.parse_args(argv)

    config = cli_args.load_config(args)
    records = args.records or ensure_records(config, args.work, args.scale)
    run_dir = os.path.join(args.work, f"run-{int(time.time())}")

    print(f"Co-training {len(config.tasks)} tasks for {config.training.steps} steps ...")
    cotrained = train_and_score(config, records, os.path.join(run_dir, "cotrained"))
    single = {}
    for task in config.tasks:
        single_config = single_task_config(config, task)
        print(f"Single-task {task.name} for {single_config.training.steps} steps ...")
        single[task.name] = train_and_score(
            single_config, records, os.path.join(run_dir, f"single_{task.name}")
        )

    report = table(config, single, cotrained)
    print(report)
    with open(os.path.join(run_dir, "cotrain_vs_single.json"), "w") as f:
        json.dump({"cotrained": cotrained, "single": single, "table": report}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
