"""Small stand-ins for the model and the input pipeline, with the same signatures, so the loop's
tests run in seconds: a linear-ish Keras model over 8-dim features and tf.data of fixed random
examples whose labels a linear model can learn."""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf
import tf_keras as keras

from core import config as config_lib
from tests.support import configs
from trainer import train_loop

FEATURE_DIM = 8
EXAMPLES_PER_TASK = 256


STANDIN_TASKS = {
    "alpha": configs.task("image", 4, batch_size=16, steps=300, lr_multiplier=1.0),
    "beta": configs.multi_label("image", 3, batch_size=8, steps=100, lr_multiplier=0.5),
}
STANDIN_TRAINING = {
    "optimizer": "adamw",
    "learning_rate": 0.01,
    "warmup_steps": 5,
    "checkpoint_every": 10,
    "log_every": 5,
    "eval_steps": 0,
}


def standin_config(
    schedule: str = "weighted", steps: int = 40, **training
) -> config_lib.TrainerConfig:
    """The Trainer's slice of a config of two tasks on the same modality: a single-label and a
    multi-label one; `training` overrides fields of the training section."""
    settings = {"schedule": schedule, "steps": steps, **training}
    config = configs.build(
        {"tasks": STANDIN_TASKS, "training": STANDIN_TRAINING},
        {f"training.{name}": value for name, value in settings.items()},
    )
    return config_lib.trainer_config(config)


class StandinModel(keras.Model):
    """(features, task) -> logits: a shared hidden layer and one head per task."""

    def __init__(self, config: config_lib.TrainerConfig):
        super().__init__(name="standin")
        self.task_names = [t.name for t in config.tasks]
        self.modality = {t.name: t.modality for t in config.tasks}
        self.shared = keras.layers.Dense(32, activation="relu", name="shared")
        self.heads = {
            t.name: keras.layers.Dense(t.num_classes, name=f"head_{t.name}") for t in config.tasks
        }

    def call(self, features, task=None, training=False):
        return self.heads[task](self.shared(features[self.modality[task]]))


def build_standin_model(config: config_lib.TrainerConfig) -> StandinModel:
    model = StandinModel(config)
    for task in config.tasks:
        model({task.modality: tf.zeros([1, FEATURE_DIM])}, task=task.name)
    return model


def task_arrays(task: config_lib.Task) -> tuple[np.ndarray, np.ndarray]:
    """Fixed examples of a task: labels are a linear function of the features."""
    rng = np.random.default_rng(sum(map(ord, task.name)))
    x = rng.normal(size=(EXAMPLES_PER_TASK, FEATURE_DIM)).astype(np.float32)
    w = rng.normal(size=(FEATURE_DIM, task.num_classes)).astype(np.float32)
    scores = x @ w
    if task.label_type == "multi":
        y = (scores > 0).astype(np.float32)
    else:
        y = np.eye(task.num_classes, dtype=np.float32)[scores.argmax(-1)]
    return x, y


def make_standin_dataset(
    file_pattern,
    task,
    inputs,
    *,
    training,
    batch_size,
    seed=0,
    input_context=None,
    num_clips=1,
    repeat=None,
    sleep_seconds: float = 0.0,
    **unused,
):
    """make_dataset's signature and output contract: ({modality: [B, D]}, labels [B, C])."""
    x, y = task_arrays(task)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if input_context is not None and input_context.num_input_pipelines > 1:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if training if repeat is None else repeat:
        ds = ds.repeat()
    ds = ds.map(lambda f, label: ({task.modality: f}, label))
    ds = ds.batch(batch_size, drop_remainder=unused.get("drop_remainder", True))
    if sleep_seconds:
        # Slows every batch down (the resume test needs time to kill a run mid-way).
        def slow(features, labels):
            pause = tf.numpy_function(
                lambda: (time.sleep(sleep_seconds), np.float32(0))[1], [], tf.float32
            )
            return features, labels + 0.0 * tf.ensure_shape(pause, [])

        ds = ds.map(slow)
    return ds


def train_standins(config: config_lib.TrainerConfig, model_dir, **kwargs):
    """The real co-training loop over the stand-in model and in-memory data."""
    patterns = {t.name: "in-memory" for t in config.tasks}
    return train_loop.train(
        config,
        str(model_dir),
        patterns,
        patterns,
        build_model_fn=build_standin_model,
        make_dataset_fn=make_standin_dataset,
        **kwargs,
    )
