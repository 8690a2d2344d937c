"""The client library and `polyvit predict`, against the local server over loopback."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import numpy as np
import pytest
from serving_models import LABELS, TASK, install_version

from core.config import Ingestion
from demo.writers import write_audio, write_image, write_video
from pipeline import cli
from serving import client as client_lib
from serving.servable import read_signature_defs
from tests.support import configs

MODEL = "m"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "demo.yaml")


def softmax(logits):
    e = np.exp(np.asarray(logits, float) - np.max(logits))
    return e / e.sum()


def test_modality_and_task_discovery(exported_models):
    assert client_lib.modality_of("a/b.MP4") == "video"
    assert client_lib.modality_of("x.wav") == "audio"
    assert client_lib.modality_of("x.png") == "image"
    with pytest.raises(ValueError, match=r"notes\.txt.*--task"):
        client_lib.modality_of("notes.txt")
    tasks = client_lib.task_modalities(read_signature_defs(exported_models[1]))
    assert tasks == {TASK: "image"}
    labels = client_lib.best_labels(np.array([0.1, 0.7, 0.2]), np.array([b"a", b"b", b"c"]), 2)
    assert labels == [("b", 0.7), ("c", 0.2)]


def test_predict_cli_on_an_image(tmp_path, exported_models, start_server, capsys):
    install_version(exported_models[1], str(tmp_path / "models"), MODEL, 1)
    server = start_server(str(tmp_path / "models"), MODEL)
    image = str(tmp_path / "seven.png")
    write_image(image, np.full((20, 30, 3), 128, np.uint8), jpeg_quality=90)
    common = ["predict", "--config", CONFIG, "--server", server.target, "--model", MODEL]

    assert cli.main(common + ["--json", "--top-k", "2", image]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    record = json.loads(line)
    assert record["task"] == TASK and record["model_version"] == 1 and record["clips"] == 1
    expected = softmax([0.0, 1.0, 2.0])  # the test model: one frame -> feature 1
    assert [item["label"] for item in record["top_k"]] == ["owl", "dog"]
    np.testing.assert_allclose([i["score"] for i in record["top_k"]], expected[[2, 1]], 1e-5)

    assert cli.main(common + ["--task", TASK, image]) == 0
    text = capsys.readouterr().out
    assert f"[{TASK}, version 1]" in text and all(label in text for label in LABELS)

    # No audio task in this model, an unknown task, a file that is not media: each is an
    # error naming the file, and the exit status says something failed.
    sound = str(tmp_path / "beep.wav")
    write_audio(sound, np.zeros(1600, np.float32), 16000)
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video")
    assert cli.main(common + ["--task", "nope", sound, image]) == 1
    err = capsys.readouterr().err
    assert "no task 'nope'" in err
    assert cli.main(common + [sound, str(notes)]) == 1
    err = capsys.readouterr().err
    assert "beep.wav" in err and "no audio task" in err
    assert "notes.mp4" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_client_retries_until_the_server_is_up(tmp_path, exported_models, start_server):
    install_version(exported_models[1], str(tmp_path), MODEL, 1)
    port = _free_port()
    started = threading.Timer(1.0, lambda: start_server(str(tmp_path), MODEL, port=port))
    started.start()
    try:
        with client_lib.PolyvitClient(
            f"127.0.0.1:{port}", MODEL, timeout=10, retries=6, backoff=0.25
        ) as client:
            began = time.monotonic()
            assert client.tasks() == {TASK: "image"}
            assert time.monotonic() - began >= 0.5  # it really waited for the server
    finally:
        started.join()


# --------------------------------------------------------------------------------------------
# End to end with the real export (trainer/export.py) on files of every modality.

RATE = 16000
VOCABULARIES = {
    "digits": [f"digit_{i}" for i in range(10)],
    "motion": ["down", "left", "right", "up"],
    "tones": ["a", "b", "c", "d", "e"],
}


def real_config():
    tasks = {
        "digits": configs.task("image", 10, "digits"),
        "motion": configs.task("video", 4, "motion"),
        "tones": configs.multi_label("audio", 5, "tones"),
    }
    settings = {
        "model.overrides.zero_init_heads": False,
        "inputs.audio_seconds": 0.5,
        "inputs.num_mel_bins": 16,
    }
    ingestion = {"sample_rate": RATE, "short_side": 24, "fps": 8, "clip_seconds": 1.0}
    return configs.tiny_config(tasks, settings, ingestion=ingestion)


@pytest.mark.e2e
def test_predict_every_modality_with_the_real_export(tmp_path, start_server, capsys):
    from core import config as config_lib
    from serving import layout
    from serving.validation import validate_model
    from trainer.export import export_saved_model
    from trainer.model import build_model

    config = real_config()
    base = str(tmp_path / "models")
    version_path = layout.version_dir(base, "polyvit", 1)
    model = build_model(config.model, config.tasks, config.inputs)
    export_saved_model(model, config_lib.trainer_config(config), VOCABULARIES, version_path)

    rng = np.random.default_rng(0)
    files = {
        "digits": str(tmp_path / "digit.png"),
        "motion": str(tmp_path / "motion.mp4"),
        "tones": str(tmp_path / "tones.wav"),
    }
    write_image(files["digits"], rng.integers(0, 255, (28, 28, 3), dtype=np.uint8), 90)
    write_video(files["motion"], rng.integers(0, 255, (16, 32, 32, 3), dtype=np.uint8), 8, 23)
    t = np.arange(int(2.0 * RATE)) / RATE
    write_audio(files["tones"], (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), RATE)

    # The pipeline's path: warm-up requests from real examples, infra validation, then serve.
    ingestion: Ingestion = config.ingestion
    modality = {"digits": "image", "motion": "video", "tones": "audio"}
    examples = {
        task: client_lib.encode_file(path, modality[task], ingestion)
        for task, path in files.items()
    }
    layout.write_warmup_requests(version_path, examples)
    validate_model(version_path)

    server = start_server(base, "polyvit")
    with client_lib.PolyvitClient(server.target, "polyvit", ingestion=ingestion) as client:
        assert client.tasks() == {"digits": "image", "motion": "video", "tones": "audio"}
        # The in-process reference: the same loaded SavedModel, called without gRPC.
        servable = server.manager.get().servable
        for task, path in files.items():
            (prediction,) = client.predict_file(path, top_k=3)
            assert prediction.task == task and prediction.model_version == 1
            assert len(prediction.top_k) == 3
            assert {label for label, _ in prediction.top_k} <= set(VOCABULARIES[task])
            # Same numbers as the model called in process on the same examples.
            local = servable.run(task, {"examples": np.array(examples[task], dtype=object)})
            scores = local["scores"].mean(axis=0)
            best = client_lib.best_labels(scores, local["classes"][0], 3)
            assert [label for label, _ in prediction.top_k] == [label for label, _ in best]
            np.testing.assert_allclose(
                [s for _, s in prediction.top_k], [s for _, s in best], rtol=1e-4
            )
            assert prediction.clips == len(examples[task])
        assert prediction.clips == 2  # 2 s of audio in 1 s clips: scores averaged over both

    args = ["predict", "--config", CONFIG, "--server", server.target, "--model", "polyvit"]
    assert cli.main(args + ["--json", *files.values()]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["task"] for r in records] == ["digits", "motion", "tones"]
