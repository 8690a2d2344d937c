"""configs/vatt.yaml end to end on tiny demo data: ingest -> Transform (caption vocabulary) ->
Pretrainer -> Trainer starting from it -> Evaluator -> Pusher. One shared pipeline run."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from demo import vatt_data
from pipeline import cli, local_runner

pytestmark = pytest.mark.e2e
CONFIG = str(pathlib.Path(__file__).resolve().parents[2] / "configs" / "vatt.yaml")


@pytest.fixture(scope="module")
def vatt_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vatt")
    data_root, root = str(tmp / "data"), str(tmp / "run")
    vatt_data.generate(
        data_root, pretrain_clips=12, eval_clips=8, labelled_per_class=2, eval_per_class=2
    )
    settings = [
        f"pipeline_root={root}",
        f"serving.push_dir={root}/serving",
        "pretraining.steps=3",
        "pretraining.batch_size=4",
        "training.steps=2",
        "training.warmup_steps=1",
        "training.eval_steps=1",
    ]
    argv = ["run", "--config", CONFIG, "--data-root", data_root]
    assert cli.main(argv + [x for s in settings for x in ("--set", s)]) == 0
    outputs = local_runner.read_run_outputs(
        os.path.join(root, local_runner.METADATA_FILE), "polyvit-vatt"
    )
    return outputs


def test_every_stage_ran_and_the_model_was_pushed(vatt_run):
    assert vatt_run.failed_nodes == []
    assert vatt_run.completed_nodes[-1] == "Pusher"
    produced = {(a.node, a.key) for a in vatt_run.artifacts}
    assert {("Pretrainer", "model"), ("Trainer", "model"), ("Pusher", "pushed_model")} <= produced


def _uri(outputs, node: str, key: str) -> str:
    (artifact,) = [a for a in outputs.artifacts if (a.node, a.key) == (node, key)]
    return artifact.uri


def test_pretrainer_wrote_vocabulary_and_retrieval(vatt_run):
    model = os.path.join(_uri(vatt_run, "Pretrainer", "model"), "Format-Serving")
    with open(os.path.join(model, "caption_vocabulary.txt")) as f:
        words = f.read().split()
    assert {"digit", "moves", "going", "up", "down", "left", "right"} <= set(words)
    with open(os.path.join(model, "retrieval.json")) as f:
        retrieval = json.load(f)
    assert retrieval["steps"] == 3
    assert set(retrieval) >= {"video_to_audio", "video_to_text", "linear_probe"}
    assert retrieval["linear_probe"]["chance"] == 0.25
    assert 0.0 <= retrieval["linear_probe"]["task_top1"] <= 1.0


def test_fine_tuning_started_from_the_pretrained_encoder(vatt_run):
    pretrained = os.path.join(_uri(vatt_run, "Pretrainer", "model"), "Format-Serving")
    trained = _uri(vatt_run, "Trainer", "model_run")
    (folder,) = [d for d, _, files in os.walk(trained) if "checkpoint" in files]
    before = dict(tf.train.list_variables(tf.train.latest_checkpoint(pretrained)))
    name = next(n for n in before if "encoders" in n and "kernel" in n and "attention" in n)
    start = tf.train.load_variable(tf.train.latest_checkpoint(pretrained), name)
    after = tf.train.load_checkpoint(tf.train.latest_checkpoint(folder))
    shaped = [
        after.get_tensor(n)
        for n, shape in after.get_variable_to_shape_map().items()
        if "encoder" in n and tuple(shape) == start.shape and "OPTIMIZER" not in n
    ]
    # Two small fine-tuning steps move the weights a little: one of the trainer's matrices of
    # that shape is still close to the pretrained one (a fresh init would be far from it).
    assert any(np.abs(t - start).max() < 0.05 for t in shaped)


def test_model_report_shows_the_pretrained_models_figures(vatt_run):
    folder = _uri(vatt_run, "ModelReport", "report")
    with open(os.path.join(folder, "summary.json")) as f:
        summary = json.load(f)
    pretrained = summary["pretraining"]
    assert pretrained["steps"] == 3
    assert set(pretrained["retrieval"]) == {"video_to_audio", "video_to_text"}
    assert pretrained["linear_probe"]["chance"] == 0.25
    assert os.path.getsize(os.path.join(folder, summary["pretraining_picture"])) > 1000
    with open(os.path.join(folder, "index.html")) as f:
        assert "id='pretraining'" in f.read()


def test_pretrainer_exported_the_embedding_signatures(vatt_run):
    model = os.path.join(_uri(vatt_run, "Pretrainer", "model"), "Format-Serving")
    loaded = tf.saved_model.load(os.path.join(model, "embeddings", "1"))
    assert {"embed_examples", "embed_text", "rank_captions"} <= set(loaded.signatures)
    text = loaded.signatures["embed_text"](captions=tf.constant(["digit moves up"]))["text"]
    assert abs(float(tf.norm(text[0])) - 1.0) < 1e-5
