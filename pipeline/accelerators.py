"""Where the Trainer runs: accelerator requests for Kubeflow and the tf.distribute strategy.

`config.kubeflow` says cpu, gpu (type, count) or tpu (GKE type, topology), and whether the Trainer
runs as a task on the cluster (`trainer_backend: kubernetes`) or as a Vertex AI custom job
(`vertex`). This module turns that into
  - `TrainerResources`: what the Trainer's KFP task asks of Kubernetes (limits, node selectors,
    tolerations), rendered into PipelineSpec / kfp-kubernetes JSON by two small functions;
  - `strategy_for(kubeflow, training)`: the tf.distribute strategy name the trainer builds;
  - `trainer_component_class(config)` and `trainer_custom_config(config)`: the TFX Trainer class
    (standard or google_cloud_ai_platform) and the custom_config keys that carry the Vertex job.
Everything here is pure except `trainer_component_class` (TFX). The strategy itself is built
by trainer/strategies.py from the name `strategy_for` returns.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from core.config import Config, ConfigError, Kubeflow, Training

# Names Kubernetes and GKE define (facts of the platform, not tunables).
# KFP's open-source backend uses the accelerator type as the container's resource limit name.
GPU_RESOURCE = "nvidia.com/gpu"
TPU_RESOURCE = "google.com/tpu"
GKE_GPU_LABEL = "cloud.google.com/gke-accelerator"
GKE_TPU_LABEL = "cloud.google.com/gke-tpu-accelerator"
GKE_TPU_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
# GKE taints accelerator node pools with `<resource>=present:NoSchedule`.
_TAINT_EFFECT = "NoSchedule"

# Chips one TPU VM host holds, per GKE TPU type: a single KFP task is one pod on one host, so a
# slice larger than this needs a multi-host job (the Vertex route).
TPU_CHIPS_PER_HOST = {
    "tpu-v4-podslice": 4,
    "tpu-v5p-slice": 4,
    "tpu-v5-lite-podslice": 8,
    "tpu-v5-lite-device": 8,
    "tpu-v6e-slice": 8,
}

_CPU_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEMORY_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(E|P|T|G|M|K|Ei|Pi|Ti|Gi|Mi|Ki)?$")
# KFP's PipelineSpec expresses memory in gigabytes (10^9 bytes).
_BYTES_PER_UNIT = {
    None: 1,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


@dataclass(frozen=True)
class TrainerResources:
    """What the Trainer's pod asks of the cluster. Empty fields ask for nothing."""

    accelerator_type: str = ""  # Kubernetes resource name, e.g. nvidia.com/gpu
    accelerator_count: int = 0
    cpu: str = ""  # Kubernetes quantity
    memory: str = ""  # Kubernetes quantity
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.accelerator_count or self.cpu or self.memory or self.node_selector)


def tpu_chip_count(topology: str) -> int:
    """Chips in a TPU topology such as `2x2x1` (v4/v5p) or `2x4` (v5e/v6e)."""
    parts = topology.split("x")
    if not topology or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(
            f"kubeflow.tpu_topology: {topology!r} is not a topology like 2x2x1 or 2x4"
        )
    return math.prod(int(p) for p in parts)


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity ("8", "2.5", "500m") in cores."""
    match = _CPU_QUANTITY.match(quantity)
    if not match:
        raise ConfigError(
            f"kubeflow.trainer_cpu: {quantity!r} is not a CPU quantity like 8 or 500m"
        )
    value = float(match.group(1))
    return value / 1000 if match.group(2) else value


def memory_gigabytes(quantity: str) -> float:
    """A Kubernetes memory quantity ("32Gi", "500M", "1073741824") in GB, as PipelineSpec wants."""
    match = _MEMORY_QUANTITY.match(quantity)
    if not match:
        raise ConfigError(
            f"kubeflow.trainer_memory: {quantity!r} is not a memory quantity like 32Gi or 500M"
        )
    return float(match.group(1)) * _BYTES_PER_UNIT[match.group(2)] / 1e9


def _accelerator_toleration(resource: str) -> dict[str, str]:
    return {"key": resource, "operator": "Exists", "effect": _TAINT_EFFECT}


def trainer_resources(kubeflow: Kubeflow) -> TrainerResources:
    """The Trainer pod's requests for `trainer_backend: kubernetes`; raises ConfigError naming the
    field when the accelerator settings cannot be met by one pod."""
    if kubeflow.trainer_cpu:
        cpu_cores(kubeflow.trainer_cpu)
    if kubeflow.trainer_memory:
        memory_gigabytes(kubeflow.trainer_memory)
    common = {"cpu": kubeflow.trainer_cpu, "memory": kubeflow.trainer_memory}
    if kubeflow.trainer_accelerator == "cpu":
        return TrainerResources(**common)
    if kubeflow.trainer_accelerator == "gpu":
        if kubeflow.gpu_count <= 0:
            raise ConfigError(
                f"kubeflow.gpu_count: must be positive when trainer_accelerator is gpu, "
                f"got {kubeflow.gpu_count}"
            )
        selector = {GKE_GPU_LABEL: kubeflow.gpu_type} if kubeflow.gpu_type else {}
        return TrainerResources(
            accelerator_type=GPU_RESOURCE,
            accelerator_count=kubeflow.gpu_count,
            node_selector=selector,
            tolerations=(_accelerator_toleration(GPU_RESOURCE),),
            **common,
        )
    if kubeflow.tpu_type not in TPU_CHIPS_PER_HOST:
        raise ConfigError(
            f"kubeflow.tpu_type: {kubeflow.tpu_type!r} is not a GKE TPU type; "
            f"choose one of {sorted(TPU_CHIPS_PER_HOST)}"
        )
    chips = tpu_chip_count(kubeflow.tpu_topology)
    per_host = TPU_CHIPS_PER_HOST[kubeflow.tpu_type]
    if chips > per_host:
        raise ConfigError(
            f"kubeflow.tpu_topology: {kubeflow.tpu_topology} has {chips} chips but one "
            f"{kubeflow.tpu_type} host holds {per_host}; a multi-host slice cannot run as one "
            "KFP task: pick a single-host topology or set kubeflow.trainer_backend: vertex"
        )
    return TrainerResources(
        accelerator_type=TPU_RESOURCE,
        accelerator_count=chips,
        node_selector={
            GKE_TPU_LABEL: kubeflow.tpu_type,
            GKE_TPU_TOPOLOGY_LABEL: kubeflow.tpu_topology,
        },
        tolerations=(_accelerator_toleration(TPU_RESOURCE),),
        **common,
    )


def container_resources(resources: TrainerResources) -> dict[str, Any]:
    """`deploymentSpec.executors.<e>.container.resources` of a PipelineSpec (JSON names).

    Writes the numeric fields kfp 2.9 writes and the string ones newer KFP backends prefer.
    """
    spec: dict[str, Any] = {}
    if resources.cpu:
        cores = cpu_cores(resources.cpu)
        spec.update(cpuLimit=cores, cpuRequest=cores)
        spec.update(resourceCpuLimit=resources.cpu, resourceCpuRequest=resources.cpu)
    if resources.memory:
        gigabytes = memory_gigabytes(resources.memory)
        spec.update(memoryLimit=gigabytes, memoryRequest=gigabytes)
        spec.update(resourceMemoryLimit=resources.memory, resourceMemoryRequest=resources.memory)
    if resources.accelerator_count:
        spec["accelerator"] = {
            "type": resources.accelerator_type,
            "count": str(resources.accelerator_count),  # int64 is a string in proto JSON
            "resourceType": resources.accelerator_type,
            "resourceCount": str(resources.accelerator_count),
        }
    return spec


def kubernetes_executor_config(resources: TrainerResources) -> dict[str, Any]:
    """The executor's entry in `platforms.kubernetes.deploymentSpec.executors`, in the
    `kfp_kubernetes.KubernetesExecutorConfig` JSON that kfp-kubernetes writes."""
    config: dict[str, Any] = {}
    if resources.node_selector:
        config["nodeSelector"] = {"labels": dict(resources.node_selector)}
    if resources.tolerations:
        config["tolerations"] = [dict(t) for t in resources.tolerations]
    return config


# --------------------------------------------------------------------------------------------
# The trainer's tf.distribute strategy.

_STRATEGY_FOR_ACCELERATOR = {"tpu": "tpu"}


def strategy_for(kubeflow: Kubeflow, training: Training) -> str:
    """The tf.distribute strategy name (config.Strategy) for where the Trainer runs.

    `training.strategy: default` means "pick from the accelerator": TPU -> tpu, several GPUs ->
    mirrored, one GPU or CPU -> default. An explicit strategy that contradicts the accelerator
    is a configuration error rather than a silent fallback.
    """
    accelerator = kubeflow.trainer_accelerator
    explicit = training.strategy
    if explicit == "default":
        if accelerator == "tpu":
            return "tpu"
        if accelerator == "gpu" and kubeflow.gpu_count > 1:
            return "mirrored"
        return "default"
    if explicit == "tpu" and accelerator != "tpu":
        raise ConfigError(
            f"training.strategy: tpu needs kubeflow.trainer_accelerator: tpu, got {accelerator}"
        )
    if accelerator == "tpu" and explicit != "tpu":
        raise ConfigError(
            f"training.strategy: {explicit} cannot drive a TPU; use tpu or default "
            "(kubeflow.trainer_accelerator is tpu)"
        )
    return explicit


# --------------------------------------------------------------------------------------------
# Vertex AI route: TFX's google_cloud_ai_platform Trainer submits a custom job.


def vertex_worker_pool_specs(kubeflow: Kubeflow) -> list[dict[str, Any]]:
    """Vertex CustomJob `worker_pool_specs`: one replica on the configured machine, running the
    pipeline image (TFX's Vertex runner puts its own entry point into the container spec)."""
    machine: dict[str, Any] = {"machine_type": kubeflow.vertex_machine_type}
    if kubeflow.vertex_accelerator_type:
        if kubeflow.vertex_accelerator_count <= 0:
            raise ConfigError(
                "kubeflow.vertex_accelerator_count: must be positive when "
                f"vertex_accelerator_type is set, got {kubeflow.vertex_accelerator_count}"
            )
        machine["accelerator_type"] = kubeflow.vertex_accelerator_type
        machine["accelerator_count"] = kubeflow.vertex_accelerator_count
    return [
        {
            "machine_spec": machine,
            "replica_count": 1,
            "container_spec": {"image_uri": kubeflow.image},
        }
    ]


def trainer_custom_config(config: Config) -> dict[str, Any]:
    """Keys to merge into the Trainer's custom_config: none for kubernetes, the Vertex job
    otherwise (`ai_platform_training_args`, `ai_platform_enable_vertex`, region)."""
    kubeflow = config.kubeflow
    if kubeflow.trainer_backend != "vertex":
        return {}
    if not kubeflow.vertex_project:
        raise ConfigError("kubeflow.vertex_project: needed when trainer_backend is vertex")
    from tfx.v1.extensions import google_cloud_ai_platform as gcai

    return {
        gcai.ENABLE_VERTEX_KEY: True,
        gcai.VERTEX_REGION_KEY: kubeflow.vertex_region,
        gcai.TRAINING_ARGS_KEY: {
            "project": kubeflow.vertex_project,
            "worker_pool_specs": vertex_worker_pool_specs(kubeflow),
        },
    }


def trainer_component_class(config: Config) -> type:
    """The TFX Trainer class for the configured backend (both take the same arguments)."""
    from tfx import v1 as tfx

    if config.kubeflow.trainer_backend == "vertex":
        return tfx.extensions.google_cloud_ai_platform.Trainer
    return tfx.components.Trainer


def trainer_task_resources(config: Config) -> TrainerResources:
    """What the Trainer's KFP task itself requests: on the Vertex route it only submits the
    custom job and waits, so it asks for nothing; the accelerators are in the job spec."""
    if config.kubeflow.trainer_backend == "vertex":
        return TrainerResources()
    return trainer_resources(config.kubeflow)
