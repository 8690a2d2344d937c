"""`polyvit run`: the pipeline under TFX's LocalDagRunner, with SQLite ML Metadata.

Metadata lives in `<pipeline_root>/metadata.sqlite`. At the end (also after a failure) the run's
outputs are read back from ML Metadata, not guessed from paths, and summarised: clips written
per task and split, inputs quarantined per reason, and where each artifact is; then a table of
each stage's wall time, from the run's executions in ML Metadata (`stage_times`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping

from components.media_example_gen.executor import MediaQuarantine
from core import cli_args, features

METADATA_FILE = "metadata.sqlite"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    cli_args.add_config_args(parser)
    parser.add_argument(
        "--pipeline-root",
        help="where artifacts and metadata.sqlite go (default: the config's pipeline_root)",
    )
    parser.add_argument(
        "--data-root",
        help="folder the tasks' data paths are relative to (default: the config's data_root)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="run every stage again, ignoring TFX's cache (default: continuous.cache)",
    )


def _absolute(path: str) -> str:
    """Local paths become absolute (artifact URIs must not depend on the cwd); URIs stay."""
    return path if "://" in path else os.path.abspath(path)


@dataclasses.dataclass(frozen=True)
class OutputArtifact:
    node: str  # the pipeline node that produced it, e.g. MediaExampleGen
    key: str  # its output key, e.g. examples
    type_name: str
    uri: str
    properties: dict


@dataclasses.dataclass(frozen=True)
class StageTime:
    """One execution of the run: its node, final state and wall-clock span (seconds since the
    epoch), as ML Metadata recorded them."""

    node: str
    state: str  # complete, cached, failed (or running, new, canceled for an unfinished run)
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclasses.dataclass
class RunOutputs:
    """What the latest run of a pipeline did, read from ML Metadata."""

    run_id: str
    artifacts: list[OutputArtifact]  # in the order they were published
    completed_nodes: list[str]  # in the order they ran
    failed_nodes: list[str]
    # Skipped by TFX's cache (their outputs are an earlier run's), in the order they came.
    cached_nodes: list[str] = dataclasses.field(default_factory=list)
    stages: list[StageTime] = dataclasses.field(default_factory=list)  # in the order they began

    def first(self, type_name: str) -> OutputArtifact | None:
        return next((a for a in self.artifacts if a.type_name == type_name), None)


def _properties(artifact) -> dict:
    from google.protobuf import json_format

    values = {}
    for name, value in artifact.custom_properties.items():
        kind = value.WhichOneof("value")
        if kind == "struct_value":
            value = json_format.MessageToDict(value.struct_value)
            # TFX stores JSON values that are not objects as {"__value__": "<json>"}.
            if set(value) == {"__value__"} and isinstance(value["__value__"], str):
                value = json.loads(value["__value__"])
            values[name] = value
        elif kind in ("int_value", "double_value", "string_value", "bool_value"):
            values[name] = getattr(value, kind)
    return values


def read_run_outputs(metadata_path: str, pipeline_name: str) -> RunOutputs | None:
    """The outputs of the pipeline's latest run in the store, or None before any run."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    from tfx import v1 as tfx

    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
    )
    runs = [
        c
        for c in store.get_contexts_by_type("pipeline_run")
        if any(p.name == pipeline_name for p in store.get_parent_contexts_by_context(c.id))
    ]
    if not runs:
        return None
    run = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
    run_executions = {e.id: e for e in store.get_executions_by_context(run.id)}
    # TFX puts every execution in a `node` context named `<pipeline>.<node id>`.
    node_of = {}
    for context in store.get_contexts_by_type("node"):
        node = context.name.removeprefix(f"{pipeline_name}.")
        for execution in store.get_executions_by_context(context.id):
            node_of[execution.id] = node

    def nodes_in_state(state) -> list[str]:
        return [
            node_of.get(e.id, e.type)
            for e in sorted(run_executions.values(), key=lambda e: e.id)
            if e.last_known_state == state
        ]

    outputs = {}  # artifact id -> (node, key)
    for event in store.get_events_by_execution_ids(list(run_executions)):
        if event.type == metadata_store_pb2.Event.OUTPUT:
            key = event.path.steps[0].key if event.path.steps else ""
            outputs[event.artifact_id] = (node_of.get(event.execution_id, ""), key)
    types = {t.id: t.name for t in store.get_artifact_types()}
    artifacts = [
        OutputArtifact(
            node=outputs[a.id][0],
            key=outputs[a.id][1],
            type_name=types.get(a.type_id, ""),
            uri=a.uri,
            properties=_properties(a),
        )
        for a in sorted(store.get_artifacts_by_id(list(outputs)), key=lambda a: a.id)
        if a.state == metadata_store_pb2.Artifact.LIVE
    ]
    return RunOutputs(
        run_id=run.name,
        artifacts=artifacts,
        completed_nodes=nodes_in_state(metadata_store_pb2.Execution.COMPLETE),
        failed_nodes=nodes_in_state(metadata_store_pb2.Execution.FAILED),
        cached_nodes=nodes_in_state(metadata_store_pb2.Execution.CACHED),
        stages=stage_times(run_executions.values(), node_of),
    )


def stage_times(executions: Iterable, node_of: Mapping[int, str]) -> list[StageTime]:
    """One row per execution (ml_metadata `Execution` records), in the order they began.

    The span is what ML Metadata keeps on every execution: `create_time_since_epoch` (TFX's
    launcher registers the execution as it starts the node) to `last_update_time_since_epoch`
    (its last state change: published complete, failed, or cached at once), in milliseconds.
    `node_of`: execution id -> node id (the execution's type name stands in without one)."""
    from ml_metadata.proto import metadata_store_pb2

    names = metadata_store_pb2.Execution.State
    return [
        StageTime(
            node=node_of.get(e.id, e.type),
            state=names.Name(e.last_known_state).lower(),
            start=e.create_time_since_epoch / 1000.0,
            end=e.last_update_time_since_epoch / 1000.0,
        )
        for e in sorted(executions, key=lambda e: (e.create_time_since_epoch, e.id))
    ]


# --------------------------------------------------------------------------------------------
# The end-of-run summary (pure: RunOutputs in, text out).


def _format_counts(counts: dict) -> str:
    return ", ".join(f"{key} {value:g}" for key, value in sorted(counts.items())) or "none"


def _format_splits(counts: dict) -> str:
    return ", ".join(f"{split} {counts.get(split, 0):g}" for split in features.SPLITS)


def format_summary(outputs: RunOutputs, metadata_path: str) -> str:
    lines = [f"run {outputs.run_id}"]
    examples = outputs.first("Examples")
    quarantine = outputs.first(MediaQuarantine.TYPE_NAME)
    if examples is not None:
        clips = examples.properties.get("clips_per_task", {})
        bad = quarantine.properties.get("quarantined_per_task", {}) if quarantine else {}
        for task in sorted(set(clips) | set(bad)):
            lines.append(
                f"  {task}: clips {_format_splits(clips.get(task, {}))}; "
                f"quarantined {_format_counts(bad.get(task, {}))}"
            )
    if quarantine is not None and quarantine.properties.get("quarantined"):
        lines.append(f"  quarantined inputs are listed in {quarantine.uri}")
    lines.append("artifacts:")
    for artifact in outputs.artifacts:
        lines.append(f"  {artifact.node}.{artifact.key} ({artifact.type_name}): {artifact.uri}")
    if outputs.failed_nodes:
        lines.append(f"failed: {', '.join(outputs.failed_nodes)}")
    if outputs.cached_nodes:
        lines.append(f"cached (not run again): {', '.join(outputs.cached_nodes)}")
    lines.append(f"ML Metadata: {metadata_path}")
    lines.extend(_model_lines(outputs))
    return "\n".join(lines)


def _clock(seconds_since_epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(seconds_since_epoch))


def format_stage_times(stages: list[StageTime]) -> str:
    """The wall-time table: stage, state, start and end (local clock time), seconds; last the
    run's span, from the first start to the last end."""
    if not stages:
        return "wall time per stage: no execution recorded in ML Metadata"
    width = max(len("stage"), *(len(s.node) for s in stages))

    def row(name: str, state: str, start: float, end: float) -> str:
        return (
            f"  {name:<{width}}  {state:<8}  {_clock(start):>8}  {_clock(end):>8}  "
            f"{end - start:>8.1f}"
        )

    lines = [
        "wall time per stage (ML Metadata):",
        f"  {'stage':<{width}}  {'state':<8}  {'start':>8}  {'end':>8}  {'seconds':>8}",
    ]
    lines += [row(s.node, s.state, s.start, s.end) for s in stages]
    lines.append(row("run", "", min(s.start for s in stages), max(s.end for s in stages)))
    return "\n".join(lines)


def _model_lines(outputs: RunOutputs) -> list[str]:
    """The model report's per-task numbers and decision, and what the Pusher did."""
    from components.model_report.component import ModelReportArtifact
    from components.model_report.report import summarize_report

    lines = []
    report = outputs.first(ModelReportArtifact.TYPE_NAME)
    if report is not None and os.path.exists(os.path.join(report.uri, "summary.json")):
        lines.append(summarize_report(report.uri))
    pushed = outputs.first("PushedModel")
    if pushed is not None:
        if pushed.properties.get("pushed"):
            lines.append(f"Pushed: {pushed.properties.get('pushed_destination', pushed.uri)}")
        else:
            lines.append("Not pushed: the model was not blessed or failed infra validation.")
    return lines


def use_cache(configured: bool, no_cache_flag: bool) -> bool:
    """TFX caching for this run: the config's continuous.cache unless --no-cache."""
    return configured and not no_cache_flag


def run(args: argparse.Namespace) -> int:
    config = cli_args.load_config(args)
    pipeline_root = _absolute(args.pipeline_root or config.pipeline_root)
    data_root = _absolute(args.data_root or config.data_root)
    metadata_path = os.path.join(pipeline_root, METADATA_FILE)
    os.makedirs(pipeline_root, exist_ok=True)

    from tfx import v1 as tfx

    from components.media_example_gen import spans
    from core.config import ingest_config
    from pipeline.pipeline import create_pipeline

    enable_cache = use_cache(config.continuous.cache, getattr(args, "no_cache", False))
    pipeline = create_pipeline(
        config,
        pipeline_root=pipeline_root,
        data_root=data_root,
        metadata_path=metadata_path,
        beam_pipeline_args=config.beam_pipeline_args,
        enable_cache=enable_cache,
        # New or changed files (or a new span) change MediaExampleGen's cache key.
        input_fingerprint=spans.input_fingerprint(ingest_config(config), data_root),
    )
    print(
        f"polyvit run: pipeline {config.pipeline_name}, data {data_root}, root {pipeline_root}, "
        f"cache {'on' if enable_cache else 'off'}"
    )
    failure = None
    try:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    except Exception as e:  # noqa: BLE001  (the CLI edge: report any stage's failure, then exit 1)
        failure = e
    outputs = read_run_outputs(metadata_path, config.pipeline_name)
    if outputs is not None:
        print(format_summary(outputs, metadata_path))
        print(format_stage_times(outputs.stages))
    if failure is not None:
        # Some TFX errors carry whole signature maps; the head of the message names the cause.
        message = str(failure)
        message = message if len(message) < 2000 else message[:2000] + " ..."
        print(f"polyvit run: FAILED: {type(failure).__name__}: {message}", file=sys.stderr)
        return 1
    return 0
