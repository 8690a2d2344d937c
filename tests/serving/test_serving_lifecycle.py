"""Version lifecycle: hot swap under load, a corrupt version, warm-up files, infra validation."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_models import TASK, install_version, sequence_example
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import layout
from serving.validation import InfraValidationError, validate_model

MODEL = "m"
TIMEOUT = 20
State = get_model_status_pb2.ModelVersionStatus


def request(num_frames=(1,), signature=TASK):
    r = predict_pb2.PredictRequest()
    r.model_spec.name = MODEL
    r.model_spec.signature_name = signature
    r.inputs["examples"].CopyFrom(
        tf.make_tensor_proto([sequence_example(n) for n in num_frames], dtype=tf.string)
    )
    return r


def statuses(model_stub):
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = MODEL
    response = model_stub.GetModelStatus(status_request, TIMEOUT)
    return {s.version: s for s in response.model_version_status}


def wait_for(condition, seconds=30.0, step=0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


@pytest.mark.e2e
def test_hot_swap_under_load_fails_no_request(tmp_path, exported_models, start_server, channel_to):
    base = str(tmp_path)
    install_version(exported_models[1], base, MODEL, 1)
    server = start_server(base, MODEL, poll_seconds=0.2)
    channel = channel_to(server.target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    model_stub = model_service_pb2_grpc.ModelServiceStub(channel)

    stop = threading.Event()
    seen: list[list[int]] = [[] for _ in range(8)]
    failures: list[str] = []

    def client(i):
        deadline = time.monotonic() + 30  # bounded even if the main thread never sets stop
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                response = stub.Predict(request(), TIMEOUT)
                seen[i].append(response.model_spec.version.value)
            except grpc.RpcError as e:
                failures.append(f"{e.code()}: {e.details()}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    install_version(exported_models[2], base, MODEL, 2)
    swapped = wait_for(lambda: server.manager.available_versions() == [2], seconds=25)
    time.sleep(1.0)  # keep sending on the new version
    stop.set()
    for t in threads:
        t.join(TIMEOUT)

    assert swapped, statuses(model_stub)
    assert not failures, failures[:5]
    for versions in seen:
        assert versions, "a client thread sent nothing"
        assert versions[0] == 1 and versions[-1] == 2, versions[:3] + versions[-3:]
        assert versions == sorted(versions), "answers went back to the old version"
    # Version 2's answers carry its own bias: the switch is to the new weights, not a relabel.
    response = stub.Predict(request((0,)), TIMEOUT)
    scores = tf.make_ndarray(response.outputs["scores"])[0]
    assert scores[0] > 0.98  # bias 5 on column 0 vs 0 elsewhere
    state = statuses(model_stub)
    assert state[2].state == State.AVAILABLE
    assert state[1].state == State.END and state[1].status.error_code == 0


@pytest.mark.e2e
def test_corrupt_version_leaves_the_old_one_serving(
    tmp_path, exported_models, start_server, channel_to
):
    base = str(tmp_path)
    install_version(exported_models[1], base, MODEL, 1)
    server = start_server(base, MODEL, poll_seconds=0.2)
    channel = channel_to(server.target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    model_stub = model_service_pb2_grpc.ModelServiceStub(channel)

    broken = os.path.join(base, MODEL, ".broken")
    shutil.copytree(exported_models[2], broken)
    pb = os.path.join(broken, "saved_model.pb")
    with open(pb, "rb") as f:
        data = f.read()
    with open(pb, "wb") as f:
        f.write(data[: len(data) // 2])
    os.rename(broken, os.path.join(base, MODEL, "2"))

    assert wait_for(
        lambda: 2 in statuses(model_stub) and statuses(model_stub)[2].state == State.END
    )
    state = statuses(model_stub)
    assert state[2].status.error_code != 0
    assert "saved_model.pb" in state[2].status.error_message
    assert "cannot parse" in state[2].status.error_message
    assert state[1].state == State.AVAILABLE
    response = stub.Predict(request(), TIMEOUT)
    assert response.model_spec.version.value == 1
    assert server.metrics.value("polyvit_serving_load_failures_total", {"model": MODEL}) == 1

    # A fixed copy under the same version number is tried again and takes over.
    fixed = os.path.join(base, MODEL, ".fixed")
    shutil.copytree(exported_models[2], fixed)
    shutil.rmtree(os.path.join(base, MODEL, "2"))
    os.rename(fixed, os.path.join(base, MODEL, "2"))
    assert wait_for(lambda: server.manager.available_versions() == [2])
    assert stub.Predict(request(), TIMEOUT).model_spec.version.value == 2


def test_warmup_file_round_trip_and_replay(tmp_path, exported_models, start_server, channel_to):
    base = str(tmp_path)
    version_path = install_version(exported_models[1], base, MODEL, 1)
    raw = predict_pb2.PredictRequest()
    raw.inputs["image"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 4, 4, 3), np.uint8)))
    path = layout.write_warmup_requests(
        version_path, {TASK: [sequence_example(2), sequence_example(3)], f"{TASK}_raw": raw}
    )
    assert path == os.path.join(version_path, "assets.extra", "tf_serving_warmup_requests")
    logs = layout.read_warmup_requests(version_path)
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == [
        TASK,
        f"{TASK}_raw",
    ]
    assert {log.predict_log.request.model_spec.name for log in logs} == {MODEL}
    examples = tf.make_ndarray(logs[0].predict_log.request.inputs["examples"])
    assert examples.tolist() == [sequence_example(2), sequence_example(3)]

    server = start_server(base, MODEL)
    # Warm-up requests ran through the model before it took traffic (rows 2 + 1).
    assert server.metrics.value("polyvit_serving_batch_size_sum") == 3
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel_to(server.target))
    assert stub.Predict(request(), TIMEOUT).model_spec.version.value == 1


def test_version_whose_warmup_fails_is_not_served(
    tmp_path, exported_models, start_server, channel_to
):
    base = str(tmp_path)
    install_version(exported_models[1], base, MODEL, 1)
    staging = os.path.join(base, "staging")
    shutil.copytree(exported_models[2], staging)
    layout.write_warmup_requests(staging, {"no_such_signature": [sequence_example(1)]}, MODEL)
    os.rename(staging, os.path.join(base, MODEL, "2"))
    server = start_server(base, MODEL)
    model_stub = model_service_pb2_grpc.ModelServiceStub(channel_to(server.target))
    state = statuses(model_stub)
    assert state[1].state == State.AVAILABLE
    assert state[2].state == State.END
    assert 'Serving signature key "no_such_signature" not found' in state[2].status.error_message


def test_layout_versions(tmp_path):
    model = tmp_path / "m"
    for name in ("1", "10", "2", "tmp", ".staging-3"):
        (model / name).mkdir(parents=True)
    (model / "7").write_text("a file, not a version folder")
    assert layout.list_versions(str(model)) == [1, 2, 10]
    assert layout.next_version(str(model)) == 11
    assert layout.next_version(str(tmp_path / "missing")) == 1
    assert layout.version_dir("b", "m", 3) == os.path.join("b", "m", "3")
    with pytest.raises(ValueError, match="non-negative"):
        layout.version_dir("b", "m", -1)


def test_validate_model(tmp_path, exported_models):
    good = [request((1, 2)), request((0,), signature=f"{TASK}_raw")]
    good[1].inputs.clear()
    good[1].inputs["image"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 2, 2, 3), np.uint8)))
    validate_model(exported_models[1], good)

    with pytest.raises(InfraValidationError, match="no warm-up requests"):
        validate_model(exported_models[1])
    with pytest.raises(InfraValidationError, match=r"request 0 .*INVALID_ARGUMENT.*float"):
        bad = request()
        bad.inputs["examples"].CopyFrom(tf.make_tensor_proto(np.zeros([1], np.float32)))
        validate_model(exported_models[1], [bad])

    broken = str(tmp_path / "broken")
    shutil.copytree(exported_models[1], broken)
    with open(os.path.join(broken, "saved_model.pb"), "wb") as f:
        f.write(b"\x08\x01garbage")
    with pytest.raises(InfraValidationError, match="cannot load the model"):
        validate_model(broken, good)

    # With no list given, the version's own warm-up file is what is sent.
    layout.write_warmup_requests(exported_models[1], {TASK: [sequence_example(1)]}, MODEL)
    try:
        validate_model(exported_models[1])
    finally:
        shutil.rmtree(os.path.join(exported_models[1], layout.WARMUP_DIR))


@pytest.mark.e2e
def test_serve_cli_answers_then_stops_on_sigterm(tmp_path, exported_models):
    """`polyvit serve` with TF Serving's own flag spellings and a model_config_file holding two
    models; REST and gRPC answer with the same scores; SIGTERM stops it cleanly."""
    import json
    import socket
    import urllib.request

    base = str(tmp_path / "models")
    install_version(exported_models[1], base, MODEL, 1)
    install_version(exported_models[2], base, "other", 4)
    config_file = tmp_path / "models.config"
    config_file.write_text(
        "model_config_list {\n"
        f'  config {{ name: "{MODEL}" base_path: "{base}/{MODEL}" model_platform: "tensorflow" }}\n'
        f'  config {{ name: "other" base_path: "{base}/other" model_platform: "tensorflow"\n'
        "    model_version_policy { specific { versions: 4 } }\n"
        '    version_labels { key: "stable" value: 4 } }\n'
        "}\n"
    )
    with socket.socket() as probe:  # TF Serving's --rest_api_port=0 means "no REST API"
        probe.bind(("127.0.0.1", 0))
        rest_port = probe.getsockname()[1]
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    k8s_config = os.path.join(repo, "k8s", "serving", "base", "config")
    command = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "serve",
        "--config",
        os.path.join(repo, "configs", "demo.yaml"),
        "--port=0",
        f"--rest_api_port={rest_port}",
        f"--model_config_file={config_file}",
        "--enable_batching=true",
        f"--batching_parameters_file={os.path.join(k8s_config, 'batching.config')}",
        f"--monitoring_config_file={os.path.join(k8s_config, 'monitoring.config')}",
        "--file_system_poll_wait_seconds=0",
    ]
    log_path = tmp_path / "serve.log"
    log_file = open(log_path, "w")  # a file, not a pipe: the server's log can never block it
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=repo
    )
    try:
        line = process.stdout.readline()  # "polyvit serve: m, other on HOST:PORT, REST on URL"
        assert f"{MODEL}, other on 127.0.0.1:" in line, log_path.read_text()[-3000:]
        target = line.split(" on ")[1].split(",")[0]
        rest_url = line.strip().rsplit(" ", 1)[-1]
        assert rest_url == f"http://127.0.0.1:{rest_port}"
        with grpc.insecure_channel(target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            answer = stub.Predict(request((1, 3)), TIMEOUT)
            assert answer.model_spec.version.value == 1
            other = request((1, 3))
            other.model_spec.name = "other"
            other.model_spec.version_label = "stable"
            assert stub.Predict(other, TIMEOUT).model_spec.version.value == 4
        examples = [{"b64": base64.b64encode(sequence_example(n)).decode()} for n in (1, 3)]
        body = json.dumps({"signature_name": TASK, "instances": examples}).encode()
        with urllib.request.urlopen(f"{rest_url}/v1/models/{MODEL}:predict", body, TIMEOUT) as r:
            predictions = json.loads(r.read())["predictions"]
        np.testing.assert_allclose(
            [p["scores"] for p in predictions],
            tf.make_ndarray(answer.outputs["scores"]),
            rtol=1e-6,
        )
        with urllib.request.urlopen(f"{rest_url}/monitoring/prometheus/metrics") as r:
            assert b"polyvit_serving_batch_size" in r.read()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log_path.read_text()[-3000:]
        assert "shutting down gracefully" in log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log_file.close()
