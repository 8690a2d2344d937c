"""TFX's cache under LocalDagRunner: a re-run after serving and evaluation edits reuses the
ingestion, an ingestion edit or a new input file re-runs it; spans: each run ingests the newest
span (or the one asked for), and TFX's own SpanRangeStrategy reads the artifacts' spans."""

from __future__ import annotations

import os
import shutil

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from pipeline_corpus import corpus_config_dict, write_corpus
from tfx import v1 as tfx

from components.media_example_gen import spans
from components.media_example_gen.component import MediaExampleGen
from core import config as config_lib

pytestmark = pytest.mark.e2e

State = metadata_store_pb2.Execution


def run_ingestion(data_root: str, pipeline_root: str, *overrides: str, data=None) -> None:
    """Runs MediaExampleGen, built as create_pipeline builds it for `polyvit run` (with the
    input fingerprint), alone with the cache on."""
    data = data or corpus_config_dict(data_root, pipeline_root)
    config = config_lib.from_dict(config_lib.apply_overrides(data, list(overrides)))
    ingest = config_lib.ingest_config(config)
    example_gen = MediaExampleGen(
        ingest, data_root=data_root, input_fingerprint=spans.input_fingerprint(ingest, data_root)
    )
    tfx.orchestration.LocalDagRunner().run(
        tfx.dsl.Pipeline(
            pipeline_name=config.pipeline_name,
            pipeline_root=pipeline_root,
            components=[example_gen],
            enable_cache=True,
            metadata_connection_config=metadata_config(pipeline_root),
            beam_pipeline_args=["--direct_num_workers=1", "--direct_running_mode=in_memory"],
        )
    )


def metadata_config(pipeline_root: str):
    path = os.path.join(pipeline_root, "metadata.sqlite")
    return tfx.orchestration.metadata.sqlite_metadata_connection_config(path)


def executions(pipeline_root: str) -> tuple[list[int], int]:
    """(the states of every execution, oldest first; the number of Examples artifacts)."""
    store = metadata_store.MetadataStore(metadata_config(pipeline_root))
    states = [e.last_known_state for e in sorted(store.get_executions(), key=lambda e: e.id)]
    return states, len(store.get_artifacts_by_type("Examples"))


def test_only_ingestion_edits_rerun_media_example_gen(tmp_path):
    data_root, pipeline_root = str(tmp_path / "data"), str(tmp_path / "run")
    write_corpus(data_root)

    run_ingestion(data_root, pipeline_root)
    assert executions(pipeline_root) == ([State.COMPLETE], 1)

    run_ingestion(data_root, pipeline_root, "serving.port=9001", "evaluation.max_regression=0.5")
    assert executions(pipeline_root) == ([State.COMPLETE, State.CACHED], 1)

    run_ingestion(data_root, pipeline_root, "ingestion.jpeg_quality=60")
    assert executions(pipeline_root) == ([State.COMPLETE, State.CACHED, State.COMPLETE], 2)

    # A file added to the data: the input fingerprint, hence the cache key, changes.
    shutil.copy(
        os.path.join(data_root, "shapes/train/circle/0.png"),
        os.path.join(data_root, "shapes/train/circle/new.png"),
    )
    run_ingestion(data_root, pipeline_root, "ingestion.jpeg_quality=60")
    states, count = executions(pipeline_root)
    assert (states[-1], count) == (State.COMPLETE, 3)
    # The cache is keyed by content: the corpus holds 9 files whose bytes repeat an earlier
    # file's (reused within the run); after the edit-free re-run every good media file (6
    # images, 4 videos, 6 wavs, not the bad one nor the records) and the added copy come from
    # the decode cache.
    reused = [
        a.get_int_custom_property("decode_cache_reused") for a in examples_artifacts(pipeline_root)
    ]
    assert reused == [9, 9, 17]


def examples_artifacts(pipeline_root: str) -> list:
    """The Examples artifacts in the store as TFX artifacts, oldest first."""
    store = metadata_store.MetadataStore(metadata_config(pipeline_root))
    found = []
    for mlmd_artifact in sorted(store.get_artifacts_by_type("Examples"), key=lambda a: a.id):
        artifact = tfx.types.standard_artifacts.Examples()
        artifact.set_mlmd_artifact(mlmd_artifact)
        found.append(artifact)
    return found


def test_runs_ingest_the_newest_span_and_tfx_resolves_a_rolling_window(tmp_path):
    corpus, data_root, pipeline_root = tmp_path / "corpus", tmp_path / "data", tmp_path / "run"
    write_corpus(str(corpus))

    def add_span(span: int) -> None:
        shutil.copytree(corpus / "shapes", data_root / "shapes" / f"span-{span}")

    data = corpus_config_dict(str(data_root), str(pipeline_root))
    data["tasks"] = {"shapes": {**data["tasks"]["shapes"]}}
    data["tasks"]["shapes"]["data"] = {
        **data["tasks"]["shapes"]["data"],
        "root": "shapes/span-{SPAN}",
    }
    add_span(1)
    add_span(2)
    run_ingestion(str(data_root), str(pipeline_root), data=data)
    add_span(3)
    run_ingestion(str(data_root), str(pipeline_root), data=data)
    run_ingestion(str(data_root), str(pipeline_root), data=data)  # unchanged: cached
    run_ingestion(str(data_root), str(pipeline_root), "ingestion.span=1", data=data)
    assert executions(pipeline_root)[0] == [
        State.COMPLETE,
        State.COMPLETE,
        State.CACHED,
        State.COMPLETE,
    ]

    artifacts = examples_artifacts(str(pipeline_root))
    assert [a.get_int_custom_property("span") for a in artifacts] == [2, 3, 1]
    assert [a.span for a in artifacts] == [2, 3, 1]
    assert not any(a.has_custom_property("version") for a in artifacts)  # no {VERSION}

    window = tfx.dsl.experimental.SpanRangeStrategy(
        range_config=tfx.proto.RangeConfig(rolling_range=tfx.proto.RollingRange(num_spans=2))
    )
    store = metadata_store.MetadataStore(metadata_config(str(pipeline_root)))
    resolved = window.resolve_artifacts(store, {"examples": artifacts})
    assert [a.span for a in resolved["examples"]] == [3, 2]
