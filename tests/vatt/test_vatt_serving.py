"""`polyvit predict --embed` and `--rank-captions` against the local TF-Serving-compatible
server holding a tiny exported VATT embedding model (gRPC and REST)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from demo.writers import write_video
from pipeline import cli
from serving import embeddings
from serving.model_config import ModelConfig
from serving.server import ModelServer, ServerOptions
from tests.vatt.test_vatt_pretrain import WORDS, _config
from trainer.vatt import embed_export, pretrain

CONFIG = str(pathlib.Path(__file__).resolve().parents[2] / "configs" / "vatt.yaml")
CAPTIONS = ["digit moves up", "digit moves down", "up up"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("vatt_serving")
    config = _config()
    model = pretrain.make_model(config, WORDS)
    embed_export.export_embeddings(model, config, WORDS, str(root / "m"))
    video = str(root / "clip.mp4")
    frames = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3), dtype=np.uint8)
    tone = np.sin(np.arange(32000) * 0.05).astype(np.float32) * 0.3
    write_video(video, frames, fps=8, crf=23, audio=tone, audio_sample_rate=16000)
    options = ServerOptions(
        models=(ModelConfig("vatt", str(root / "m" / embed_export.EMBEDDINGS_DIR)),),
        port=0,
        host="127.0.0.1",
        rest_api_port=0,
    )
    running = ModelServer(options).start()
    loaded = tf.saved_model.load(str(root / "m" / embed_export.EMBEDDINGS_DIR / "1"))
    yield running, video, loaded
    running.stop(grace=1)


def _common(running, rest: bool) -> list[str]:
    target = f"127.0.0.1:{running.rest_port}" if rest else running.target
    return ["predict", "--config", CONFIG, "--server", target, "--model", "vatt", "--json"]


@pytest.mark.parametrize("rest", [False, True])
def test_embed_prints_unit_vectors_in_each_space(server, capsys, rest):
    running, video, _ = server
    flags = ["--rest"] if rest else []
    assert cli.main(_common(running, rest) + flags + ["--embed", video]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["model_version"] == 1 and record["clips"] >= 1
    assert set(record["vectors"]) == {"video_va", "audio", "video_vt"}
    for vector in record["vectors"].values():
        assert abs(np.linalg.norm(vector) - 1.0) < 1e-5


@pytest.mark.parametrize("rest", [False, True])
def test_rank_captions_orders_by_the_text_embeddings(server, capsys, rest):
    running, video, loaded = server
    flags = ["--rest"] if rest else []
    argv = _common(running, rest) + flags + ["--rank-captions", "|".join(CAPTIONS), video]
    assert cli.main(argv) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ranked = record["ranked"]
    assert sorted(text for text, _ in ranked) == sorted(CAPTIONS)
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)
    # The same ranking from the text embeddings and the --embed video_vt vector.
    assert cli.main(_common(running, rest) + flags + ["--embed", video]) == 0
    embedded = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    text = loaded.signatures["embed_text"](captions=tf.constant(CAPTIONS))["text"].numpy()
    cosine = dict(zip(CAPTIONS, text @ np.asarray(embedded["vectors"]["video_vt"]), strict=True))
    for caption, score in ranked:
        assert abs(cosine[caption] - score) < 1e-4


def test_bad_caption_lists_are_refused(server, capsys):
    running, video, _ = server
    assert cli.main(_common(running, False) + ["--rank-captions", "a||b", video]) == 2
    assert "non-empty captions" in capsys.readouterr().err
    with pytest.raises(ValueError, match="non-empty"):
        embeddings.split_captions(" | ")
