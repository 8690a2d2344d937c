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
from tests.support import configs, records
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
        name: configs.task(
            spec["modality"],
            spec["num_classes"],
            name,
            label_type=spec.get("label_type", "single"),
            batch_size=4,
            steps=10,
        )
        for name, spec in TASKS.items()
    }
    settings = {
        "model.overrides.patch_size": 8,
        "inputs.audio_seconds": 0.5,
        "inputs.num_mel_bins": 16,
        "inputs.audio_sample_rate": RATE,
        "inputs.shuffle_buffer": 8,
        "inputs.eval_clips": 2,
        "inputs.random_flip": False,
    }
    training = {
        "steps": 6,
        "warmup_steps": 2,
        "checkpoint_every": 3,
        "log_every": 3,
        "eval_steps": 0,
    }
    data = configs.tiny_data(tasks, training=training)
    return config_lib.apply_overrides(data, configs.as_overrides(settings))


def _config() -> config_lib.TrainerConfig:
    return config_lib.trainer_config(config_lib.from_dict(_config_data()))


def _record(modality: str, label: int, i: int) -> bytes:
    frames, wave = None, None
    if modality == "audio":
        wave = records.sine(300 + 900 * label, 1.0, RATE)
    else:
        count = 1 if modality == "image" else 8
        levels = [
            40 + 170 * label if modality == "image" else 20 + (k * 25 if label else 200 - k * 25)
            for k in range(count)
        ]
        frames = [records.jpeg(np.full([20, 20, 3], level, np.uint8)) for level in levels]
    return records.record(
        label_indices=[label],
        frames=frames,
        waveform=wave,
        sample_rate=RATE,
        filename=f"{modality}_{i}",
    )


def _write_examples(uri: str) -> None:
    by_split = {
        split: {
            name: [_record(spec["modality"], i % spec["num_classes"], i) for i in range(count)]
            for name, spec in TASKS.items()
        }
        for split, count in (("train", 16), ("eval", 9))
    }
    vocabularies = {name: spec["labels"] for name, spec in TASKS.items()}
    records.write_examples_artifact(uri, by_split, vocabularies)


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

    # A cold start says so; the next run warm-starts from this model (TFX's base_model):
    # unchanged labels, so every head carries over.
    cold = json.loads(open(os.path.join(fn_args.model_run_dir, run_fn_lib.WARM_START_FILE)).read())
    assert cold == {}
    warm = _fn_args(
        tmp_path,
        config,
        train_steps=1,
        base_model=fn_args.serving_model_dir,
        model_run_dir=str(tmp_path / "warm_run"),
        serving_model_dir=str(tmp_path / "warm" / "Format-Serving"),
    )
    run_fn_lib.run_fn(warm)
    report = json.loads(open(os.path.join(warm.model_run_dir, run_fn_lib.WARM_START_FILE)).read())
    assert report["source"] == fn_args.serving_model_dir
    assert sorted(report["carried_heads"]) == sorted(TASKS) and report["fresh_heads"] == []
    assert report["variables_loaded"] > 0 and report["variables_fresh"] == []


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
    with pytest.raises(FileNotFoundError, match=r"no train records for task 'shade'"):
        run_fn_lib.task_patterns([str(tmp_path / "Split-train" / "*")], config, "train")
    with pytest.raises(ValueError, match="is split 'eval', expected 'train'"):
        run_fn_lib.task_patterns(["a/Split-eval/*"], config, "train")


def test_a_span_window_reads_every_examples_artifact(tmp_path):
    """continuous.span_window > 1: one file pattern per Examples artifact (span); every task's
    records come from all of them, and a span missing a task's records is named."""
    config = _config()
    uris = [str(tmp_path / "span2"), str(tmp_path / "span3")]
    for uri in uris:
        _write_examples(uri)
    files = [os.path.join(features.split_dir(uri, "train"), "*") for uri in uris]
    patterns = run_fn_lib.task_patterns(files, config, "train")
    for task, pattern in patterns.items():
        assert pattern == [features.task_file_pattern(uri, "train", task) for uri in uris]
        read = {os.path.dirname(os.path.dirname(f)) for f in tf.io.gfile.glob(pattern)}
        assert read == set(uris)
    assert run_fn_lib.read_vocabularies(uris, config, {}) == {
        name: spec["labels"] for name, spec in TASKS.items()
    }
    # Spans whose label files differ: the TransformGraph's vocabulary (the whole window's).
    with open(features.vocabulary_path(uris[1], "tones"), "w") as f:
        f.write("high\nlow\n")
    with pytest.raises(FileNotFoundError, match="label vocabularies that differ for task 'tones'"):
        run_fn_lib.read_vocabularies(uris, config, {})
    window = tmp_path / "transform_tones.txt"
    window.write_text("high\nlow\nmid\n")
    vocabularies = run_fn_lib.read_vocabularies(uris, config, {"tones": str(window)})
    assert vocabularies["tones"] == ["high", "low", "mid"]
    assert run_fn_lib.resume_fingerprint(config, uris, 5) == run_fn_lib.resume_fingerprint(
        config, uris[::-1], 5
    )
    for name in os.listdir(features.split_dir(uris[1], "train")):
        if name.startswith("shade"):
            os.remove(os.path.join(features.split_dir(uris[1], "train"), name))
    with pytest.raises(FileNotFoundError, match=r"no train records for task 'shade' in .*span3"):
        run_fn_lib.task_patterns(files, config, "train")


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
