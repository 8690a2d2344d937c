"""`polyvit run`'s wall-time table: rows from ML Metadata's executions of the latest run (a real
SQLite store, laid out as TFX's launcher lays it out), and the printed table."""

from __future__ import annotations

import time

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd
from tfx import v1 as tfx

from pipeline import local_runner

PIPELINE = "polyvit-times"


def _store(path: str) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(path)
    )


def _context(store, type_id: int, name: str) -> mlmd.Context:
    [context_id] = store.put_contexts([mlmd.Context(type_id=type_id, name=name)])
    return store.get_contexts_by_id([context_id])[0]


def _write_run(store, types: dict, run_name: str, nodes: dict, pipeline: mlmd.Context) -> None:
    """One pipeline run as TFX records it: a `pipeline_run` context under the `pipeline` one;
    per node an execution registered RUNNING in the run's and the node's contexts, then given
    its final state (which sets its last update time)."""
    run = _context(store, types["pipeline_run"], run_name)
    store.put_parent_contexts([mlmd.ParentContext(child_id=run.id, parent_id=pipeline.id)])
    for node, final_state in nodes.items():
        node_context = store.get_context_by_type_and_name("node", f"{PIPELINE}.{node}")
        if node_context is None:
            node_context = _context(store, types["node"], f"{PIPELINE}.{node}")
        execution = mlmd.Execution(type_id=types[node], last_known_state=mlmd.Execution.RUNNING)
        execution_id, _, _ = store.put_execution(execution, [], [run, node_context])
        time.sleep(0.002)  # distinct millisecond stamps, so the order of starts is defined
        [execution] = store.get_executions_by_id([execution_id])
        execution.last_known_state = final_state
        store.put_executions([execution])


def test_the_latest_runs_stages_come_from_ml_metadata_in_the_order_they_began(tmp_path):
    path = str(tmp_path / "metadata.sqlite")
    store = _store(path)
    types = {
        name: store.put_context_type(mlmd.ContextType(name=name))
        for name in ("pipeline", "pipeline_run", "node")
    }
    for node in ("MediaExampleGen", "Trainer", "Pusher"):
        types[node] = store.put_execution_type(mlmd.ExecutionType(name=f"tfx.{node}"))
    pipeline = _context(store, types["pipeline"], PIPELINE)
    complete, cached, failed = (
        mlmd.Execution.COMPLETE,
        mlmd.Execution.CACHED,
        mlmd.Execution.FAILED,
    )
    _write_run(store, types, "run-1", {"MediaExampleGen": complete, "Trainer": complete}, pipeline)
    time.sleep(0.002)
    latest = {"MediaExampleGen": cached, "Trainer": complete, "Pusher": failed}
    _write_run(store, types, "run-2", latest, pipeline)

    outputs = local_runner.read_run_outputs(path, PIPELINE)
    assert outputs.run_id == "run-2"
    stages = outputs.stages
    assert [(s.node, s.state) for s in stages] == [
        ("MediaExampleGen", "cached"),
        ("Trainer", "complete"),
        ("Pusher", "failed"),
    ]
    # Each span is the store's own record of the execution, milliseconds to seconds.
    run_2 = store.get_context_by_type_and_name("pipeline_run", "run-2")
    recorded = sorted(
        store.get_executions_by_context(run_2.id), key=lambda e: e.create_time_since_epoch
    )
    for stage, execution in zip(stages, recorded, strict=True):
        assert stage.start == execution.create_time_since_epoch / 1000
        assert stage.end == execution.last_update_time_since_epoch / 1000
        assert stage.seconds >= 0

    table = local_runner.format_stage_times(stages).splitlines()
    assert table[0] == "wall time per stage (ML Metadata):"
    assert table[1].split() == ["stage", "state", "start", "end", "seconds"]
    assert [line.split()[:2] for line in table[2:5]] == [
        ["MediaExampleGen", "cached"],
        ["Trainer", "complete"],
        ["Pusher", "failed"],
    ]
    assert table[-1].split()[0] == "run"


def _execution(id_, state, start_ms, end_ms, type_name="tfx.Stage") -> mlmd.Execution:
    return mlmd.Execution(
        id=id_,
        type=type_name,
        last_known_state=state,
        create_time_since_epoch=start_ms,
        last_update_time_since_epoch=end_ms,
    )


def test_rows_and_table_from_execution_records():
    begin = 1_700_000_000_000  # ms since the epoch
    executions = [
        _execution(3, mlmd.Execution.COMPLETE, begin + 25_000, begin + 92_500),
        _execution(1, mlmd.Execution.CACHED, begin, begin + 40),
        _execution(2, mlmd.Execution.COMPLETE, begin + 100, begin + 24_100, "tfx.Importer"),
    ]
    stages = local_runner.stage_times(executions, {1: "MediaExampleGen", 3: "Trainer"})
    # Ordered by start, not by id; a node without a node context is named by its type.
    assert [(s.node, s.state) for s in stages] == [
        ("MediaExampleGen", "cached"),
        ("tfx.Importer", "complete"),
        ("Trainer", "complete"),
    ]
    assert [s.seconds for s in stages] == pytest.approx([0.04, 24.0, 67.5])
    lines = local_runner.format_stage_times(stages).splitlines()
    clock = time.strftime("%H:%M:%S", time.localtime(begin / 1000 + 25))
    assert lines[4].split() == ["Trainer", "complete", clock, lines[4].split()[3], "67.5"]
    # The run's span: first start to last end (stages may overlap or leave gaps).
    assert lines[5].split()[0] == "run" and lines[5].split()[-1] == "92.5"
    assert local_runner.format_stage_times([]).endswith("no execution recorded in ML Metadata")
