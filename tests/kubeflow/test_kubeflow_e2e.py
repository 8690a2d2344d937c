"""The compiled PipelineSpec, executed: every task's container command as the spec states it
(TFX's KFP v2 entry point), with the executor input a KFP launcher gives it, on local paths.

`python` in the container command is this venv's interpreter (first on PATH), standing in for
the image's; the repo (and this folder, for the small test pipeline) are on PYTHONPATH as the
installed project is in the image.
"""

import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
import yaml
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))

import kfp_local_launcher  # noqa: E402
import kfp_tiny_pipeline  # noqa: E402

from core import config as config_lib  # noqa: E402
from media import fs  # noqa: E402
from pipeline import kubeflow_runner  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))


def container_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([REPO, HERE])
    env["TF_USE_LEGACY_KERAS"] = "1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def write_pngs(root: str, layout: dict) -> None:
    """layout: (split folder or '', class) -> count of 24x32 PNGs."""
    for (split, label), count in layout.items():
        folder = os.path.join(root, split, label)
        os.makedirs(folder, exist_ok=True)
        for i in range(count):
            pixels = np.zeros((24, 32, 3), np.uint8)
            pixels[4:20, 4 + 2 * i : 20 + 2 * i] = 60 if label.startswith("a") else 200
            Image.fromarray(pixels).save(os.path.join(folder, f"{label}_{i}.png"))


def records(pattern: str) -> int:
    files = tf.io.gfile.glob(pattern)
    compression = fs.record_compression(files[0]) if files else ""
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type=compression))


@pytest.mark.e2e
def test_small_pipeline_spec_runs_with_runtime_parameters(tmp_path):
    data = str(tmp_path / "data")
    write_pngs(data, {("", "apple"): 3, ("", "berry"): 3})
    config = config_lib.from_dict(
        {
            "pipeline_name": "tiny",
            "data_root": "/nonexistent/compile-time-default",
            "tasks": {"fruit": {"modality": "image", "data": {"root": "."}, "num_classes": 2}},
            "training": {"steps": 1000},
            "kubeflow": {
                "pipeline_root": str(tmp_path / "root"),
                "trainer_accelerator": "gpu",
                "gpu_count": 1,
            },
        }
    )
    pipeline = kubeflow_runner.build_pipeline(config, kfp_tiny_pipeline.create_pipeline)
    spec, _ = kubeflow_runner.compile_pipeline(config, image="unused", pipeline=pipeline)
    produced = kfp_local_launcher.run_pipeline_spec(
        spec,
        root=spec["defaultPipelineRoot"],
        arguments={"data_root": data, "train_args": json.dumps({"num_steps": 3})},
        env=container_env(),
    )
    [examples] = produced["TinyExampleGen"]["examples"]
    assert sorted(json.loads(examples["metadata"]["split_names"])) == ["eval", "train"]
    assert examples["metadata"]["num_examples"] == 6
    assert records(os.path.join(examples["uri"], "Split-train", "*")) == 3
    [model] = produced["Trainer"]["model"]
    with open(os.path.join(model["uri"], "Format-Serving", "model.json")) as f:
        assert json.load(f) == {"train_records": 3, "train_steps": 3}


# ---- the real pipeline (create_pipeline), against a LocalDagRunner run of the same data ------

SHAPES = {("train", "apple"): 3, ("train", "berry"): 3, ("val", "apple"): 1, ("val", "berry"): 1}


def real_config(data_root: str, pipeline_root: str) -> config_lib.Config:
    return config_lib.from_dict(
        {
            "pipeline_name": "kfp-e2e",
            "data_root": data_root,
            "tasks": {
                "shapes": {
                    "modality": "image",
                    "data": {
                        "root": "shapes",
                        "layout": "folders",
                        "train": "train",
                        "eval": "val",
                    },
                    "num_classes": 2,
                }
            },
            # Tiny model stages, for when create_pipeline has them: a few steps, a local push.
            "training": {
                "steps": 2,
                "eval_steps": 1,
                "warmup_steps": 1,
                "log_every": 1,
                "checkpoint_every": 2,
            },
            "serving": {"push_dir": os.path.join(pipeline_root, "serving")},
            "kubeflow": {"pipeline_root": pipeline_root},
        }
    )


def _local_artifact_dirs(local_root: str) -> dict[tuple[str, str], str]:
    """(component id, output key) -> URI of a LocalDagRunner run (one execution each)."""
    found = {}
    for component in os.listdir(local_root):
        path = os.path.join(local_root, component)
        if not os.path.isdir(path):
            continue
        for key in os.listdir(path):
            executions = sorted(os.listdir(os.path.join(path, key)))
            if len(executions) == 1 and executions[0].isdigit():
                found[(component, key)] = os.path.join(path, key, executions[0])
    return found


# Artifact types whose content must be identical between the two runs.
DETERMINISTIC_TYPES = {
    "tfx.Examples",
    "tfx.ExampleStatistics",
    "tfx.Schema",
    "tfx.ExampleAnomalies",
}


def _type_title(artifact: dict) -> str:
    kind = artifact["type"]
    if "schemaTitle" in kind:
        return kind["schemaTitle"]
    return yaml.safe_load(kind["instanceSchema"]).get("title", "")


def _proto_files() -> dict:
    """Binary protos TFX writes, by file name: compared parsed, since map fields serialize in
    no fixed order."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

    return {
        "SchemaDiff.pb": anomalies_pb2.Anomalies,
        "FeatureStats.pb": statistics_pb2.DatasetFeatureStatisticsList,
    }


def _tree(uri: str) -> dict[str, object]:
    """Relative path -> content; record files (TFRecords, `.tfrecord` or `.gz`) as their sorted
    records, since Beam's sharding may order records differently between runs."""
    protos = _proto_files()
    tree = {}
    for folder, _, files in os.walk(uri):
        for name in files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, uri)
            if name.endswith((".gz", ".tfrecord")):
                compression = fs.record_compression(path)
                tree[rel] = sorted(
                    r.numpy() for r in tf.data.TFRecordDataset(path, compression_type=compression)
                )
                continue
            with open(path, "rb") as f:
                content = f.read()
            tree[rel] = protos[name].FromString(content) if name in protos else content
    return tree


@pytest.mark.e2e
def test_real_pipeline_spec_runs_like_a_local_run(tmp_path):
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    data = str(tmp_path / "data")
    write_pngs(os.path.join(data, "shapes"), SHAPES)
    kfp_root = str(tmp_path / "kfp")
    config = real_config(data, kfp_root)

    spec, _ = kubeflow_runner.compile_pipeline(config, image="unused")
    produced = kfp_local_launcher.run_pipeline_spec(spec, root=kfp_root, env=container_env())

    local_root = str(tmp_path / "local")
    tfx.orchestration.LocalDagRunner().run(
        create_pipeline(
            config,
            pipeline_root=local_root,
            data_root=data,
            metadata_path=str(tmp_path / "mlmd.sqlite"),
        )
    )
    local = _local_artifact_dirs(local_root)

    kfp_artifacts = {
        (task, key): artifacts[0]
        for task, outputs in produced.items()
        for key, artifacts in outputs.items()
        if artifacts  # a resolver on a first run resolves nothing, as locally
    }
    # Every task of the compiled spec ran and produced the same outputs as the local run: the
    # data artifacts identical, the others (models, runs, evaluations: timestamps and float
    # noise) present in both and both empty or both not.
    assert set(kfp_artifacts) == set(local), "outputs differ from the local run"
    for (task, key), artifact in sorted(kfp_artifacts.items()):
        kfp_tree, local_tree = _tree(artifact["uri"]), _tree(local[(task, key)])
        if _type_title(artifact) in DETERMINISTIC_TYPES:
            assert kfp_tree == local_tree, f"{task}.{key} differs from the local run"
        else:
            assert bool(kfp_tree) == bool(local_tree), f"{task}.{key}: one run wrote nothing"
    [examples] = produced["MediaExampleGen"]["examples"]
    assert sorted(json.loads(examples["metadata"]["split_names"])) == ["eval", "train"]
    assert records(os.path.join(examples["uri"], "Split-train", "*")) == 6
    assert records(os.path.join(examples["uri"], "Split-eval", "*")) == 2
