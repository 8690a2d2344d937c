"""The Trainer receives its slice of the config only: editing the serving, evaluation or
Kubeflow settings leaves its custom_config (a TFX execution property, part of its cache key
and the source of its resume fingerprint) exactly as it was."""

from __future__ import annotations

import json

import pytest
from pipeline_corpus import corpus_config_dict

from core import config as config_lib
from pipeline.pipeline import create_pipeline


def _trainer_custom_config(*overrides: str) -> dict:
    data = config_lib.apply_overrides(corpus_config_dict("data", "root"), list(overrides))
    pipeline = create_pipeline(config_lib.from_dict(data), pipeline_root="root", data_root="data")
    (trainer,) = [c for c in pipeline.components if c.id == "Trainer"]
    custom_config = trainer.exec_properties["custom_config"]
    return json.loads(custom_config) if isinstance(custom_config, str) else custom_config


@pytest.mark.parametrize(
    "override",
    [
        "serving.port=9000",
        "serving.top_k=3",
        "evaluation.max_regression=0.5",
        "kubeflow.image=registry.example/polyvit:2",
    ],
)
def test_serving_evaluation_and_kubeflow_edits_leave_the_trainer_config_alone(override):
    assert _trainer_custom_config(override) == _trainer_custom_config()


def test_the_trainer_config_is_the_trainer_slice_with_the_resolved_strategy():
    received = config_lib.from_custom_config(
        _trainer_custom_config(), config_lib.TrainerConfig, "test"
    )
    config = config_lib.from_dict(corpus_config_dict("data", "root"))
    assert received == config_lib.trainer_config(config)
    assert set(_trainer_custom_config()) == {config_lib.CUSTOM_CONFIG_KEY}
    # A training edit does reach the Trainer.
    assert _trainer_custom_config("training.learning_rate=0.5") != _trainer_custom_config()
