"""IV-ViT's every_task schedule: each step trains every task on its own batch size, each task's
update applied by its own optimizer (own learning rate and weight decay), over its own path."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
import tf_keras as keras

from core import config as config_lib
from tests.support.configs import FEATURE_SHAPES, four_tasks, model_overrides, tiny_config
from trainer import every_task, schedules, train_loop
from trainer.model import build_model

SHAPES = {**FEATURE_SHAPES, "video": (2, *FEATURE_SHAPES["image"])}


def every_task_config() -> config_lib.TrainerConfig:
    tasks = four_tasks()
    del tasks["dtmf"], tasks["tone_mix"]
    overrides = {
        **model_overrides(num_layers=1, num_heads=2, zero_init_heads=False),
        "model.video_encoding": "frames",
        "tasks.digits.batch_size": 4,
        "tasks.motion.batch_size": 2,
        "tasks.motion.lr_multiplier": 0.5,
        "tasks.motion.weight_decay_multiplier": 0.0,
        "training.schedule": "every_task",
        "training.weight_decay": 0.1,
        "training.learning_rate": 0.01,
    }
    return config_lib.trainer_config(tiny_config(tasks, overrides))


def _restore(config, directory, total_steps=10):
    """train_loop.restore as train() calls it: model, the schedule's optimizers, the checkpoint."""
    schedule = schedules.TaskSchedule(config.tasks, config.training, total_steps)
    return train_loop.restore(
        config,
        tf.distribute.get_strategy(),
        schedule,
        total_steps,
        lambda c: build_model(c.model, c.tasks, feature_shapes=SHAPES),
        directory,
    )


def _step(config, state):
    """The every-task step over random batches of each task's shape and batch size."""
    iterators = {
        t.name: iter(
            tf.data.Dataset.range(1000).map(
                lambda _, t=t: (
                    {t.modality: tf.random.normal((t.batch_size, *SHAPES[t.modality]))},
                    tf.one_hot(tf.zeros([t.batch_size], tf.int32), t.num_classes),
                )
            )
        )
        for t in config.tasks
    }
    fns = every_task.step_functions(config, tf.distribute.get_strategy(), state, iterators)
    assert list(fns) == [("digits", "motion")]
    return fns[("digits", "motion")]


def _checkpoint_roots(path: str) -> set[str]:
    """The objects a checkpoint holds (not the bookkeeping every checkpoint has)."""
    names = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
    return names - {"save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH"}


def test_each_step_applies_every_task_with_its_own_batch_and_optimizer(tmp_path):
    config = every_task_config()
    assert schedules.TaskSchedule(config.tasks, config.training, 3).tasks_at(1) == (
        "digits",
        "motion",
    )
    state = _restore(config, str(tmp_path))
    model, optimizers = state.model, state.task_optimizers
    step = _step(config, state)
    # Own learning rate and weight decay per task (each batch has its task's batch_size).
    assert optimizers["digits"].weight_decay == 0.1
    assert not optimizers["motion"].weight_decay
    assert optimizers["motion"]._learning_rate.base == 0.005

    heads = {n: model.heads[n].trainable_variables[0] for n in ("digits", "motion")}
    shared = model.encoder.trainable_variables[0]
    before = {n: v.numpy().copy() for n, v in heads.items()}
    shared_before = shared.numpy().copy()
    for i in range(3):
        summaries = step()
        assert set(summaries) == {"digits", "motion"}
        for name, opt in optimizers.items():
            assert int(opt.iterations.numpy()) == i + 1, name  # every task's optimizer, each step
    for name, v in heads.items():
        assert not np.allclose(v.numpy(), before[name]), name
    assert not np.allclose(shared.numpy(), shared_before)
    # Each optimizer holds moments only for its task's path: no slot for the other task's head.
    digits_slots = {s.name for s in optimizers["digits"].variables}
    assert not any("head_motion" in name for name in digits_slots), digits_slots
    assert any("head_digits" in name for name in digits_slots)
    # Moments advanced (Adam's first moment of the shared kernel is nonzero for both).
    for opt in optimizers.values():
        moment = [s for s in opt.variables if "encoder" in s.name and s.shape == shared.shape]
        assert moment and np.abs(moment[0].numpy()).sum() > 0
    # The optimizers are saved with the run's checkpoint.
    path = state.manager.save()
    names = [n for n, _ in tf.train.list_variables(path)]
    assert any(n.startswith("task_optimizers/motion") for n in names)


def test_only_the_optimizers_the_schedule_uses_are_built_and_saved(tmp_path):
    config = every_task_config()
    state = _restore(config, str(tmp_path / "every_task"))
    assert state.optimizer is None and set(state.task_optimizers) == {"digits", "motion"}
    assert _checkpoint_roots(state.manager.save()) == {"model", "step", "task_optimizers"}

    training = dataclasses.replace(config.training, schedule="weighted")
    weighted = _restore(dataclasses.replace(config, training=training), str(tmp_path / "w"))
    assert weighted.optimizer is not None and weighted.task_optimizers == {}
    assert _checkpoint_roots(weighted.manager.save()) == {"model", "step", "optimizer"}


def test_a_resumed_run_restores_each_tasks_optimizer(tmp_path):
    config = every_task_config()
    state = _restore(config, str(tmp_path))
    step = _step(config, state)
    for _ in range(2):
        step()
    saved = {n: [v.numpy() for v in opt.variables] for n, opt in state.task_optimizers.items()}
    state.step.assign(2)
    state.manager.save()
    again = _restore(config, str(tmp_path))
    assert again.start_step == 2
    for name, values in saved.items():
        restored = again.task_optimizers[name]
        assert int(restored.iterations.numpy()) == 2, name
        for a, b in zip(restored.variables, values, strict=True):
            np.testing.assert_array_equal(a.numpy(), b)


def test_a_checkpoint_that_also_holds_a_shared_optimizer_still_resumes(tmp_path):
    # Runs before the shared optimizer was left out saved one beside the tasks' optimizers.
    config = every_task_config()
    state = _restore(config, str(tmp_path))
    _step(config, state)()
    state.step.assign(1)
    shared = keras.optimizers.Adam()
    shared.build(state.model.trainable_variables)
    older = tf.train.Checkpoint(
        model=state.model,
        step=state.step,
        optimizer=shared,
        task_optimizers=tf.train.Checkpoint(**state.task_optimizers),
    )
    older.save(str(tmp_path / "ckpt"))
    again = _restore(config, str(tmp_path))
    assert again.start_step == 1
    assert int(again.task_optimizers["motion"].iterations.numpy()) == 1


def _random_batches(pattern, task, inputs, *, training, batch_size, **_):
    """make_dataset_fn stand-in: random examples of the task's shape and batch size."""

    def one(_):
        features = {task.modality: tf.random.normal((batch_size, *SHAPES[task.modality]))}
        return features, tf.one_hot(tf.zeros([batch_size], tf.int32), task.num_classes)

    return tf.data.Dataset.range(1000).map(one)


def test_the_training_loop_runs_and_resumes_the_every_task_schedule(tmp_path):
    config = every_task_config()
    patterns = {t.name: "unused" for t in config.tasks}

    def run(steps):
        training = dataclasses.replace(
            config.training, steps=steps, log_every=3, checkpoint_every=3
        )
        return train_loop.train(
            dataclasses.replace(config, training=training),
            str(tmp_path),
            patterns,
            None,
            build_model_fn=lambda c: build_model(c.model, c.tasks, feature_shapes=SHAPES),
            make_dataset_fn=_random_batches,
        ).to_json()

    first = run(6)
    assert first["steps_per_task"] == {"digits": 6, "motion": 6}
    assert [(h["task"], h["step"]) for h in first["history"]] == [
        ("digits", 3),
        ("motion", 3),
        ("digits", 6),
        ("motion", 6),
    ]
    resumed = run(9)
    assert resumed["step"] == 9
    assert [(h["task"], h["step"]) for h in resumed["history"]] == [("digits", 9), ("motion", 9)]
