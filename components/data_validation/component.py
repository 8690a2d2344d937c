"""TFX components around ExampleValidator: `MediaSchemaGen` and `DataValidationGate`.

ExampleValidator (TFX 1.16) only records anomalies: it writes them to its ExampleAnomalies
artifact and marks the artifact `blessed` per split, but it never fails. The gate turns any
anomaly into a failed execution, so every stage wired after it (Transform, Trainer, ...) is
never run on bad data.

(No `from __future__ import annotations` here: the @component decorator reads the real type
annotations of the functions.)
"""

import json
import os

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.types import artifact_utils

from components.data_validation import checks
from core import features

# Where ExampleValidator writes each split's anomalies inside its artifact.
_ANOMALIES_FILE = "SchemaDiff.pb"
_SCHEMA_FILE = "schema.pbtxt"


@tfx.dsl.components.component
def MediaSchemaGen(
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    schema: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Schema],
    task_names: tfx.dsl.components.Parameter[str],
) -> None:
    """The curated schema (core/schema/schema.pbtxt, read from the installed package) with
    the train split's labels and the config's task names as domains.

    Validating eval against it flags every eval label never seen in train.
    `task_names` is a JSON list.
    """
    train_stats = stats_artifact_utils.load_statistics(statistics, features.TRAIN).proto()
    extended = checks.with_domains(
        checks.curated_schema(), checks.train_labels(train_stats), json.loads(task_names)
    )
    tfdv.write_schema_text(extended, os.path.join(schema.uri, _SCHEMA_FILE))


def _split_anomalies(anomalies_artifact, split: str) -> anomalies_pb2.Anomalies:
    path = os.path.join(artifact_utils.get_split_uri([anomalies_artifact], split), _ANOMALIES_FILE)
    with tf.io.gfile.GFile(path, "rb") as f:
        return anomalies_pb2.Anomalies.FromString(f.read())


@tfx.dsl.components.component
def DataValidationGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    statistics: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleStatistics],
    task_modalities: tfx.dsl.components.Parameter[str],
    unlabelled_tasks: tfx.dsl.components.Parameter[str] = "[]",
) -> None:
    """Fails, listing every problem, when ExampleValidator found an anomaly in any split or a
    task's slice breaks the per-task rules (`checks.task_problems`).

    `task_modalities` is a JSON object {task: modality}; `unlabelled_tasks` a JSON list of the
    tasks whose records carry no labels (`labelled: false`).
    """
    modalities = json.loads(task_modalities)
    unlabelled = set(json.loads(unlabelled_tasks))
    train_stats = stats_artifact_utils.load_statistics(statistics, features.TRAIN).proto()
    problems = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        problems += checks.describe_anomalies(split, _split_anomalies(anomalies, split))
        split_stats = stats_artifact_utils.load_statistics(statistics, split).proto()
        gap = checks.label_histogram_gap(split_stats, split)
        if gap:
            problems.append(gap)
        problems += checks.task_problems(split_stats, train_stats, split, modalities, unlabelled)
    if problems:
        raise checks.DataValidationError(checks.gate_message(problems))
