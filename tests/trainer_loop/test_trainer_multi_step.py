"""training.steps_per_loop: several steps per traced call, the schedule's task sequence kept,
logs and checkpoints at the same steps, resume exact to the step."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import trainer_loop_standins as standins

from trainer import train_loop


def _rows(history):
    return [(h["step"], h["task"], h["steps"]) for h in history]


def test_loop_chunks_end_at_log_and_checkpoint_steps():
    training = standins.standin_config(steps_per_loop=8, log_every=5, checkpoint_every=12).training
    chunks = train_loop.loop_chunks(0, 26, training)
    assert chunks == [(0, 5), (5, 8), (8, 10), (10, 12), (12, 15), (15, 16), (16, 20)] + [
        (20, 24),
        (24, 25),
        (25, 26),
    ]
    # A resumed run starts at its checkpoint step and keeps the same boundaries.
    assert train_loop.loop_chunks(12, 26, training) == chunks[4:]
    one = dataclasses.replace(training, steps_per_loop=1)
    assert train_loop.loop_chunks(3, 7, one) == [(3, 4), (4, 5), (5, 6), (6, 7)]


@pytest.mark.parametrize("schedule", ["weighted", "accumulate"])
def test_several_steps_per_call_give_the_losses_of_one_step_per_call(tmp_path, schedule):
    results = {}
    for steps_per_loop in (1, 7):
        config = standins.standin_config(
            schedule, steps=30, log_every=10, checkpoint_every=15, steps_per_loop=steps_per_loop
        )
        results[steps_per_loop] = standins.train_standins(config, tmp_path / str(steps_per_loop))
    one, seven = results[1], results[7]
    assert _rows(seven.history) == _rows(one.history)
    assert len({h["task"] for h in one.history}) == 2
    np.testing.assert_allclose(
        [h["loss"] for h in seven.history], [h["loss"] for h in one.history], rtol=1e-5, atol=1e-6
    )
    for name in ("alpha", "beta"):
        assert seven.metrics[name]["value"] == pytest.approx(one.metrics[name]["value"], abs=1e-6)
    checkpoints = tf.train.get_checkpoint_state(str(tmp_path / "7" / train_loop.CHECKPOINT_DIR))
    assert [p.rsplit("-", 1)[1] for p in checkpoints.all_model_checkpoint_paths] == [
        "15",
        "30",
    ]


def test_a_resumed_multi_step_run_continues_the_same_task_sequence(tmp_path):
    config = standins.standin_config(
        "weighted", steps=40, log_every=4, checkpoint_every=10, steps_per_loop=6
    )
    whole = standins.train_standins(config, tmp_path / "whole")

    # The same run stopped after step 20: its checkpoint state rewound to ckpt-20.
    run_dir = tmp_path / "resumed"
    standins.train_standins(config, run_dir)
    checkpoints = str(run_dir / train_loop.CHECKPOINT_DIR)
    rewound = tf.train.get_checkpoint_state(checkpoints).all_model_checkpoint_paths
    ckpt_20 = next(p for p in rewound if p.endswith("ckpt-20"))
    tf.compat.v1.train.update_checkpoint_state(checkpoints, ckpt_20, [ckpt_20])
    resumed = standins.train_standins(config, run_dir)

    assert resumed.start_step == 20 and resumed.step == 40
    after = [row for row in _rows(whole.history) if row[0] > 20]
    assert _rows(resumed.history) == after  # the same tasks at the same steps
    assert sum(1 for row in after if row[1] == "beta") > 0
