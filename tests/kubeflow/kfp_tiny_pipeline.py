"""A small TFX pipeline for the Kubeflow tests: the shape of the real one (an example generator
that takes the data root, a Trainer that takes train_args), fast enough to execute in a test.

The container image used to run these is the test's own interpreter, so this module must be
importable from the executor subprocesses: tests put this folder on PYTHONPATH.
"""

import json
import os

import tensorflow as tf
from tfx import v1 as tfx

from core.config import Config
from pipeline import accelerators

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@tfx.dsl.components.component
def TinyExampleGen(
    data_root: tfx.dsl.components.Parameter[str],
    examples: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.Examples],
) -> None:
    """One tf.Example per file under data_root/<label>/, in train and eval splits."""
    labels = sorted(os.listdir(data_root))
    rows = [
        (os.path.join(label, name), index)
        for index, label in enumerate(labels)
        for name in sorted(os.listdir(os.path.join(data_root, label)))
    ]
    splits = {"train": rows[::2], "eval": rows[1::2]}
    for split, split_rows in splits.items():
        folder = os.path.join(examples.uri, f"Split-{split}")
        tf.io.gfile.makedirs(folder)
        with tf.io.TFRecordWriter(os.path.join(folder, "data.tfrecord")) as writer:
            for path, label in split_rows:
                example = tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            "path": tf.train.Feature(
                                bytes_list=tf.train.BytesList(value=[path.encode()])
                            ),
                            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                        }
                    )
                )
                writer.write(example.SerializeToString())
    examples.split_names = json.dumps(sorted(splits))
    examples.set_int_custom_property("num_examples", len(rows))


def run_fn(fn_args) -> None:
    """Counts training records and writes the count and the step budget as the 'model'."""
    count = sum(
        1 for f in fn_args.train_files for _ in tf.data.TFRecordDataset(tf.io.gfile.glob(f))
    )
    tf.io.gfile.makedirs(fn_args.serving_model_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.serving_model_dir, "model.json"), "w") as f:
        f.write(json.dumps({"train_records": count, "train_steps": fn_args.train_steps}))


def create_pipeline(
    config: Config,
    *,
    pipeline_root: str,
    data_root: str,
    metadata_path=None,
    beam_pipeline_args=None,
    enable_cache: bool = False,
    runtime_parameters=None,
) -> tfx.dsl.Pipeline:
    params = runtime_parameters or {}
    example_gen = TinyExampleGen(data_root=params.get("data_root", data_root))
    trainer_class = accelerators.trainer_component_class(config)
    trainer = trainer_class(
        run_fn=f"{__name__}.run_fn",
        examples=example_gen.outputs["examples"],
        train_args=params.get("train_args", tfx.proto.TrainArgs(num_steps=config.training.steps)),
        eval_args=tfx.proto.EvalArgs(num_steps=1),
        custom_config=accelerators.trainer_custom_config(config) or None,
    )
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=pipeline_root,
        components=[example_gen, trainer],
        beam_pipeline_args=beam_pipeline_args or [],
        enable_cache=enable_cache,
        metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
            if metadata_path
            else None
        ),
    )
