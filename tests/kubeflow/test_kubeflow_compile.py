"""`polyvit compile` on a small pipeline with a Trainer, and the accelerator rules behind it."""

import argparse
import json
import os
import sys

import pytest
import yaml
from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

sys.path.insert(0, os.path.dirname(__file__))

import kfp_tiny_pipeline  # noqa: E402

from core import config as config_lib  # noqa: E402
from core import quantities  # noqa: E402
from core.config import Kubeflow, Training  # noqa: E402
from pipeline import accelerators, cli, kubeflow_runner  # noqa: E402
from tests.support import configs  # noqa: E402

BASE = {
    "pipeline_name": "tiny",
    "data_root": "gs://bucket/data",
    "tasks": {"digits": {"modality": "image", "data": {"root": "digits"}, "num_classes": 2}},
    "training": {"steps": 7},
    "kubeflow": {"image": "registry.example/polyvit:1", "pipeline_root": "gs://bucket/root"},
}


def make_config(**kubeflow) -> config_lib.Config:
    return configs.build(BASE, {f"kubeflow.{name}": value for name, value in kubeflow.items()})


def compiled(config, image=None):
    pipeline = kubeflow_runner.build_pipeline(config, kfp_tiny_pipeline.create_pipeline)
    return kubeflow_runner.compile_pipeline(config, image=image, pipeline=pipeline)


def trainer_container(spec):
    return spec["deploymentSpec"]["executors"]["Trainer_executor"]["container"]


# ---- accelerator rules (pure) --------------------------------------------------------------


def test_tpu_resources_ask_for_the_slice_on_one_host():
    res = accelerators.trainer_resources(
        Kubeflow(trainer_accelerator="tpu", tpu_type="tpu-v5-lite-podslice", tpu_topology="2x4")
    )
    assert (res.accelerator_type, res.accelerator_count) == ("google.com/tpu", 8)
    assert res.node_selector == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
        "cloud.google.com/gke-tpu-topology": "2x4",
    }
    assert res.tolerations == (
        {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"},
    )


def test_quantities():
    assert quantities.cpu_cores("500m") == 0.5
    assert quantities.cpu_cores("8") == 8.0
    assert quantities.memory_gigabytes("32Gi") == pytest.approx(34.359738368)
    assert quantities.memory_gigabytes("500M") == 0.5
    assert quantities.tpu_chip_count("2x2x4") == 16
    with pytest.raises(ValueError, match="500 GB"):
        quantities.memory_gigabytes("500 GB")


# The rules on these settings (impossible requests, contradicting strategies, a Vertex job
# without a project) are checked when the config loads: tests/foundation/test_config_rules.py.


@pytest.mark.parametrize(
    "kubeflow, strategy, expected",
    [
        (Kubeflow(trainer_accelerator="tpu"), "default", "tpu"),
        (Kubeflow(trainer_accelerator="gpu", gpu_count=4), "default", "mirrored"),
        (Kubeflow(trainer_accelerator="gpu", gpu_count=1), "default", "default"),
        (Kubeflow(trainer_accelerator="cpu"), "default", "default"),
        (
            Kubeflow(trainer_accelerator="gpu", gpu_count=2),
            "multi_worker_mirrored",
            "multi_worker_mirrored",
        ),
        (Kubeflow(trainer_accelerator="tpu"), "tpu", "tpu"),
    ],
)
def test_strategy_for(kubeflow, strategy, expected):
    assert accelerators.strategy_for(kubeflow, Training(strategy=strategy)) == expected


# ---- the compiled spec ---------------------------------------------------------------------


def test_cpu_spec_parses_and_carries_image_root_parameters():
    spec, platform = compiled(make_config())
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    assert platform == {}
    assert set(spec["root"]["dag"]["tasks"]) == {"TinyExampleGen", "Trainer"}
    assert spec["schemaVersion"] == "2.1.0"
    assert spec["defaultPipelineRoot"] == "gs://bucket/root"
    executors = spec["deploymentSpec"]["executors"].values()
    assert {e["container"]["image"] for e in executors} == {"registry.example/polyvit:1"}
    assert all(
        e["container"]["command"][-1]
        == "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
        for e in executors
    )
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["data_root"]["defaultValue"] == "gs://bucket/data"
    assert json.loads(params["train_args"]["defaultValue"]) == {"num_steps": 7}
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["Trainer"]["inputs"]["parameters"]["train_args"] == {
        "componentInputParameter": "train_args"
    }
    assert tasks["TinyExampleGen"]["inputs"]["parameters"]["data_root"] == {
        "componentInputParameter": "data_root"
    }
    assert not any("resources" in e["container"] for e in executors)


def test_tpu_request_is_on_the_trainer_only(tmp_path):
    config = make_config(trainer_accelerator="tpu", trainer_cpu="16", trainer_memory="64Gi")
    spec, platform = compiled(config, image="other/image:2")
    resources = trainer_container(spec)["resources"]
    parsed = json_format.ParseDict(
        resources, pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec()
    )
    assert (parsed.accelerator.type, parsed.accelerator.count) == ("google.com/tpu", 4)
    assert parsed.cpu_limit == 16 and parsed.resource_memory_limit == "64Gi"
    others = [k for k in spec["deploymentSpec"]["executors"] if k != "Trainer_executor"]
    assert others and all(
        "resources" not in spec["deploymentSpec"]["executors"][k]["container"] for k in others
    )
    assert trainer_container(spec)["image"] == "other/image:2"
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert list(executors) == ["Trainer_executor"]
    k8s = json_format.ParseDict(
        executors["Trainer_executor"], kubernetes_executor_config_pb2.KubernetesExecutorConfig()
    )
    assert dict(k8s.node_selector.labels) == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v4-podslice",
        "cloud.google.com/gke-tpu-topology": "2x2x1",
    }
    assert [(t.key, t.operator, t.effect) for t in k8s.tolerations] == [
        ("google.com/tpu", "Exists", "NoSchedule")
    ]
    # The YAML package: the spec, then the platform spec, as kfp's own compiler writes it.
    path = str(tmp_path / "p.yaml")
    kubeflow_runner.write_package(path, spec, platform)
    with open(path) as f:
        assert list(yaml.safe_load_all(f)) == [spec, platform]
    with pytest.raises(kubeflow_runner.CompileError, match="YAML"):
        kubeflow_runner.package_text(str(tmp_path / "p.json"), spec, platform)


def test_gpu_request():
    spec, platform = compiled(
        make_config(trainer_accelerator="gpu", gpu_count=2, gpu_type="nvidia-l4")
    )
    accelerator = trainer_container(spec)["resources"]["accelerator"]
    assert (accelerator["type"], accelerator["count"]) == ("nvidia.com/gpu", "2")
    trainer = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["Trainer_executor"]
    assert trainer["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}


def test_vertex_route_carries_the_custom_job_and_no_pod_accelerator():
    config = make_config(
        trainer_accelerator="tpu",
        trainer_backend="vertex",
        vertex_project="proj",
        vertex_region="europe-west4",
        vertex_machine_type="cloud-tpu",
        vertex_accelerator_type="TPU_V3",
        vertex_accelerator_count=8,
    )
    spec, platform = compiled(config)
    container = trainer_container(spec)
    assert "resources" not in container and platform == {}
    class_path = container["args"][container["args"].index("--executor_class_path") + 1]
    assert class_path == "tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor"
    custom = json.loads(
        spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]["custom_config"][
            "runtimeValue"
        ]["constant"]
    )
    assert custom["ai_platform_enable_vertex"] is True
    assert custom["ai_platform_vertex_region"] == "europe-west4"
    job = custom["ai_platform_training_args"]
    assert job["project"] == "proj"
    assert job["worker_pool_specs"] == [
        {
            "machine_spec": {
                "machine_type": "cloud-tpu",
                "accelerator_type": "TPU_V3",
                "accelerator_count": 8,
            },
            "replica_count": 1,
            "container_spec": {"image_uri": "registry.example/polyvit:1"},
        }
    ]


def test_json_package_is_the_pipeline_spec(tmp_path):
    spec, platform = compiled(make_config())
    path = str(tmp_path / "p.json")
    kubeflow_runner.write_package(path, spec, platform)
    with open(path) as f:
        assert json.load(f) == spec
    with pytest.raises(kubeflow_runner.CompileError, match="p.txt"):
        kubeflow_runner.package_text(str(tmp_path / "p.txt"), spec, platform)


def test_parameter_default_for_an_unknown_input_is_refused():
    spec = {"root": {"inputDefinitions": {"parameters": {"a": {"parameterType": "STRING"}}}}}
    with pytest.raises(kubeflow_runner.CompileError, match="'b'"):
        kubeflow_runner.with_parameter_defaults(spec, {"b": 1})


def test_compile_command_rejects_bad_output_and_config(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(BASE))
    parser = argparse.ArgumentParser()
    kubeflow_runner.add_compile_arguments(parser)
    args = parser.parse_args(["--config", str(config), "--output", str(tmp_path / "p.txt")])
    assert kubeflow_runner.compile(args) == 2
    assert "p.txt" in capsys.readouterr().err
    # A bad config value is a ConfigError, which `polyvit` reports for every subcommand.
    argv = ["compile", "--config", str(config), "--output", str(tmp_path / "p.yaml")]
    argv += ["--set", "kubeflow.trainer_accelerator=tpu", "--set", "kubeflow.tpu_topology=4x4x4"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("polyvit compile: ")
    assert "kubeflow.tpu_topology: 4x4x4 has 64 chips" in err
    assert not (tmp_path / "p.yaml").exists()


# ---- the real create_pipeline --------------------------------------------------------------


def test_real_pipeline_compiles_portably():
    """The project's create_pipeline compiles, every component is a task, and nothing in the
    spec points into this checkout (the image has the project elsewhere)."""
    from pipeline.pipeline import create_pipeline

    config = config_lib.load(
        os.path.join(kfp_tiny_pipeline.REPO, "configs", "demo.yaml"),
        ["data_root=gs://bucket/demo_data"],
    )
    pipeline = kubeflow_runner.build_pipeline(config, create_pipeline)
    spec, _ = kubeflow_runner.compile_pipeline(
        config, image="registry.example/p:1", pipeline=pipeline
    )
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    tasks = set(spec["root"]["dag"]["tasks"])
    ids = {c.id for c in pipeline.components}
    # TFX splits a Resolver node into one resolver task per channel: `<id>-<channel>-resolver`.
    covered = {t for t in tasks if t in ids or any(t.startswith(f"{i}-") for i in ids)}
    assert covered == tasks
    assert all(i in tasks or any(t.startswith(f"{i}-") for t in tasks) for i in ids)
    containers = [
        e["container"] for e in spec["deploymentSpec"]["executors"].values() if "container" in e
    ]
    assert {c["image"] for c in containers} == {"registry.example/p:1"}
    assert kfp_tiny_pipeline.REPO not in json.dumps(spec), "the spec names a path of this checkout"


def test_a_scheduled_run_resolves_the_newest_span_itself(tmp_path):
    """The compiled spec fixes no span: MediaExampleGen's parameters are the config (span -1,
    the newest) and the data root, no input fingerprint, so every scheduled run of the same
    package ingests the newest span present when it starts; the Trainer warm-starts from the
    latest blessed model."""
    from components.media_example_gen import executor, spans
    from pipeline.pipeline import create_pipeline

    config = configs.build(BASE, {"tasks.digits.data.root": "digits/span-{SPAN}"})
    pipeline = kubeflow_runner.build_pipeline(config, create_pipeline)
    spec, _ = kubeflow_runner.compile_pipeline(config, image="r.example/p:1", pipeline=pipeline)
    tasks = spec["root"]["dag"]["tasks"]
    parameters = tasks["MediaExampleGen"]["inputs"]["parameters"]
    assert set(parameters) == {"config", "data_root"}  # no fingerprint, no span fixed
    assert parameters["data_root"] == {"componentInputParameter": "data_root"}
    assert set(spec["root"]["inputDefinitions"]["parameters"]) == {"data_root", "train_args"}
    base_model = tasks["Trainer"]["inputs"]["artifacts"]["base_model"]["taskOutputArtifact"]
    assert base_model["producerTask"] == "latest_blessed_model_resolver-model-resolver"

    # What the executor does with exactly those parameters, run after run.
    exec_properties = {"config": parameters["config"]["runtimeValue"]["constant"]}
    ingest = executor.config_from_properties(exec_properties)
    assert ingest.ingestion.span == -1
    for span in (1, 2, 3):
        os.makedirs(tmp_path / "digits" / f"span-{span}" / "a")
    assert spans.select(ingest, str(tmp_path)).roots == {"digits": "digits/span-3"}
    os.makedirs(tmp_path / "digits" / "span-4" / "a")  # tonight's data arrived
    assert spans.select(ingest, str(tmp_path)).span == 4


def test_a_span_window_is_refused_for_kubeflow_naming_the_key():
    """TFX's Kubeflow V2 compiler has no rolling span window: compiling one fails naming
    continuous.span_window instead of TFX's bare TypeError."""
    config = configs.build(BASE, {"continuous.span_window": 2})
    with pytest.raises(kubeflow_runner.CompileError, match="continuous.span_window: 2"):
        kubeflow_runner.build_pipeline(config)
