"""The co-training loop on stand-in model and data: it learns, it writes its summaries,
checkpoints and metrics, it resumes after a real SIGKILL, and two replicas give the losses of
one device for the same global batch and seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
import trainer_loop_standins as standins

from core.config import ConfigError
from trainer import train_loop

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "trainer_loop_worker.py")
REPO = os.path.dirname(os.path.dirname(HERE))


def _worker(*args, **popen):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    return subprocess.Popen(
        [sys.executable, WORKER, *map(str, args)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_loop_learns_a_learnable_task_and_writes_its_outputs(tmp_path):
    config = standins.standin_config("weighted", steps=120, log_every=20, checkpoint_every=50)
    result = standins.train_standins(config, tmp_path)

    alpha = [h["loss"] for h in result.history if h["task"] == "alpha"]
    assert alpha[-1] < 0.6 * alpha[0], alpha
    assert result.metrics["alpha"]["metric"] == "top1"
    assert result.metrics["alpha"]["value"] > 0.8
    assert result.metrics["beta"]["metric"] == "mAP"
    assert result.metrics["beta"]["value"] > 0.8
    assert result.steps_per_task == {"alpha": 90, "beta": 30}

    written = json.loads((tmp_path / train_loop.METRICS_FILE).read_text())
    assert written["step"] == 120 and written["tasks"]["alpha"]["num_examples"] == 256
    # The file is the result's JSON-able summary, nothing more (no model).
    assert written == json.loads(json.dumps(result.to_json()))
    assert sorted(written) == [
        "history",
        "is_chief",
        "num_replicas",
        "schedule",
        "start_step",
        "step",
        "steps_per_task",
        "strategy",
        "tasks",
        "total_steps",
    ]
    # Checkpoints at 50, 100 and the last step; max_to_keep 3 keeps all three.
    latest = tf.train.latest_checkpoint(str(tmp_path / train_loop.CHECKPOINT_DIR))
    assert latest.endswith("ckpt-120")
    tags = set()
    for event_file in tf.io.gfile.glob(str(tmp_path / "train" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            tags.update(v.tag for v in event.summary.value)
    assert {"alpha/loss", "alpha/top1", "beta/batch_mAP", "beta/learning_rate"} <= tags
    assert {"learning_rate", "steps_per_sec"} <= tags


def test_accumulate_trains_every_task_each_step(tmp_path):
    config = standins.standin_config("accumulate", steps=10, log_every=5)
    result = standins.train_standins(config, tmp_path)
    assert [(h["step"], h["task"], h["steps"]) for h in result.history] == [
        (5, "alpha", 5),
        (5, "beta", 5),
        (10, "alpha", 5),
        (10, "beta", 5),
    ]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_mixed_precision_trains_and_leaves_the_global_policy_alone(tmp_path, dtype):
    config = standins.standin_config(
        "weighted", steps=30, log_every=10, mixed_precision=True, mixed_precision_dtype=dtype
    )
    result = standins.train_standins(config, tmp_path)
    assert result.model.shared.compute_dtype == dtype
    assert result.model.shared.dtype == "float32"  # variables stay float32
    assert keras.mixed_precision.global_policy().name == "float32"
    losses = [h["loss"] for h in result.history if h["task"] == "alpha"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_a_finished_run_restarted_does_not_train_again(tmp_path):
    config = standins.standin_config("uniform", steps=10, log_every=5)
    standins.train_standins(config, tmp_path)
    again = standins.train_standins(config, tmp_path)
    assert again.start_step == 10 and again.history == []


# Bad training values (log_every 0, ...) are refused when the config loads:
# tests/foundation/test_config_rules.py.


def test_batch_not_divisible_by_replicas_names_the_field(tmp_path):
    config = standins.standin_config("weighted", steps=4)
    config.tasks[1].batch_size = 7

    class TwoReplicas:
        num_replicas_in_sync = 2

    with pytest.raises(ConfigError, match=r"tasks\.beta\.batch_size"):
        standins.train_standins(config, tmp_path, strategy=TwoReplicas())


def test_mirrored_on_two_cpus_gives_the_losses_of_one_device(tmp_path):
    out = tmp_path / "losses.json"
    proc = _worker("equivalence", out, "weighted,accumulate", 8)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    for schedule, losses in json.loads(out.read_text()).items():
        default, mirrored = losses["default"], losses["mirrored"]
        assert [row[:2] for row in default] == [row[:2] for row in mirrored], schedule
        assert len({row[1] for row in default}) == 2, schedule  # both tasks were trained
        np.testing.assert_allclose(
            [row[2] for row in mirrored],
            [row[2] for row in default],
            rtol=1e-5,
            atol=1e-5,
            err_msg=schedule,
        )


def test_resume_after_sigkill_continues_from_the_checkpoint(tmp_path):
    model_dir = tmp_path / "run"
    checkpoints = model_dir / train_loop.CHECKPOINT_DIR
    # 0.05 s per batch: 400 steps would take 20 s; the run is killed at its first checkpoint.
    proc = _worker("train", model_dir, "weighted", 400, 0.05)
    deadline = time.monotonic() + 180
    while not (checkpoints / "checkpoint").exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 180 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    killed_at = int(tf.train.latest_checkpoint(str(checkpoints)).rsplit("-", 1)[1])
    assert 0 < killed_at < 400

    restart = _worker("train", model_dir, "weighted", 400, 0.0)
    out, err = restart.communicate(timeout=300)
    assert restart.returncode == 0, err[-3000:]
    result = json.loads(out.split("RESULT ", 1)[1])
    assert result == {"start_step": killed_at, "step": 400}
    assert f"Resuming from a checkpoint at step {killed_at} of 400" in err
    assert tf.train.latest_checkpoint(str(checkpoints)).endswith("ckpt-400")
