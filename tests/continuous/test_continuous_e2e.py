"""Continuous training end to end under LocalDagRunner, one shared pipeline root:

1. spans 1 and 2 were ingested by earlier runs, span 3 arrives; `polyvit run` with
   `continuous.span_window: 2` ingests span 3, and Transform and the Trainer read spans 2 and 3
   (TFX's rolling_range over MediaExampleGen's artifacts); the report names them;
2. the same `polyvit run` again: every stage comes from TFX's cache;
3. one training setting edited: the Trainer and the stages after it run again, the ingestion,
   the data stages and Transform come from the cache; the Trainer warm-starts from the first
   run's blessed model and trains `continuous.warm_start_steps`, not training.steps.
"""

from __future__ import annotations

import copy
import json
import os
import shutil

import pytest
import yaml
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx

from components.media_example_gen import spans
from components.media_example_gen.component import MediaExampleGen
from core import config as config_lib
from pipeline import cli, local_runner
from tests.pipeline.pipeline_corpus import corpus_config_dict, write_corpus
from trainer import run_fn

pytestmark = pytest.mark.e2e

# Nodes that resolve from ML Metadata on every run (no cache for them: they only query).
RESOLVERS = {"latest_blessed_model_resolver"}
DATA_STAGES = [
    "MediaExampleGen",
    "StatisticsGen",
    "MediaSchemaGen",
    "ExampleValidator",
    "DataValidationGate",
]
AFTER_TRAINING = ["Trainer", "Evaluator", "ModelReport", "ServingValidator", "Pusher"]


def _config_dict(data_root: str, pipeline_root: str) -> dict:
    """The corpus's image task alone, its data laid out by span, a window of two spans, and
    half of training.steps (6) after a warm start."""
    data = corpus_config_dict(data_root, pipeline_root)
    shapes = data["tasks"]["shapes"]
    data["tasks"] = {"shapes": {**shapes, "data": {**shapes["data"], "root": "shapes/span-{SPAN}"}}}
    data["continuous"] = {"span_window": 2, "warm_start_steps": 3}
    return data


def _ingest(data: dict, *overrides: str) -> None:
    """MediaExampleGen alone in the same pipeline (an earlier run that ingested a span)."""
    config = config_lib.from_dict(config_lib.apply_overrides(copy.deepcopy(data), list(overrides)))
    ingest = config_lib.ingest_config(config)
    example_gen = MediaExampleGen(
        ingest,
        data_root=config.data_root,
        input_fingerprint=spans.input_fingerprint(ingest, config.data_root),
    )
    tfx.orchestration.LocalDagRunner().run(
        tfx.dsl.Pipeline(
            pipeline_name=config.pipeline_name,
            pipeline_root=config.pipeline_root,
            components=[example_gen],
            enable_cache=True,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                os.path.join(config.pipeline_root, local_runner.METADATA_FILE)
            ),
            beam_pipeline_args=["--direct_num_workers=1", "--direct_running_mode=in_memory"],
        )
    )


def _polyvit_run(config_path: str, *overrides: str) -> local_runner.RunOutputs:
    argv = ["run", "--config", config_path]
    assert cli.main(argv + [x for s in overrides for x in ("--set", s)]) == 0
    root = yaml.safe_load(open(config_path))["pipeline_root"]
    return local_runner.read_run_outputs(
        os.path.join(root, local_runner.METADATA_FILE), "polyvit-test"
    )


def _input_spans(pipeline_root: str, node: str, key: str = "examples") -> list[list[int]]:
    """For each execution of `node` that ran (not cached), oldest first: the spans of its
    `key` input artifacts."""
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(pipeline_root, local_runner.METADATA_FILE)
        )
    )
    context = store.get_context_by_type_and_name("node", f"polyvit-test.{node}")
    found = []
    for execution in sorted(store.get_executions_by_context(context.id), key=lambda e: e.id):
        if execution.last_known_state != metadata_store_pb2.Execution.COMPLETE:
            continue
        events = store.get_events_by_execution_ids([execution.id])
        ids = [
            e.artifact_id
            for e in events
            if e.type == metadata_store_pb2.Event.INPUT and e.path.steps[0].key == key
        ]
        artifacts = store.get_artifacts_by_id(ids)
        found.append(sorted(a.custom_properties["span"].int_value for a in artifacts))
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The three `polyvit run`s above on one pipeline root: their RunOutputs and the root."""
    tmp = tmp_path_factory.mktemp("continuous")
    corpus, data_root, pipeline_root = tmp / "corpus", tmp / "data", tmp / "run"
    write_corpus(str(corpus))
    data = _config_dict(str(data_root), str(pipeline_root))
    for span in (1, 2):
        shutil.copytree(corpus / "shapes", data_root / "shapes" / f"span-{span}")
    _ingest(data, "ingestion.span=1")
    _ingest(data, "ingestion.span=2")
    shutil.copytree(corpus / "shapes", data_root / "shapes" / "span-3")
    config_path = tmp / "config.yaml"
    config_path.write_text(yaml.safe_dump(data))
    first = _polyvit_run(str(config_path))
    again = _polyvit_run(str(config_path))
    edited = _polyvit_run(str(config_path), "training.learning_rate=0.002")
    return {"first": first, "again": again, "edited": edited, "root": str(pipeline_root)}


def test_transform_and_trainer_read_the_newest_two_spans(runs):
    first, root = runs["first"], runs["root"]
    assert first.failed_nodes == []
    produced = {(a.node, a.key): a for a in first.artifacts}
    assert produced[("MediaExampleGen", "examples")].properties["span"] == 3
    # Every Trainer and Transform execution read spans 2 and 3 (of the 3 ingested).
    assert _input_spans(root, "Transform") == [[2, 3]]
    assert _input_spans(root, "Trainer") == [[2, 3], [2, 3]]
    # run_fn read both artifacts, and the report names their spans (summary and page).
    trained = run_fn.read_training_identity(produced[("Trainer", "model")].uri)["examples"]
    assert len(trained) == 2 and all(uri.startswith(root) for uri in trained)
    report = produced[("ModelReport", "report")].uri
    with open(os.path.join(report, "summary.json")) as f:
        summary = json.load(f)
    assert summary["trained_on"]["spans"] == [2, 3]
    with open(os.path.join(report, "index.html")) as f:
        page = f.read()
    assert "Training data and warm start" in page and "<td>2, 3</td>" in page


def test_an_unchanged_rerun_is_served_from_the_cache(runs):
    again = runs["again"]
    assert set(again.completed_nodes) <= RESOLVERS
    assert set(again.cached_nodes) == set(DATA_STAGES + ["Transform"] + AFTER_TRAINING)


def test_a_training_edit_reruns_exactly_the_trainer_and_what_follows(runs):
    edited = runs["edited"]
    assert set(edited.cached_nodes) == set(DATA_STAGES + ["Transform"])
    assert set(edited.completed_nodes) - RESOLVERS == set(AFTER_TRAINING)


def _trained(outputs: local_runner.RunOutputs) -> tuple[dict, dict]:
    """(the Trainer's eval_metrics.json, its warm_start.json) of a run."""
    model_run = next(a for a in outputs.artifacts if (a.node, a.key) == ("Trainer", "model_run"))
    files = ("eval_metrics.json", run_fn.WARM_START_FILE)
    return tuple(json.load(open(os.path.join(model_run.uri, name))) for name in files)


def test_the_warm_started_retrain_trains_the_shorter_budget(runs):
    first_metrics, first_warm = _trained(runs["first"])
    assert first_warm == {} and first_metrics["total_steps"] == 6  # cold: training.steps
    metrics, warm = _trained(runs["edited"])
    model = next(a for a in runs["first"].artifacts if (a.node, a.key) == ("Trainer", "model"))
    assert warm["source"].startswith(model.uri) and warm["carried_heads"] == ["shapes"]
    assert metrics["total_steps"] == metrics["step"] == 3
    assert warm["steps"] == 3 and warm["steps_per_task"] == {"shapes": 3}
