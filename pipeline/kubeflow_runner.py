"""`polyvit compile`: the same `create_pipeline` as local runs, compiled for Kubeflow Pipelines.

TFX's `KubeflowV2DagRunner` builds the PipelineSpec; this module finishes it for an open-source
KFP v2 backend (and Vertex AI Pipelines), in small pure steps on the spec dict:
  - the package is the PipelineSpec itself (schema 2.1.0), not TFX's Vertex-only PipelineJob
    wrapper, with `defaultPipelineRoot` set (TFX only puts it in the wrapper's runtimeConfig);
  - runtime parameters get their defaults in `root.inputDefinitions` (TFX leaves them out, so a
    run without `--param` would fail), and
  - only the Trainer's executor gets the accelerator, CPU and memory requests; node selectors
    and tolerations go in the kubernetes platform spec (second YAML document), as kfp-kubernetes
    writes them.
TFX's own YAML writer cannot be used: it fails on runtime parameters under schema 2.1.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from core import config as config_lib
from core.cli_args import add_config_args, load_config
from pipeline import accelerators

log = logging.getLogger("polyvit.compile")

# Runtime parameters a user changes per run (`polyvit submit --param NAME=VALUE`).
DATA_ROOT_PARAM = "data_root"
# The Trainer's TrainArgs as JSON, e.g. {"num_steps": 500}: TFX takes runtime parameters only for
# whole execution properties, and train_args is the one that carries the step count.
TRAIN_ARGS_PARAM = "train_args"


class CompileError(ValueError):
    """The pipeline cannot be compiled as asked; the message names the setting or file."""


# --------------------------------------------------------------------------------------------
# Pipeline construction (TFX at the edge).


def runtime_parameters(config: config_lib.Config) -> dict[str, Any]:
    """The pipeline's runtime parameters, with the config's values as defaults."""
    from tfx.orchestration import data_types

    return {
        DATA_ROOT_PARAM: data_types.RuntimeParameter(
            name=DATA_ROOT_PARAM, ptype=str, default=config.data_root
        ),
        TRAIN_ARGS_PARAM: data_types.RuntimeParameter(
            name=TRAIN_ARGS_PARAM,
            ptype=str,
            default=json.dumps({"num_steps": config.training.steps}),
        ),
    }


def build_pipeline(config: config_lib.Config, create_pipeline=None):
    """`create_pipeline` for Kubeflow: the bucket pipeline_root, no local MLMD (KFP has its own),
    the distributed Beam args, and the runtime parameters a user sets per run."""
    if config.continuous.span_window > 1:
        # TFX 1.16's Kubeflow V2 compiler takes only the latest-artifact and latest-blessed-
        # model resolvers; a rolling window of spans (rolling_range) does not compile.
        raise CompileError(
            f"continuous.span_window: {config.continuous.span_window}, but the Kubeflow V2 "
            "compiler supports no span window (local runs only); set it to 1 to compile"
        )
    if create_pipeline is None:
        from pipeline.pipeline import create_pipeline
    return create_pipeline(
        config,
        pipeline_root=config.kubeflow.pipeline_root,
        data_root=config.data_root,
        metadata_path=None,
        beam_pipeline_args=config.kubeflow.beam_pipeline_args or config.beam_pipeline_args,
        enable_cache=config.kubeflow.enable_cache,
        runtime_parameters=runtime_parameters(config),
    )


def trainer_node_ids(pipeline) -> list[str]:
    """Ids of the pipeline's Trainer nodes (standard or Vertex), found by class, not by id."""
    from tfx import v1 as tfx

    return [c.id for c in pipeline.components if isinstance(c, tfx.components.Trainer)]


def pipeline_parameter_defaults(pipeline) -> dict[str, Any]:
    """Default value of every RuntimeParameter wired into the pipeline's components."""
    from tfx.orchestration import data_types

    defaults = {}
    for component in pipeline.components:
        for value in component.exec_properties.values():
            if isinstance(value, data_types.RuntimeParameter) and value.default is not None:
                defaults[value.name] = value.default
    return defaults


def tfx_pipeline_spec(pipeline, image: str) -> dict[str, Any]:
    """The PipelineSpec dict TFX's KubeflowV2DagRunner builds (schema 2.1.0)."""
    from tfx import v1 as tfx

    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True
        )
    )
    job = runner.run(pipeline, write_out=False)
    return job["pipelineSpec"]


# --------------------------------------------------------------------------------------------
# Pure post-processing of the spec dict.


def executor_label(spec: Mapping[str, Any], node_id: str) -> str:
    """The deploymentSpec executor of a task (TFX names components after node ids)."""
    try:
        return spec["components"][spec["root"]["dag"]["tasks"][node_id]["componentRef"]["name"]][
            "executorLabel"
        ]
    except KeyError:
        raise CompileError(f"the compiled spec has no task {node_id!r}") from None


def with_pipeline_root(spec: Mapping[str, Any], pipeline_root: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(spec))
    out["defaultPipelineRoot"] = pipeline_root
    return out


def with_parameter_defaults(spec: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Sets `defaultValue` (and isOptional) on the pipeline's input parameters."""
    out = copy.deepcopy(dict(spec))
    declared = out.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    for name, value in defaults.items():
        if name not in declared:
            raise CompileError(f"runtime parameter {name!r} is not an input of the pipeline")
        declared[name]["defaultValue"] = value
        declared[name]["isOptional"] = True
    return out


def with_container_resources(
    spec: Mapping[str, Any], executors: Iterable[str], resources: Mapping[str, Any]
) -> dict[str, Any]:
    """Adds `container.resources` to the named executors only."""
    out = copy.deepcopy(dict(spec))
    if not resources:
        return out
    for label in executors:
        container = out["deploymentSpec"]["executors"][label]["container"]
        container["resources"] = copy.deepcopy(dict(resources))
    return out


def kubernetes_platform_spec(
    executor_configs: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """The PlatformSpec document (`platforms.kubernetes`), or {} when no executor needs one."""
    executors = {label: dict(cfg) for label, cfg in executor_configs.items() if cfg}
    if not executors:
        return {}
    return {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}


def finish_spec(
    spec: Mapping[str, Any],
    *,
    pipeline_root: str,
    parameter_defaults: Mapping[str, Any],
    trainer_executors: list[str],
    resources: accelerators.TrainerResources,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(PipelineSpec, PlatformSpec) ready for KFP, from TFX's PipelineSpec."""
    out = with_pipeline_root(spec, pipeline_root)
    out = with_parameter_defaults(out, parameter_defaults)
    out = with_container_resources(
        out, trainer_executors, accelerators.container_resources(resources)
    )
    platform = kubernetes_platform_spec(
        {label: accelerators.kubernetes_executor_config(resources) for label in trainer_executors}
    )
    return out, platform


def package_text(path: str, spec: Mapping[str, Any], platform: Mapping[str, Any]) -> str:
    """The package file's text: YAML (spec, then platform spec) or JSON (spec only) by suffix."""
    if path.endswith((".yaml", ".yml")):
        documents = [dict(spec)] + ([dict(platform)] if platform else [])
        return yaml.safe_dump_all(documents, sort_keys=True)
    if path.endswith(".json"):
        if platform:
            raise CompileError(
                f"{path}: node selectors and tolerations (kubeflow.trainer_accelerator) only fit "
                "in a YAML package; use a .yaml output"
            )
        return json.dumps(spec, indent=2, sort_keys=True) + "\n"
    raise CompileError(f"{path}: the output must end in .yaml, .yml or .json")


# --------------------------------------------------------------------------------------------
# Entry points.


def compile_pipeline(
    config: config_lib.Config, image: str | None = None, pipeline=None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(PipelineSpec, PlatformSpec) dicts for `config` (or for a ready TFX `pipeline`)."""
    resources = accelerators.trainer_task_resources(config)
    if pipeline is None:
        pipeline = build_pipeline(config)
    spec = tfx_pipeline_spec(pipeline, image or config.kubeflow.image)
    trainers = [executor_label(spec, node_id) for node_id in trainer_node_ids(pipeline)]
    if not trainers and not resources.empty:
        log.warning("the pipeline has no Trainer yet; the accelerator settings are not used")
    return finish_spec(
        spec,
        pipeline_root=config.kubeflow.pipeline_root,
        parameter_defaults=pipeline_parameter_defaults(pipeline),
        trainer_executors=trainers,
        resources=resources,
    )


def write_package(path: str, spec: Mapping[str, Any], platform: Mapping[str, Any]) -> None:
    text = package_text(path, spec, platform)
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def add_compile_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser)
    parser.add_argument(
        "--output",
        required=True,
        help="package file to write: .yaml (recommended) or .json (no node selectors)",
    )
    parser.add_argument(
        "--image", default=None, help="container image of every component (default: kubeflow.image)"
    )


def compile(args: argparse.Namespace) -> int:
    try:
        config = load_config(args)
        package_text(args.output, {}, {})  # reject a bad suffix before the slow build
        spec, platform = compile_pipeline(config, image=args.image)
        write_package(args.output, spec, platform)
    except CompileError as e:
        print(f"polyvit compile: {e}", file=sys.stderr)
        return 2
    tasks = sorted(spec["root"]["dag"]["tasks"])
    params = sorted(spec["root"].get("inputDefinitions", {}).get("parameters", {}))
    print(f"Wrote {args.output}: {len(tasks)} tasks ({', '.join(tasks)})")
    print(f"  image {args.image or config.kubeflow.image}, root {config.kubeflow.pipeline_root}")
    if params:
        print(f"  runtime parameters: {', '.join(params)}")
    return 0
