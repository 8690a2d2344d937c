"""Strategy resolution for every `training.strategy`, TPU included (resolution and error paths
only: there is no TPU here, so connecting to one is not exercised)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from core.config import ConfigError, Training
from trainer import strategies

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_default_and_mirrored():
    assert strategies.resolve_strategy(Training(strategy="default")) is tf.distribute.get_strategy()
    mirrored = strategies.resolve_strategy(Training(strategy="mirrored"))
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync >= 1
    assert strategies.is_chief(mirrored) and strategies.num_workers(mirrored) == 1


def test_unknown_strategy_names_the_field():
    training = Training()
    training.strategy = "horovod"
    with pytest.raises(ConfigError, match="training.strategy"):
        strategies.resolve_strategy(training)


def test_tpu_address_comes_from_the_config_then_the_environment():
    assert strategies.tpu_address(Training(tpu_address="my-tpu"), {"TPU_NAME": "env"}) == "my-tpu"
    assert strategies.tpu_address(Training(), {"TPU_NAME": "env-tpu"}) == "env-tpu"
    with pytest.raises(strategies.StrategyError, match="training.tpu_address.*TPU_NAME"):
        strategies.tpu_address(Training(), {})


def test_tpu_strategy_resolves_the_cluster_and_hands_it_to_connect():
    seen = {}

    def connect(resolver):
        seen["master"] = resolver.master()
        seen["cluster"] = resolver.cluster_spec().as_dict()
        return "tpu-strategy"

    training = Training(strategy="tpu", tpu_address="grpc://10.1.2.3:8470")
    assert strategies.resolve_strategy(training, {}, connect=connect) == "tpu-strategy"
    assert seen == {"master": "grpc://10.1.2.3:8470", "cluster": {"worker": ["10.1.2.3:8470"]}}


def test_tpu_strategy_without_address_fails_before_connecting():
    def connect(resolver):
        raise AssertionError("must not connect")

    with pytest.raises(strategies.StrategyError, match="no TPU given"):
        strategies.resolve_strategy(Training(strategy="tpu"), {}, connect=connect)


def test_tpu_connection_failure_is_a_strategy_error(monkeypatch):
    def refuse(resolver):
        raise tf.errors.UnavailableError(None, None, "connection refused")

    monkeypatch.setattr(tf.config, "experimental_connect_to_cluster", refuse)
    resolver = strategies.tpu_cluster_resolver("grpc://10.1.2.3:8470")
    with pytest.raises(strategies.StrategyError, match="cannot reach 'grpc://10.1.2.3:8470'"):
        strategies.connect_tpu(resolver)


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"task": {"type": "worker", "index": 0}}), "needs a 'cluster'"),
        (json.dumps({"cluster": {"worker": ["a:1"]}}), "needs 'task'"),
        (
            json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}),
            "not in the cluster",
        ),
    ],
)
def test_bad_tf_config_is_rejected(raw, message):
    with pytest.raises(strategies.StrategyError, match=message):
        strategies.resolve_strategy(Training(strategy="multi_worker_mirrored"), {"TF_CONFIG": raw})
    assert strategies.tf_config({}) is None


def test_multi_worker_mirrored_single_worker_in_a_fresh_process():
    # The strategy must be the first thing TensorFlow does in its process.
    code = (
        "import os; from core import env; from core.config import Training;"
        "from trainer import strategies;"
        "s = strategies.resolve_strategy(Training(strategy='multi_worker_mirrored'), {});"
        "import tensorflow as tf;"
        "print(isinstance(s, tf.distribute.MultiWorkerMirroredStrategy),"
        " s.num_replicas_in_sync, strategies.is_chief(s),"
        " strategies.num_workers(s))"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    env.pop("TF_CONFIG", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-4:] == ["True", "1", "True", "1"]


def test_chief_is_the_chief_or_worker_zero_without_one():
    with_chief = {"chief": ["c:1"], "worker": ["w:1", "w:2"]}
    without = {"worker": ["w:1", "w:2"]}
    assert strategies.is_chief_task("chief", 0, with_chief)
    assert not strategies.is_chief_task("worker", 0, with_chief)
    assert strategies.is_chief_task("worker", 0, without)
    assert not strategies.is_chief_task("worker", 1, without)
    assert strategies.is_chief_task(None, None, {})
