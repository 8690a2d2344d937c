"""Runs the real TFX executors (Transform, Evaluator) on the tiny records, and exports tiny
models with the eval signatures, for the evaluation tests."""

from __future__ import annotations

import json
import os
import shutil

import tensorflow as tf
import tf_keras as keras
from google.protobuf import json_format
from tfx.components.evaluator import executor as evaluator_executor
from tfx.components.transform import executor as transform_executor
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2, transform_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from components.evaluation import config as evaluation
from core import config as config_lib
from core import features as keys
from core.schema import CURATED_SCHEMA_PATH
from trainer import eval_signatures
from trainer.model import build_model

SERVING_FORMAT = "Format-Serving"  # where TFX's Trainer puts the serving model in a Model


def examples_artifact(uri: str) -> standard_artifacts.Examples:
    examples = standard_artifacts.Examples()
    examples.uri = uri
    examples.split_names = artifact_utils.encode_split_names(list(keys.SPLITS))
    examples_utils.set_payload_format(
        examples, example_gen_pb2.PayloadFormat.FORMAT_TF_SEQUENCE_EXAMPLE
    )
    return examples


def schema_artifact(next_to: str) -> standard_artifacts.Schema:
    """The curated schema (core/schema/schema.pbtxt) alone in a folder beside `next_to`,
    as SchemaGen would write it (TFX reads the only file of the artifact's folder)."""
    schema = standard_artifacts.Schema()
    schema.uri = os.path.join(os.path.dirname(next_to.rstrip("/")), "schema")
    os.makedirs(schema.uri, exist_ok=True)
    shutil.copy(CURATED_SCHEMA_PATH, schema.uri)
    return schema


def run_transform(config, examples_uri: str, output_uri: str) -> str:
    graph = standard_artifacts.TransformGraph()
    graph.uri = output_uri
    transform_executor.Executor().Do(
        {"examples": [examples_artifact(examples_uri)], "schema": [schema_artifact(examples_uri)]},
        {"transform_graph": [graph]},
        {
            "preprocessing_fn": "transforms.preprocessing.preprocessing_fn",
            "custom_config": json.dumps(
                config_lib.to_custom_config(config_lib.transform_config(config))
            ),
            "splits_config": json_format.MessageToJson(
                transform_pb2.SplitsConfig(analyze=[keys.TRAIN])
            ),
            "force_tf_compat_v1": 0,
            "disable_statistics": 1,
        },
    )
    return output_uri


def export_model(config, vocabularies, model_uri: str, *, seed: int, audio_stats=(0.0, 1.0)):
    """A randomly initialised tiny PolyViT saved with the eval signatures, as TFX's Trainer
    would lay it out in a Model artifact. Returns (model_uri, serving model dir)."""
    keras.utils.set_random_seed(seed)
    model = build_model(config.model, config.tasks, config.inputs)
    signatures = eval_signatures.extra_signatures(
        model, config_lib.trainer_config(config), vocabularies, *audio_stats
    )
    module = tf.Module()
    module.model_variables = list(model.variables)
    serving_dir = os.path.join(model_uri, SERVING_FORMAT)
    tf.saved_model.save(module, serving_dir, signatures=signatures)
    return model_uri, serving_dir


def model_artifact(uri: str, artifact_id: int) -> standard_artifacts.Model:
    model = standard_artifacts.Model()
    model.uri = uri
    model.id = artifact_id
    return model


def run_evaluator(config, examples_uri: str, model_uri: str, output_root: str, baseline_uri=None):
    """The Evaluator executor with make_eval_config(config); returns (evaluation uri, blessing
    uri, blessed)."""
    evaluation_artifact = standard_artifacts.ModelEvaluation()
    evaluation_artifact.uri = os.path.join(output_root, "evaluation")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = os.path.join(output_root, "blessing")
    inputs = {
        "examples": [examples_artifact(examples_uri)],
        "schema": [schema_artifact(examples_uri)],
        "model": [model_artifact(model_uri, 2)],
    }
    if baseline_uri:
        inputs["baseline_model"] = [model_artifact(baseline_uri, 1)]
    evaluator_executor.Executor().Do(
        inputs,
        {"evaluation": [evaluation_artifact], "blessing": [blessing]},
        {
            "eval_config": proto_utils.proto_to_json(evaluation.make_eval_config(config)),
            "example_splits": json.dumps([keys.EVAL]),
        },
    )
    blessed = os.path.exists(os.path.join(blessing.uri, "BLESSED"))
    if not blessed and not os.path.exists(os.path.join(blessing.uri, "NOT_BLESSED")):
        raise AssertionError(f"the Evaluator wrote no blessing in {blessing.uri}")
    return evaluation_artifact.uri, blessing.uri, blessed
