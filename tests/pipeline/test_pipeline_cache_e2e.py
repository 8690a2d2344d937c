"""TFX's cache under LocalDagRunner: a re-run after serving and evaluation edits reuses the
ingestion, an ingestion edit re-runs it."""

from __future__ import annotations

import os

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from pipeline_corpus import corpus_config_dict, write_corpus
from tfx import v1 as tfx

from components.media_example_gen.component import MediaExampleGen
from core import config as config_lib

pytestmark = pytest.mark.e2e

State = metadata_store_pb2.Execution


def run_ingestion(data_root: str, pipeline_root: str, *overrides: str) -> None:
    """Runs MediaExampleGen, built as create_pipeline builds it, alone with the cache on."""
    data = config_lib.apply_overrides(corpus_config_dict(data_root, pipeline_root), list(overrides))
    config = config_lib.from_dict(data)
    example_gen = MediaExampleGen(config_lib.ingest_config(config), data_root=data_root)
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
