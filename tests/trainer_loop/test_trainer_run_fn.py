"""run_fn end to end on tiny DMVR records with the real model, input pipeline and export:
trains, evaluates, writes eval_metrics.json, exports the SavedModel, and a restarted Trainer
resumes from its checkpoints instead of step 0."""

from __future__ import annotations

import json
import os
import types

import numpy as np
import pytest
import tensorflow as tf

from core import config as config_lib
from core import features
from trainer import run_fn as run_fn_lib
from trainer import train_loop

RATE = 8000
TASKS = {
    "shade": {"modality": "image", "num_classes": 2, "labels": ["dark", "light"]},
    "moves": {"modality": "video", "num_classes": 2, "labels": ["down", "up"]},
    "tones": {
        "modality": "audio",
        "num_classes": 3,
        "label_type": "multi",
        "labels": ["high", "low", "mid"],
    },
}


def _config_data() -> dict:
    tasks = {
        name: {
            "modality": spec["modality"],
            "num_classes": spec["num_classes"],
            "label_type": spec.get("label_type", "single"),
            "data": {"root": name},
            "batch_size": 4,
            "steps": 10,
        }
        for name, spec in TASKS.items()
    }
    return {
        "tasks": tasks,
        "model": {
            "preset": "tiny",
            "overrides": {"hidden_size": 32, "num_layers": 1, "mlp_dim": 64, "patch_size": 8},
        },
        "inputs": {
            "image_size": 16,
            "video_size": 16,
            "num_frames": 4,
            "audio_seconds": 0.5,
            "num_mel_bins": 16,
            "audio_sample_rate": RATE,
            "shuffle_buffer": 8,
            "eval_clips": 2,
            "random_flip": False,
        },
        "training": {
            "steps": 6,
            "warmup_steps": 2,
            "checkpoint_every": 3,
            "log_every": 3,
            "eval_steps": 0,
        },
    }


def _config() -> config_lib.TrainerConfig:
    return config_lib.trainer_config(config_lib.from_dict(_config_data()))


def _record(modality: str, label: int, i: int) -> bytes:
    example = tf.train.SequenceExample()
    context = example.context.feature
    context[features.LABEL_INDEX].int64_list.value[:] = [label]
    context[features.FILENAME].bytes_list.value[:] = [f"{modality}_{i}".encode()]
    context[features.SAMPLE_RATE].int64_list.value[:] = [RATE]
    context[features.FRAME_RATE].float_list.value[:] = [8.0]
    if modality == "audio":
        t = np.arange(RATE) / RATE
        wave = 0.5 * np.sin(2 * np.pi * (300 + 900 * label) * t)
        wave_list = example.feature_lists.feature_list[features.WAVEFORM]
        wave_list.feature.add().float_list.value[:] = wave.astype(np.float32).tolist()
    else:
        count = 1 if modality == "image" else 8
        frames = example.feature_lists.feature_list[features.IMAGE_ENCODED]
        for k in range(count):
            level = (
                40 + 170 * label
                if modality == "image"
                else 20 + (k * 25 if label else 200 - k * 25)
            )
            frame = np.full([20, 20, 3], level, np.uint8)
            frames.feature.add().bytes_list.value.append(tf.io.encode_jpeg(frame).numpy())
    return example.SerializeToString()


def _write_examples(uri: str) -> None:
    for split, count in (("train", 16), ("eval", 9)):
        folder = features.split_dir(uri, split)
        os.makedirs(folder, exist_ok=True)
        for name, spec in TASKS.items():
            path = os.path.join(folder, f"{name}-00000-of-00001.gz")
            with tf.io.TFRecordWriter(path, options="GZIP") as writer:
                for i in range(count):
                    writer.write(_record(spec["modality"], i % spec["num_classes"], i))
    for name, spec in TASKS.items():
        path = features.vocabulary_path(uri, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("\n".join(spec["labels"]) + "\n")


def _fn_args(tmp_path, config, **overrides):
    uri = str(tmp_path / "examples")
    args = dict(
        train_files=[os.path.join(features.split_dir(uri, "train"), "*")],
        eval_files=[os.path.join(features.split_dir(uri, "eval"), "*")],
        train_steps=None,
        eval_steps=None,
        transform_output=None,
        model_run_dir=str(tmp_path / "model_run"),
        serving_model_dir=str(tmp_path / "model" / "Format-Serving"),
        custom_config=config_lib.to_custom_config(config),
    )
    args.update(overrides)
    return types.SimpleNamespace(**args)


@pytest.mark.e2e
def test_run_fn_trains_evaluates_exports_and_resumes(tmp_path):
    config = _config()
    _write_examples(str(tmp_path / "examples"))
    fn_args = _fn_args(tmp_path, config, train_steps=6)
    run_fn_lib.run_fn(fn_args)

    metrics = json.loads(open(os.path.join(fn_args.model_run_dir, train_loop.METRICS_FILE)).read())
    assert metrics["step"] == 6 and metrics["start_step"] == 0
    assert {n: t["metric"] for n, t in metrics["tasks"].items()} == {
        "shade": "top1",
        "moves": "top1",
        "tones": "mAP",
    }
    # The whole eval split, partial last batch included; video and audio on 2 clips each.
    assert {n: t["num_examples"] for n, t in metrics["tasks"].items()} == {
        "shade": 9,
        "moves": 9,
        "tones": 9,
    }
    assert metrics["tasks"]["moves"]["num_clips"] == 2
    assert metrics["tasks"]["shade"]["num_clips"] == 1

    loaded = tf.saved_model.load(fn_args.serving_model_dir)
    assert {"shade", "moves_raw", "tones_classify", "serving_default"} <= set(loaded.signatures)
    out = loaded.signatures["shade"](examples=tf.constant([_record("image", 1, 0)]))
    assert out["scores"].shape == (1, 2)
    assert [c.decode() for c in out["classes"].numpy()[0]] == ["dark", "light"]

    # A restarted Trainer (same execution: same model_run_dir) resumes at step 6: no training.
    run_fn_lib.run_fn(fn_args)
    again = json.loads(open(os.path.join(fn_args.model_run_dir, train_loop.METRICS_FILE)).read())
    assert again["start_step"] == 6 and again["history"] == []
    assert tf.saved_model.contains_saved_model(fn_args.serving_model_dir)


def test_checkpoint_dir_is_the_run_dir_or_a_fingerprint_under_checkpoint_root():
    config = _config()
    assert run_fn_lib.checkpoint_dir(config, "/runs/Trainer/model_run/7", "/ex/1", 6) == (
        "/runs/Trainer/model_run/7/checkpoints"
    )
    config.training.checkpoint_root = "/ckpt"
    a = run_fn_lib.checkpoint_dir(config, "/runs/Trainer/model_run/7", "/ex/1", 6)
    # A new execution (another model_run_dir) on the same data and config: the same folder.
    assert run_fn_lib.checkpoint_dir(config, "/runs/Trainer/model_run/9", "/ex/1", 6) == a
    assert a.startswith("/ckpt/polyvit-")
    assert run_fn_lib.checkpoint_dir(config, "/r", "/ex/2", 6) != a  # new data
    assert run_fn_lib.checkpoint_dir(config, "/r", "/ex/1", 8) != a  # another step budget


def _checkpoint_dir_with(*overrides: str) -> str:
    """The Trainer's checkpoint folder for the whole test config edited by `--set` overrides."""
    data = config_lib.apply_overrides(
        _config_data(), ["training.checkpoint_root=/ckpt", *overrides]
    )
    slice_ = config_lib.trainer_config(config_lib.from_dict(data))
    return run_fn_lib.checkpoint_dir(slice_, "/runs/Trainer/model_run/7", "/ex/1", 6)


@pytest.mark.parametrize(
    "override",
    [
        "serving.port=9000",
        "serving.model_name=other",
        "evaluation.max_regression=0.5",
        "kubeflow.image=registry.example/polyvit:2",
        "kubeflow.trainer_memory=32Gi",
        "ingestion.jpeg_quality=50",
        "tasks.shade.eval.min_metric=0.9",
        "training.log_every=1",
        "training.checkpoint_every=1",
        "training.checkpoints_to_keep=9",
        "training.eval_steps=4",
        "training.eval_batch_size=2",
        "training.strategy=mirrored",
        "training.tpu_address=local",
    ],
)
def test_settings_that_leave_the_weights_alone_keep_the_checkpoint_dir(override):
    assert _checkpoint_dir_with(override) == _checkpoint_dir_with()


@pytest.mark.parametrize(
    "override",
    [
        "training.learning_rate=0.5",
        "training.seed=1",
        "training.schedule=uniform",
        "tasks.shade.batch_size=8",
        "tasks.tones.lr_multiplier=2.0",
        "model.overrides.num_layers=2",
        "inputs.image_size=32",
    ],
)
def test_settings_that_change_the_weights_change_the_checkpoint_dir(override):
    assert _checkpoint_dir_with(override) != _checkpoint_dir_with()


def test_file_layout_and_config_errors(tmp_path):
    config = _config()
    assert run_fn_lib.split_of("/x/Examples/7/Split-train/*") == ("/x/Examples/7", "train")
    with pytest.raises(ValueError, match="Split-<split>"):
        run_fn_lib.split_of("/x/Examples/7/train/*")
    with pytest.raises(ValueError, match="custom_config has no 'config'"):
        config_lib.from_custom_config({}, config_lib.TrainerConfig, "run_fn")
    as_json = {"config": json.dumps(config_lib.to_custom_config(config)["config"])}
    received = config_lib.from_custom_config(as_json, config_lib.TrainerConfig, "run_fn")
    assert received.tasks[0].name == "shade"
    with pytest.raises(FileNotFoundError, match=r"no train records for task\(s\) \['shade'"):
        run_fn_lib.task_patterns([str(tmp_path / "Split-train" / "*")], config, "train")
    with pytest.raises(ValueError, match="one train file pattern"):
        run_fn_lib.task_patterns(["a/Split-train/*", "b/Split-train/*"], config, "train")


def test_vocabulary_must_match_num_classes(tmp_path):
    config = _config()
    uri = str(tmp_path / "examples")
    _write_examples(uri)
    with open(features.vocabulary_path(uri, "tones"), "w") as f:
        f.write("high\nlow\n")
    with pytest.raises(ValueError, match=r"tasks\.tones\.num_classes: 3.*has 2 labels"):
        run_fn_lib.read_vocabularies(uri, config, {})
    os.remove(features.vocabulary_path(uri, "tones"))
    with pytest.raises(FileNotFoundError, match="no label vocabulary for task 'tones'"):
        run_fn_lib.read_vocabularies(uri, config, {})
