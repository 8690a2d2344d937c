"""Evaluation traces one graph per task: a retrace per batch shape would make TensorFlow warn
("N out of the last N calls to eval_step triggered tf.function retracing")."""

from __future__ import annotations

import tensorflow as tf
import trainer_loop_standins as standins

from trainer import train_loop


class TraceCountingModel(standins.StandinModel):
    """Records the task of every Python call of `call`: inside tf.function, one per trace."""

    def __init__(self, config):
        super().__init__(config)
        self.traced = []

    def call(self, features, task=None, training=False):
        self.traced.append(task)
        return super().call(features, task=task, training=training)


def test_a_partial_last_batch_does_not_trace_a_second_graph():
    # 256 examples per task in batches of 100: two full batches and one of 56.
    config = standins.standin_config(eval_batch_size=100)
    model = TraceCountingModel(config)
    for task in config.tasks:
        model({task.modality: tf.zeros([1, standins.FEATURE_DIM])}, task=task.name)
    model.traced.clear()

    for task in config.tasks:
        result = train_loop.evaluate_task(
            model,
            task,
            config,
            "in-memory",
            tf.distribute.get_strategy(),
            standins.make_standin_dataset,
        )
        assert result["num_examples"] == standins.EXAMPLES_PER_TASK
    assert model.traced == [task.name for task in config.tasks]
