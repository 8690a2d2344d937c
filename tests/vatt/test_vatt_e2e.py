"""configs/vatt.yaml end to end on tiny demo data: ingest (the pretraining task unlabelled) ->
Transform (caption vocabulary) -> Pretrainer -> Trainer starting from it -> Evaluator ->
Pusher, then the pushed model served: labels, embeddings and caption ranking through TF
Serving's API. One shared pipeline run."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from core import features
from demo import vatt_data
from pipeline import cli, local_runner

pytestmark = pytest.mark.e2e
CONFIG = str(pathlib.Path(__file__).resolve().parents[2] / "configs" / "vatt.yaml")


@pytest.fixture(scope="module")
def vatt_pipeline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vatt")
    data_root, root = str(tmp / "data"), str(tmp / "run")
    vatt_data.generate(data_root, per_direction=3, eval_per_direction=2, labelled_per_class=2)
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
    return outputs, data_root, root


@pytest.fixture(scope="module")
def vatt_run(vatt_pipeline):
    return vatt_pipeline[0]


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


def test_the_pretraining_task_is_unlabelled_end_to_end(vatt_run):
    from media import dmvr

    examples = _uri(vatt_run, "MediaExampleGen", "examples")
    records = dmvr.read_records(features.task_file_pattern(examples, features.TRAIN, "vatt_clips"))
    assert records and all(r.labels == () and r.label_indices == () for r in records)
    assert any(r.captions for r in records)
    # No vocabulary anywhere: not beside the records, not in the TransformGraph.
    assert not os.path.exists(features.vocabulary_path(examples, "vatt_clips"))
    assert os.path.exists(features.vocabulary_path(examples, "few_moves"))
    assets = os.path.join(_uri(vatt_run, "Transform", "transform_graph"), "transform_fn", "assets")
    assert "labels_few_moves" in os.listdir(assets)
    assert not [a for a in os.listdir(assets) if "vatt_clips" in a]
    # No head: the pushed model has signatures for the labelled task only.
    loaded = tf.saved_model.load(os.path.join(_uri(vatt_run, "Trainer", "model"), "Format-Serving"))
    assert "few_moves" in loaded.signatures
    assert not [name for name in loaded.signatures if name.startswith("vatt_clips")]


@pytest.fixture(scope="module")
def served(vatt_pipeline):
    """The Pusher's output, served as TF Serving serves it (the versions folder)."""
    from serving.model_config import ModelConfig
    from serving.server import ModelServer, ServerOptions

    _, data_root, root = vatt_pipeline
    options = ServerOptions(
        models=(ModelConfig("polyvit", os.path.join(root, "serving", "polyvit")),),
        port=0,
        host="127.0.0.1",
        rest_api_port=0,
    )
    running = ModelServer(options).start()
    videos = sorted(pathlib.Path(data_root, "vatt", "videos").glob("fewval_*.mp4"))
    yield running, str(videos[0])
    running.stop(grace=1)


def _predict(running, capsys, *flags) -> dict:
    argv = ["predict", "--config", CONFIG, "--server", running.target, "--model", "polyvit"]
    assert cli.main([*argv, "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_the_pushed_model_answers_labels_embeddings_and_caption_ranking(served, capsys):
    running, video = served
    # The fine-tuned task's labels, as before.
    labels = _predict(running, capsys, "--task", "few_moves", video)
    assert labels["task"] == "few_moves"
    assert {item["label"] for item in labels["top_k"]} <= {"down", "left", "right", "up"}
    # The embeddings of the shared spaces, from the same pushed model.
    embedded = _predict(running, capsys, "--embed", video)
    assert set(embedded["vectors"]) == {"video_va", "audio", "video_vt"}
    for vector in embedded["vectors"].values():
        assert abs(np.linalg.norm(vector) - 1.0) < 1e-5
    captions = ["digit 3 moves up", "digit 3 moves left", "a zebra"]
    ranked = _predict(running, capsys, "--rank-captions", "|".join(captions), video)["ranked"]
    assert sorted(text for text, _ in ranked) == sorted(captions)
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    assert all(-1.0 - 1e-5 <= s <= 1.0 + 1e-5 for _, s in ranked)


def test_the_pushed_embeddings_are_the_pretrained_models(vatt_pipeline):
    """The pushed model embeds with the whole pretrained model (documented choice), so it
    gives the Pretrainer's own export's vectors."""
    vatt_run, _, root = vatt_pipeline
    (version,) = os.listdir(os.path.join(root, "serving", "polyvit"))
    pushed = tf.saved_model.load(os.path.join(root, "serving", "polyvit", version))
    pretrained = tf.saved_model.load(
        os.path.join(_uri(vatt_run, "Pretrainer", "model"), "Format-Serving", "embeddings", "1")
    )
    captions = tf.constant(["digit 1 moves up", "digit 2 moves down"])
    got = pushed.signatures["embed_text"](captions=captions)["text"].numpy()
    want = pretrained.signatures["embed_text"](captions=captions)["text"].numpy()
    assert np.allclose(got, want, atol=1e-6)
