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
by trainer/strategies.py from the name `strategy_for` returns. The rules on these settings
(quantities, TPU type and topology, Vertex project, a strategy that contradicts the
accelerator) are checked when the config loads (core.config), so this module trusts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.config import Config, Kubeflow, Strategy, Training
from core.quantities import cpu_cores, memory_gigabytes, tpu_chip_count

# Names Kubernetes and GKE define (facts of the platform, not tunables).
# KFP's open-source backend uses the accelerator type as the container's resource limit name.
GPU_RESOURCE = "nvidia.com/gpu"
TPU_RESOURCE = "google.com/tpu"
GKE_GPU_LABEL = "cloud.google.com/gke-accelerator"
GKE_TPU_LABEL = "cloud.google.com/gke-tpu-accelerator"
GKE_TPU_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
# GKE taints accelerator node pools with `<resource>=present:NoSchedule`.
_TAINT_EFFECT = "NoSchedule"


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


def _accelerator_toleration(resource: str) -> dict[str, str]:
    return {"key": resource, "operator": "Exists", "effect": _TAINT_EFFECT}


def trainer_resources(kubeflow: Kubeflow) -> TrainerResources:
    """The Trainer pod's requests for `trainer_backend: kubernetes`, for a loaded config
    (core.config has checked that one pod can meet the accelerator settings)."""
    common: dict[str, Any] = {"cpu": kubeflow.trainer_cpu, "memory": kubeflow.trainer_memory}
    if kubeflow.trainer_accelerator == "cpu":
        return TrainerResources(**common)
    if kubeflow.trainer_accelerator == "gpu":
        selector = {GKE_GPU_LABEL: kubeflow.gpu_type} if kubeflow.gpu_type else {}
        return TrainerResources(
            accelerator_type=GPU_RESOURCE,
            accelerator_count=kubeflow.gpu_count,
            node_selector=selector,
            tolerations=(_accelerator_toleration(GPU_RESOURCE),),
            **common,
        )
    chips = tpu_chip_count(kubeflow.tpu_topology)
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


def strategy_for(kubeflow: Kubeflow, training: Training) -> Strategy:
    """The tf.distribute strategy name (config.Strategy) for where the Trainer runs.

    `training.strategy: default` means "pick from the accelerator": TPU -> tpu, several GPUs ->
    mirrored, one GPU or CPU -> default. An explicit strategy is kept: core.config refuses one
    that contradicts the accelerator.
    """
    if training.strategy != "default":
        return training.strategy
    if kubeflow.trainer_accelerator == "tpu":
        return "tpu"
    if kubeflow.trainer_accelerator == "gpu" and kubeflow.gpu_count > 1:
        return "mirrored"
    return "default"


# --------------------------------------------------------------------------------------------
# Vertex AI route: TFX's google_cloud_ai_platform Trainer submits a custom job.


def vertex_worker_pool_specs(kubeflow: Kubeflow) -> list[dict[str, Any]]:
    """Vertex CustomJob `worker_pool_specs`: one replica on the configured machine, running the
    pipeline image (TFX's Vertex runner puts its own entry point into the container spec)."""
    machine: dict[str, Any] = {"machine_type": kubeflow.vertex_machine_type}
    if kubeflow.vertex_accelerator_type:
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
