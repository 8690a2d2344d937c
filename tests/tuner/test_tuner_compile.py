"""With tuning on, the real create_pipeline compiles for Kubeflow: a Tuner task run by this
project's executor, whose best hyperparameters feed the Trainer and whose trials feed the
report."""

from __future__ import annotations

import json
import os

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from core import config as config_lib
from pipeline import kubeflow_runner
from pipeline.pipeline import create_pipeline

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_tuned_pipeline_compiles_with_the_tuner_wired_in():
    config = config_lib.load(
        os.path.join(REPO, "configs", "ivvit_tuned.yaml"), ["data_root=gs://bucket/demo_data"]
    )
    pipeline = kubeflow_runner.build_pipeline(config, create_pipeline)
    spec, _ = kubeflow_runner.compile_pipeline(config, image="r.example/p:1", pipeline=pipeline)
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    tasks = spec["root"]["dag"]["tasks"]
    assert "Tuner" in tasks
    executor = json.dumps(spec["deploymentSpec"]["executors"]["Tuner_executor"])
    assert "components.tuner.executor.Executor" in executor
    tuner_inputs = tasks["Tuner"]["inputs"]
    assert tuner_inputs["parameters"]["tuner_fn"]["runtimeValue"]["constant"] == (
        "trainer.tuning_fn.tuner_fn"
    )
    custom = json.loads(tuner_inputs["parameters"]["custom_config"]["runtimeValue"]["constant"])
    assert custom["config"]["tuning"]["max_trials"] == config.tuning.max_trials
    hyperparameters = tasks["Trainer"]["inputs"]["artifacts"]["hyperparameters"]
    assert hyperparameters["taskOutputArtifact"] == {
        "producerTask": "Tuner",
        "outputArtifactKey": "best_hyperparameters",
    }
    results = tasks["ModelReport"]["inputs"]["artifacts"]["tuner_results"]
    assert results["taskOutputArtifact"]["producerTask"] == "Tuner"
    assert REPO not in json.dumps(spec)


def test_without_tuning_there_is_no_tuner():
    config = config_lib.load(
        os.path.join(REPO, "configs", "ivvit_tuned.yaml"),
        ["data_root=gs://bucket/demo_data", "tuning.enabled=false"],
    )
    nodes = {c.id: c for c in create_pipeline(config, pipeline_root="r", data_root="d").components}
    assert "Tuner" not in nodes
    assert "hyperparameters" not in nodes["Trainer"].inputs
    assert "tuner_results" not in nodes["ModelReport"].inputs
