"""TF Serving's REST API on the local server, driven with a plain HTTP client (urllib /
http.client), and the hostile requests of both transports against one server."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_models import (
    LABELS,
    TASK,
    WAVEFORM_SIGNATURE,
    sequence_example,
)
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import predict_pb2

MODEL = "m"
TIMEOUT = 20


def call(server, path: str, body=None) -> tuple[int, dict]:
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    request = urllib.request.Request(server.rest_url + path, data=data)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def grpc_examples(examples: list[bytes], signature=TASK) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = signature
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto(examples, dtype=tf.string))
    return request


def test_status_and_metadata(served):
    server = served.server
    status, body = call(server, f"/v1/models/{MODEL}")
    assert status == 200
    assert body == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert call(server, f"/v1/models/{MODEL}/versions/1")[0] == 200
    status, body = call(server, f"/v1/models/{MODEL}/metadata")
    assert status == 200 and body["model_spec"]["version"] == "1"
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert signatures[TASK]["inputs"]["examples"]["dtype"] == "DT_STRING"
    assert signatures[f"{TASK}_classify"]["method_name"] == "tensorflow/serving/classify"

    for path, code, message in (
        ("/v1/models/nope", 404, "Could not find any versions of model nope"),
        ("/v1/models/nope/metadata", 404, "Servable not found for request: Latest(nope)"),
        (f"/v1/models/{MODEL}/versions/9/metadata", 404, f"Specific({MODEL}, 9)"),
        (f"/v1/models/{MODEL}/labels/canary", 400, "Unrecognized servable version label"),
        ("/v1/models", 400, "Missing model name in request."),
        ("/v2/models/m", 400, "Malformed request: GET /v2/models/m"),
    ):
        status, body = call(server, path)
        assert (status, list(body)) == (code, ["error"]), (path, body)
        assert message in body["error"]

    with urllib.request.urlopen(server.rest_url + "/monitoring/prometheus/metrics") as response:
        assert b"polyvit_serving_requests_total" in response.read()


def test_rest_and_grpc_give_the_same_scores(served):
    server, stub = served.server, served.stub
    examples = [sequence_example(n) for n in (0, 2, 3)]
    grpc_scores = tf.make_ndarray(stub.Predict(grpc_examples(examples), TIMEOUT).outputs["scores"])

    row = {"signature_name": TASK, "instances": [b64(e) for e in examples]}
    status, body = call(server, f"/v1/models/{MODEL}:predict", row)
    assert status == 200, body
    assert [p["classes"] for p in body["predictions"]] == [LABELS] * 3
    assert [p["task"] for p in body["predictions"]] == [TASK] * 3
    np.testing.assert_allclose([p["scores"] for p in body["predictions"]], grpc_scores, rtol=1e-6)

    columnar = {"signature_name": TASK, "inputs": {"examples": [b64(e) for e in examples]}}
    status, body = call(server, f"/v1/models/{MODEL}/versions/1:predict", columnar)
    assert status == 200, body
    np.testing.assert_allclose(body["outputs"]["scores"], grpc_scores, rtol=1e-6)

    # A numeric input, row format, one instance per image; default signature by omission.
    image = np.zeros((2, 2, 3), np.uint8).tolist()
    raw = {"signature_name": f"{TASK}_raw", "instances": [image, image]}
    status, body = call(server, f"/v1/models/{MODEL}:predict", raw)
    assert status == 200 and len(body["predictions"]) == 2
    status, body = call(server, f"/v1/models/{MODEL}:predict", {"instances": [b64(examples[1])]})
    np.testing.assert_allclose(body["predictions"][0]["scores"], grpc_scores[1], rtol=1e-6)


def test_classify(served):
    server = served.server
    body = {
        "signature_name": f"{TASK}_classify",
        "context": {"image/encoded": [b64(b"x"), b64(b"y")]},
        "examples": [{}, {"image/encoded": b64(b"z")}],
    }
    status, answer = call(server, f"/v1/models/{MODEL}:classify", body)
    assert status == 200, answer
    # Two frames from the context; the second example's own feature replaces the context's.
    assert [[label for label, _ in r] for r in answer["results"]] == [LABELS, LABELS]
    first = [score for _, score in answer["results"][0]]
    second = [score for _, score in answer["results"][1]]
    assert np.argmax(first) == 2 and not np.allclose(first, second)


def _nan_waveform_example() -> bytes:
    example = example_pb2.SequenceExample()
    example.ParseFromString(sequence_example(1))
    floats = example.feature_lists.feature_list["WAVEFORM/feature/floats"].feature.add()
    floats.float_list.value.extend([0.1, float("nan"), 0.3])
    return example.SerializeToString()


def _disconnect_mid_rest_request(server) -> None:
    host, port = server.rest_url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(
            f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\n"
            'Content-Length: 100000\r\n\r\n{"instances": ['.encode()
        )


def _disconnect_mid_grpc_call(stub) -> None:
    big = grpc_examples([sequence_example(40)] * 8)
    future = stub.Predict.future(big, TIMEOUT)
    future.cancel()


def test_hostile_requests_then_a_good_one(served):
    """Each hostile request, over gRPC and REST where it applies, answered with its status and a
    message; then a good request is still answered, by the same server."""
    server, stub = served.server, served.stub
    broken_jpeg = sequence_example(2, frame=b"\xff\xd8\xff" + b"\x00" * 30)
    truncated = sequence_example(3)[:-7]
    too_long = sequence_example(65)  # max_frames=64
    grpc_cases = [
        ("undecodable JPEG frames", grpc_examples([broken_jpeg]), "INVALID_ARGUMENT", "JPEG"),
        ("empty example", grpc_examples([b""]), "INVALID_ARGUMENT", "examples[0]: the serialized"),
        ("truncated example", grpc_examples([truncated]), "INVALID_ARGUMENT", "cannot parse"),
        ("NaN in an example", grpc_examples([_nan_waveform_example()]), "INVALID_ARGUMENT", "NaN"),
        ("too many frames", grpc_examples([too_long]), "INVALID_ARGUMENT", "65 frames"),
        ("unknown signature", grpc_examples([b"x"], "nope"), "FAILED_PRECONDITION", "nope"),
        (
            "too large",
            grpc_examples([b"x" * (2 * 1024 * 1024)]),
            "RESOURCE_EXHAUSTED",
            "larger than max",
        ),
    ]
    for bad_value in (float("nan"), float("inf")):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.model_spec.signature_name = WAVEFORM_SIGNATURE
        request.inputs["waveform"].CopyFrom(
            tf.make_tensor_proto(np.array([[0.0, bad_value]], np.float32))
        )
        grpc_cases.append((f"{bad_value} waveform", request, "INVALID_ARGUMENT", "NaN or infinite"))
    strings = predict_pb2.PredictRequest()
    strings.CopyFrom(grpc_cases[-1][1])
    strings.inputs["waveform"].CopyFrom(tf.make_tensor_proto([["a", "b"]], dtype=tf.string))
    grpc_cases.append(("strings for floats", strings, "INVALID_ARGUMENT", "to be float but string"))
    for name, request, code, message in grpc_cases:
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(request, TIMEOUT)
        assert caught.value.code().name == code, (name, caught.value.details())
        assert message in caught.value.details(), (name, caught.value.details())
    _disconnect_mid_grpc_call(stub)

    predict = f"/v1/models/{MODEL}:predict"
    waveform = {"signature_name": WAVEFORM_SIGNATURE}
    rest_cases = [
        ("undecodable JPEG frames", predict, {"instances": [b64(broken_jpeg)]}, 400, "JPEG"),
        ("empty example", predict, {"instances": [""]}, 400, "the serialized example is empty"),
        ("truncated example", predict, {"instances": [b64(truncated)]}, 400, "cannot parse"),
        ("too many frames", predict, {"instances": [b64(too_long)]}, 400, "65 frames"),
        ("NaN waveform", predict, {**waveform, "instances": [[0.5, float("nan")]]}, 400, "NaN"),
        ("inf waveform", predict, {**waveform, "inputs": [[float("inf"), 0.1]]}, 400, "NaN or"),
        ("string for floats", predict, {**waveform, "instances": [["a"]]}, 400, "expected type"),
        ("unknown signature", predict, {"signature_name": "nope", "instances": [1]}, 400, "nope"),
        ("not JSON", predict, b"{", 400, "JSON Parse error"),
        ("empty body", predict, b"", 400, "The document is empty"),
        ("no inputs", predict, {"signature_name": TASK}, 400, "Missing 'inputs' or 'instances'"),
        ("bad base64", predict, {"instances": [{"b64": "%%%"}]}, 400, "Unable to base64 decode"),
        ("ragged", predict, {**waveform, "instances": [[1.0], [1.0, 2.0]]}, 400, "ragged"),
        ("unknown model", "/v1/models/nope:predict", {"instances": [1]}, 404, "Latest(nope)"),
        ("too large", predict, b" " * (2 * 1024 * 1024), 429, "larger than the limit"),
    ]
    for name, path, body, code, message in rest_cases:
        status, answer = call(server, path, body)
        assert (status, list(answer)) == (code, ["error"]), (name, answer)
        assert message in answer["error"], (name, answer)
    _disconnect_mid_rest_request(server)

    # A slow client holds its own connection only: others are answered meanwhile.
    host, port = server.rest_url.removeprefix("http://").rsplit(":", 1)
    stalled = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    stalled.putrequest("POST", f"/v1/models/{MODEL}:predict")
    stalled.putheader("Content-Length", "50")
    stalled.endheaders()
    stalled.send(b'{"inst')

    good = grpc_examples([sequence_example(2)])
    assert stub.Predict(good, TIMEOUT).model_spec.version.value == 1
    status, body = call(
        server, predict, {"signature_name": TASK, "instances": [b64(sequence_example(2))]}
    )
    assert status == 200 and len(body["predictions"]) == 1
    stalled.close()
    # The refusals were counted per code, and nothing was answered INTERNAL.
    metrics = server.metrics
    assert (
        metrics.value(
            "polyvit_serving_requests_total",
            {"method": "rest:POST", "model": MODEL, "code": "INVALID_ARGUMENT"},
        )
        >= 10
    )
    for method in ("Predict", "rest:POST"):
        labels = {"method": method, "model": MODEL, "code": "INTERNAL"}
        assert metrics.value("polyvit_serving_requests_total", labels) == 0


def test_predict_cli_over_rest(served, tmp_path, capsys):
    """`polyvit predict --rest` prints what the gRPC path prints for the same image."""
    import os

    from demo.writers import write_image
    from pipeline import cli as pipeline_cli

    server = served.server
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    image = str(tmp_path / "seven.png")
    write_image(image, np.full((20, 30, 3), 128, np.uint8), jpeg_quality=90)
    common = ["predict", "--config", os.path.join(repo, "configs", "demo.yaml"), "--model", MODEL]
    rest_target = server.rest_url.removeprefix("http://")
    assert pipeline_cli.main(common + ["--rest", "--server", rest_target, "--json", image]) == 0
    over_rest = json.loads(capsys.readouterr().out)
    assert pipeline_cli.main(common + ["--server", server.target, "--json", image]) == 0
    over_grpc = json.loads(capsys.readouterr().out)
    assert over_rest["model_version"] == over_grpc["model_version"] == 1
    assert [i["label"] for i in over_rest["top_k"]] == [i["label"] for i in over_grpc["top_k"]]
    np.testing.assert_allclose(
        [i["score"] for i in over_rest["top_k"]], [i["score"] for i in over_grpc["top_k"]], 1e-6
    )

    # An unreachable REST port: one line naming the file, exit 1.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    args = common + ["--rest", "--server", f"127.0.0.1:{free_port}", "--timeout", "2", image]
    assert pipeline_cli.main(args) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_rest_client_reads_signatures_and_predicts(served):
    from serving.client import PolyvitRestClient

    server, stub = served.server, served.stub
    client = PolyvitRestClient(server.rest_url, MODEL, timeout=TIMEOUT)
    assert client.tasks() == {TASK: "image"}
    examples = [sequence_example(3)]
    outputs = client.predict_examples(TASK, examples)
    assert outputs["model_version"] == 1
    expected = tf.make_ndarray(stub.Predict(grpc_examples(examples), TIMEOUT).outputs["scores"])
    np.testing.assert_allclose(outputs["scores"], expected, rtol=1e-6)
