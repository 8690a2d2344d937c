"""Re-run benchmark (issue 15): what caching and the decode cache save on a scheduled re-run.

    .venv/bin/python benchmarks/rerun.py [--scale small|full] [--steps 150]
        [--warm-start-steps N] [--work DIR]

In one run, on the demo data in its span layout (`configs/demo_spans.yaml`):
  1. `polyvit run` on span 1 (a whole demo generation): the reference wall time;
  2. `polyvit run` again, nothing changed: its time / the first (goal <= 0.10), and the stages
     TFX served from its cache;
     Then where its time goes: starting the CLI (imports) alone, and the same re-run with the
     optional import core/env.py skips (the figure before that cut);
  3. `make-demo-data --span 2` (span 1 + ~10% new media), then `polyvit run`: its time / the
     first, and the media files decoded vs reused from the decode cache (the Examples'
     `inputs` and `decode_cache_reused` properties), and the steps that run trained: it
     warm-starts from run 1's blessed model and trains continuous.warm_start_steps (by
     default the config's share of training.steps, a quarter, applied to --steps).
Every run sets the tasks' eval.min_metric to 0: the shortened first run's model is then
blessed (as the full demo's is), so that the span-2 run has a model to warm-start from.
Wall times are of the real CLI in a subprocess, process start-up included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml
from ml_metadata.metadata_store import metadata_store
from tfx import v1 as tfx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "demo_spans.yaml")


def polyvit(*args: str, extra_env: dict | None = None, python: tuple = ()) -> float:
    """Runs the CLI (or `python -c ...` when `python` is given); returns its wall time in
    seconds. Fails loudly if the command fails."""
    env = {
        **os.environ,
        "PYTHONPATH": ROOT,
        "TF_USE_LEGACY_KERAS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **(extra_env or {}),
    }
    command = [sys.executable, *python] if python else [sys.executable, "-m", "pipeline.cli"]
    began = time.perf_counter()
    done = subprocess.run([*command, *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode:
        sys.exit(f"polyvit {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def newest_examples(pipeline_root: str) -> dict:
    """span, inputs and decode_cache_reused of the newest Examples artifact."""
    path = os.path.join(pipeline_root, "metadata.sqlite")
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(path)
    )
    newest = max(store.get_artifacts_by_type("Examples"), key=lambda a: a.id)
    props = newest.custom_properties
    return {
        name: props[name].int_value if name in props else None
        for name in ("span", "inputs", "decode_cache_reused")
    }


def cached_stages(pipeline_root: str, since_id: int) -> tuple[int, int]:
    """(cached, all) executions newer than since_id."""
    path = os.path.join(pipeline_root, "metadata.sqlite")
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(path)
    )
    newer = [e for e in store.get_executions() if e.id > since_id]
    cached = sum(e.last_known_state == e.CACHED for e in newer)
    return cached, len(newer)


def last_execution_id(pipeline_root: str) -> int:
    path = os.path.join(pipeline_root, "metadata.sqlite")
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(path)
    )
    return max((e.id for e in store.get_executions()), default=0)


def _config() -> dict:
    with open(CONFIG) as f:
        return yaml.safe_load(f)


def task_names() -> list[str]:
    return list(_config()["tasks"])


def config_warm_start_steps(steps: int) -> int:
    """configs/demo_spans.yaml's continuous.warm_start_steps / training.steps, of `steps`."""
    config = _config()
    share = config.get("continuous", {}).get("warm_start_steps", 0) / config["training"]["steps"]
    return max(1, round(steps * share)) if share else 0


def newest_training(pipeline_root: str) -> dict:
    """The newest Trainer run's steps and warm start (its ModelRun's eval_metrics.json and
    warm_start.json)."""
    path = os.path.join(pipeline_root, "metadata.sqlite")
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(path)
    )
    newest = max(store.get_artifacts_by_type("ModelRun"), key=lambda a: a.id)
    with open(os.path.join(newest.uri, "eval_metrics.json")) as f:
        steps = json.load(f)["total_steps"]
    with open(os.path.join(newest.uri, "warm_start.json")) as f:
        warm = json.load(f)
    return {"steps": steps, "warm_started": bool(warm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=("small", "full"), default="small")
    parser.add_argument("--steps", type=int, default=150, help="training.steps of each run")
    parser.add_argument(
        "--warm-start-steps",
        type=int,
        default=None,
        help="continuous.warm_start_steps of the run after span 2 (default: the config's "
        "share of training.steps applied to --steps)",
    )
    parser.add_argument("--work", default=None, help="folder for data and runs (default: temp)")
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="polyvit-rerun-")
    data_root, pipeline_root = os.path.join(work, "data"), os.path.join(work, "run")
    warm_steps = args.warm_start_steps
    if warm_steps is None:
        warm_steps = config_warm_start_steps(args.steps)
    run = [
        "run",
        "--config",
        CONFIG,
        *("--set", f"data_root={data_root}"),
        *("--set", f"pipeline_root={pipeline_root}"),
        *("--set", f"serving.push_dir={os.path.join(work, 'serving')}"),
        *("--set", f"training.steps={args.steps}"),
        *("--set", f"continuous.warm_start_steps={warm_steps}"),
        # A few steps do not reach the demo's quality gates: with them at 0 the first model is
        # blessed, as the full demo's is, so the span-2 run warm-starts from it.
        *[x for task in task_names() for x in ("--set", f"tasks.{task}.eval.min_metric=0")],
    ]
    polyvit("make-demo-data", data_root, "--span", "1", "--scale", args.scale)
    first = polyvit(*run)
    first_ex = newest_examples(pipeline_root)
    trained = newest_training(pipeline_root)
    print(
        f"1. first run (span {first_ex['span']}, {first_ex['inputs']} inputs): {first:.1f} s; "
        f"trained {trained['steps']} steps"
    )

    before = last_execution_id(pipeline_root)
    again = polyvit(*run)
    cached, total = cached_stages(pipeline_root, before)
    print(
        f"2. unchanged re-run: {again:.1f} s = {again / first:.3f} of the first (goal <= 0.10); "
        f"{cached}/{total} executions from TFX's cache (the Resolver always runs)"
    )

    # Where an unchanged re-run's time goes: starting the CLI (importing TensorFlow, TFX and
    # the stages' libraries) vs the rest (building and running the pipeline from the cache,
    # the closing summary); and the same re-run with the optional rfc3987_syntax import that
    # core/env.py skips (what the skip saves).
    startup = polyvit("import pipeline.local_runner", python=("-c",))
    print(
        f"   of which starting the CLI (imports): {startup:.1f} s = {startup / first:.3f} of "
        "the first run"
    )
    kept = polyvit(*run, extra_env={"POLYVIT_IMPORT_RFC3987_SYNTAX": "1"})
    print(
        f"   the same re-run importing rfc3987_syntax (before core/env.py skipped it): "
        f"{kept:.1f} s = {kept / first:.3f} of the first"
    )

    polyvit("make-demo-data", data_root, "--span", "2", "--scale", args.scale)
    before = last_execution_id(pipeline_root)
    added = polyvit(*run)
    cached, total = cached_stages(pipeline_root, before)
    ex = newest_examples(pipeline_root)
    reused = ex["decode_cache_reused"] or 0
    trained = newest_training(pipeline_root)
    warm = "warm-started" if trained["warm_started"] else "trained from scratch"
    print(
        f"3. after adding span {ex['span']}: {added:.1f} s = {added / first:.3f} of the first; "
        f"{ex['inputs']} inputs: {ex['inputs'] - reused} decoded, {reused} reused from the "
        f"decode cache; {cached}/{total} executions from TFX's cache (the Resolver always runs); "
        f"{warm}, {trained['steps']} steps (continuous.warm_start_steps={warm_steps})"
    )


if __name__ == "__main__":
    main()
