"""Each stage's execution properties (TFX's cache key) depend on its own slice of the config only:
editing serving or Kubeflow settings must not re-run ingestion, Transform or the Trainer."""

from __future__ import annotations

import json

import pytest
from pipeline_corpus import corpus_config_dict

from core import config as config_lib
from pipeline.pipeline import create_pipeline

# Edits that concern serving, the evaluation gate or the cluster, none of them the data's.
ELSEWHERE = [
    "serving.port=9001",
    "serving.top_k=2",
    "evaluation.max_regression=0.5",
    "kubeflow.image=registry.example/polyvit:2",
    "kubeflow.host=https://kfp.example",
]


def exec_properties(*overrides: str) -> dict[str, dict]:
    """{component id: exec_properties} of the pipeline for the corpus config with `--set`s."""
    data = config_lib.apply_overrides(corpus_config_dict("data", "root"), list(overrides))
    pipeline = create_pipeline(config_lib.from_dict(data), pipeline_root="root", data_root="data")
    return {node.id: node.exec_properties for node in pipeline.components}


@pytest.fixture(scope="module")
def base() -> dict[str, dict]:
    return exec_properties()


@pytest.mark.parametrize("edit", ELSEWHERE)
def test_edits_elsewhere_keep_ingestion_and_transform_as_they_were(base, edit):
    edited = exec_properties(edit)
    assert edited["MediaExampleGen"] == base["MediaExampleGen"]
    assert edited["Transform"] == base["Transform"]


@pytest.mark.parametrize("edit", [e for e in ELSEWHERE if not e.startswith("evaluation.")])
def test_serving_and_kubeflow_edits_keep_the_report_as_it_was(base, edit):
    assert exec_properties(edit)["ModelReport"] == base["ModelReport"]


def test_the_report_follows_the_thresholds_it_shows(base):
    edited = exec_properties("evaluation.max_regression=0.5")
    assert edited["ModelReport"] != base["ModelReport"]


@pytest.mark.parametrize("edit", ELSEWHERE)
def test_edits_elsewhere_keep_the_trainer_as_it_was(base, edit):
    assert exec_properties(edit)["Trainer"] == base["Trainer"]


def test_ingestion_edits_change_ingestion_only_among_the_data_stages(base):
    edited = exec_properties("ingestion.fps=2")
    assert edited["MediaExampleGen"] != base["MediaExampleGen"]
    assert edited["Transform"] == base["Transform"]


def test_input_edits_change_transform_and_not_ingestion(base):
    edited = exec_properties("inputs.num_mel_bins=32")
    assert edited["Transform"] != base["Transform"]
    assert edited["MediaExampleGen"] == base["MediaExampleGen"]


def test_the_trainer_receives_its_slice_with_the_resolved_strategy(base):
    # TFX keeps custom_config as JSON text among the execution properties.
    custom_config = json.loads(base["Trainer"]["custom_config"])
    received = config_lib.from_custom_config(custom_config, config_lib.TrainerConfig, "test")
    config = config_lib.from_dict(corpus_config_dict("data", "root"))
    assert received == config_lib.trainer_config(config)
    # A training edit does reach the Trainer.
    edited = exec_properties("training.learning_rate=0.5")
    assert edited["Trainer"] != base["Trainer"]
