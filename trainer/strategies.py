"""The tf.distribute strategy named by `training.strategy`.

  default                the default (single device) strategy
  mirrored               MirroredStrategy over every local GPU (or the logical CPUs if none)
  multi_worker_mirrored  MultiWorkerMirroredStrategy; the cluster comes from TF_CONFIG
                         (without TF_CONFIG it runs as a single worker)
  tpu                    TPUStrategy: the TPU at `training.tpu_address` (a TPU name,
                         grpc://host:8470, or "local" on a TPU VM), else the TPU_NAME variable

MultiWorkerMirroredStrategy must be created before TensorFlow runs any op (collectives are
configured at context creation), so call `resolve_strategy` first thing in the process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping

import tensorflow as tf

from core.config import ConfigError, Training

TPU_ENV = "TPU_NAME"


class StrategyError(RuntimeError):
    """The configured strategy cannot be created here; the message says which setting to fix."""


def tpu_address(training: Training, environ: Mapping[str, str] = os.environ) -> str:
    """The TPU to connect to: the config's address, else $TPU_NAME; an error names both."""
    address = training.tpu_address or environ.get(TPU_ENV, "")
    if not address:
        raise StrategyError(
            "training.strategy=tpu: no TPU given; set training.tpu_address (a TPU name, "
            f"grpc://host:8470, or 'local' on a TPU VM) or the {TPU_ENV} environment variable"
        )
    return address


def tpu_cluster_resolver(address: str):
    """TPUClusterResolver for `address`; a grpc:// address resolves without network access."""
    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
    except (ValueError, RuntimeError) as e:
        raise StrategyError(f"training.tpu_address={address!r}: cannot resolve the TPU: {e}") from e


def connect_tpu(resolver) -> tf.distribute.Strategy:
    """Connects to the TPU system and returns its TPUStrategy (needs a real TPU)."""
    try:
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (tf.errors.OpError, ValueError, RuntimeError) as e:
        raise StrategyError(
            f"training.strategy=tpu: cannot reach {resolver.master()!r}: {e}"
        ) from e
    return tf.distribute.TPUStrategy(resolver)


def tf_config(environ: Mapping[str, str] = os.environ) -> dict | None:
    """TF_CONFIG parsed and checked, or None when the variable is not set."""
    raw = environ.get("TF_CONFIG", "")
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as e:
        raise StrategyError(f"TF_CONFIG: not valid JSON ({e})") from e
    if not isinstance(parsed, dict) or not isinstance(parsed.get("cluster"), dict):
        raise StrategyError("TF_CONFIG: needs a 'cluster' mapping of job name -> host list")
    task = parsed.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise StrategyError("TF_CONFIG: needs 'task': {'type': ..., 'index': ...}")
    hosts = parsed["cluster"].get(task["type"])
    if not isinstance(hosts, list) or not 0 <= int(task["index"]) < len(hosts):
        raise StrategyError(
            f"TF_CONFIG: task {task['type']}[{task['index']}] is not in the cluster "
            f"{parsed['cluster']}"
        )
    return parsed


def resolve_strategy(
    training: Training,
    environ: Mapping[str, str] = os.environ,
    *,
    connect: Callable[[object], tf.distribute.Strategy] = connect_tpu,
) -> tf.distribute.Strategy:
    """The strategy for `training.strategy`. `connect` turns a TPU resolver into a strategy."""
    name = training.strategy
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker_mirrored":
        tf_config(environ)  # a malformed TF_CONFIG fails here with a clear message
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        return connect(tpu_cluster_resolver(tpu_address(training, environ)))
    raise ConfigError(
        f"training.strategy: unknown strategy {name!r}; "
        "one of default, mirrored, multi_worker_mirrored, tpu"
    )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this worker writes checkpoints, summaries and the model. Single-client strategies
    (TPU included) always do; with MultiWorkerMirrored, see `is_chief_task`."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    jobs = resolver.cluster_spec().as_dict()
    return is_chief_task(resolver.task_type, resolver.task_id, jobs)


def is_chief_task(task_type: str | None, task_id: int | None, jobs: Mapping) -> bool:
    """The chief, or worker 0 of a cluster without a chief (TF_CONFIG's convention)."""
    if task_type in (None, "chief"):
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in jobs


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """Hosts feeding data: several only for MultiWorkerMirroredStrategy with a TF_CONFIG cluster."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    spec = strategy.cluster_resolver.cluster_spec()
    return max(1, sum(spec.num_tasks(job) for job in spec.jobs if job in ("chief", "worker")))
