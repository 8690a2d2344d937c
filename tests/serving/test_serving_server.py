"""The local model server through the real tensorflow_serving.apis stubs, over loopback."""

from __future__ import annotations

import os
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serving_models import LABELS, TASK, install_version, sequence_example
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

MODEL = "m"
TIMEOUT = 20


def examples_request(num_frames=(2, 0), signature=TASK, model=MODEL, version=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    request.inputs["examples"].CopyFrom(
        tf.make_tensor_proto([sequence_example(n) for n in num_frames], dtype=tf.string)
    )
    return request


def expected_scores(features, bias):
    logits = np.array([[f * c + (bias if c == 0 else 0.0) for c in range(3)] for f in features])
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def assert_still_serving(stub):
    response = stub.Predict(examples_request(), TIMEOUT)
    assert response.model_spec.version.value >= 1


def test_predict_examples_signature(served):
    stub = served.stub
    response = stub.Predict(examples_request((2, 0)), TIMEOUT)
    assert response.model_spec.name == MODEL
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == TASK
    scores = tf.make_ndarray(response.outputs["scores"])
    np.testing.assert_allclose(scores, expected_scores([2, 0], bias=0.0), rtol=1e-5)
    classes = tf.make_ndarray(response.outputs["classes"])
    assert classes.tolist() == [[label.encode() for label in LABELS]] * 2
    assert tf.make_ndarray(response.outputs["task"]).tolist() == [TASK.encode()] * 2


def test_predict_default_raw_and_output_filter(served):
    stub = served.stub
    default = examples_request((3,), signature="")
    response = stub.Predict(default, TIMEOUT)
    assert response.model_spec.signature_name == "serving_default"
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["scores"]), expected_scores([3], 0.0), rtol=1e-5
    )

    raw = predict_pb2.PredictRequest()
    raw.model_spec.name = MODEL
    raw.model_spec.signature_name = f"{TASK}_raw"
    image = np.full((2, 4, 5, 3), 255, np.uint8)
    image[1] = 0
    raw.inputs["image"].CopyFrom(tf.make_tensor_proto(image))
    raw.output_filter.append("scores")
    response = stub.Predict(raw, TIMEOUT)
    assert list(response.outputs) == ["scores"]
    np.testing.assert_allclose(
        tf.make_ndarray(response.outputs["scores"]), expected_scores([1.0, 0.0], 0.0), rtol=1e-5
    )


def test_get_model_metadata_is_the_saved_models_signature_defs(served, exported_models):
    stub = served.stub
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, TIMEOUT)
    assert response.model_spec.version.value == 1
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(exported_models[1], "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    assert dict(signature_map.signature_def) == dict(saved.meta_graphs[0].signature_def)
    assert {TASK, f"{TASK}_raw", f"{TASK}_classify", "serving_default"} <= set(
        signature_map.signature_def
    )
    examples = signature_map.signature_def[TASK].inputs["examples"]
    assert examples.dtype == tf.string.as_datatype_enum
    assert [d.size for d in examples.tensor_shape.dim] == [-1]


def tf_example(num_frames):
    example = tf.train.Example()
    frames = example.features.feature["image/encoded"].bytes_list
    frames.value.extend([b"jpeg"] * num_frames)
    return example


def test_classify(served):
    stub = served.stub
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = f"{TASK}_classify"
    request.input.example_list.examples.extend([tf_example(1), tf_example(2)])
    response = stub.Classify(request, TIMEOUT)
    assert response.model_spec.signature_name == f"{TASK}_classify"
    expected = expected_scores([1, 2], 0.0)
    for row, classification in enumerate(response.result.classifications):
        assert [c.label for c in classification.classes] == LABELS
        np.testing.assert_allclose([c.score for c in classification.classes], expected[row], 1e-5)

    # With a shared context: the context's frames count for an example that has none.
    with_context = classification_pb2.ClassificationRequest()
    with_context.model_spec.CopyFrom(request.model_spec)
    with_context.input.example_list_with_context.context.CopyFrom(tf_example(3))
    with_context.input.example_list_with_context.examples.append(tf.train.Example())
    response = stub.Classify(with_context, TIMEOUT)
    scores = [c.score for c in response.result.classifications[0].classes]
    np.testing.assert_allclose(scores, expected_scores([3], 0.0)[0], rtol=1e-5)


def test_get_model_status_and_health(served):
    model_stub, channel = served.model_stub, served.channel
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    response = model_stub.GetModelStatus(request, TIMEOUT)
    (status,) = response.model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0

    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "tensorflow.serving.PredictionService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def _bad_input_name():
    request = examples_request()
    request.inputs["frames"].CopyFrom(request.inputs.pop("examples"))
    return request


def _bad_dtype():
    request = examples_request()
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto(np.zeros([2], np.float32)))
    return request


def _bad_shape():
    request = examples_request()
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto([[b"a", b"b"]], dtype=tf.string))
    return request


def _too_large():
    request = examples_request()
    request.inputs["examples"].CopyFrom(
        tf.make_tensor_proto([b"x" * (2 * 1024 * 1024)], dtype=tf.string)
    )
    return request


def _bad_serialized_example():
    request = examples_request()
    request.inputs["examples"].CopyFrom(
        tf.make_tensor_proto([b"not a sequence example"], dtype=tf.string)
    )
    return request


PREDICT_ERRORS = [
    (
        "unknown model",
        lambda: examples_request(model="nope"),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    ),
    (
        "unknown version",
        lambda: examples_request(version=7),
        grpc.StatusCode.NOT_FOUND,
        f"Servable not found for request: Specific({MODEL}, 7)",
    ),
    (
        "unknown signature",
        lambda: examples_request(signature="nope"),
        grpc.StatusCode.FAILED_PRECONDITION,
        'Serving signature key "nope" not found.',
    ),
    (
        "bad input name",
        _bad_input_name,
        grpc.StatusCode.INVALID_ARGUMENT,
        "Signature input alias: examples(feed name: digits_examples:0) not found in request",
    ),
    (
        "bad dtype",
        _bad_dtype,
        grpc.StatusCode.INVALID_ARGUMENT,
        "Expects arg[0] to be string but float is provided",
    ),
    ("bad shape", _bad_shape, grpc.StatusCode.INVALID_ARGUMENT, "to have shape [?] but [1,2]"),
    (
        "undecodable example",
        _bad_serialized_example,
        grpc.StatusCode.INVALID_ARGUMENT,
        "",
    ),
    (
        "too large",
        _too_large,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "Received message larger than max",
    ),
]


@pytest.mark.parametrize(
    "make_request,code,message", [e[1:] for e in PREDICT_ERRORS], ids=[e[0] for e in PREDICT_ERRORS]
)
def test_predict_errors_then_still_serving(served, make_request, code, message):
    stub = served.stub
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(make_request(), TIMEOUT)
    assert caught.value.code() == code, caught.value.details()
    assert message in caught.value.details()
    assert_still_serving(stub)


def test_other_rpc_errors_then_still_serving(served):
    stub, model_stub = served.stub, served.model_stub
    cases = []
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = "nope"
    cases.append(
        (model_stub.GetModelStatus, status, grpc.StatusCode.NOT_FOUND, "Could not find any")
    )
    status_version = get_model_status_pb2.GetModelStatusRequest()
    status_version.model_spec.name = MODEL
    status_version.model_spec.version.value = 9
    cases.append(
        (
            model_stub.GetModelStatus,
            status_version,
            grpc.StatusCode.NOT_FOUND,
            f"Could not find version 9 of model {MODEL}",
        )
    )
    metadata = get_model_metadata_pb2.GetModelMetadataRequest()
    metadata.model_spec.name = MODEL
    metadata.metadata_field.append("weights")
    cases.append(
        (stub.GetModelMetadata, metadata, grpc.StatusCode.INVALID_ARGUMENT, "is not supported")
    )
    label = examples_request()
    label.model_spec.version_label = "canary"
    cases.append((stub.Predict, label, grpc.StatusCode.INVALID_ARGUMENT, "version label: canary"))
    classify_predict_signature = classification_pb2.ClassificationRequest()
    classify_predict_signature.model_spec.name = MODEL
    classify_predict_signature.model_spec.signature_name = TASK
    classify_predict_signature.input.example_list.examples.append(tf_example(1))
    cases.append(
        (
            stub.Classify,
            classify_predict_signature,
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expected classification signature method_name to be tensorflow/serving/classify",
        )
    )
    empty_classify = classification_pb2.ClassificationRequest()
    empty_classify.model_spec.name = MODEL
    empty_classify.model_spec.signature_name = f"{TASK}_classify"
    cases.append((stub.Classify, empty_classify, grpc.StatusCode.INVALID_ARGUMENT, "empty"))
    for rpc, request, code, message in cases:
        with pytest.raises(grpc.RpcError) as caught:
            rpc(request, TIMEOUT)
        assert caught.value.code() == code, (request, caught.value.details())
        assert message in caught.value.details()
        assert_still_serving(stub)


def test_batching_merges_concurrent_requests(tmp_path, exported_models, start_server, channel_to):
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from serving.batching import BatchingOptions

    install_version(exported_models[1], str(tmp_path), MODEL, 1)
    batching = BatchingOptions(
        max_batch_size=8, batch_timeout_micros=500_000, num_batch_threads=1, max_enqueued_batches=4
    )
    server = start_server(str(tmp_path), MODEL, batching=batching)
    metrics_port = server.serve_metrics_on_any_port()
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel_to(server.target))
    stub.Predict(examples_request((1,)), TIMEOUT)  # connect before the burst
    before = server.metrics.value("polyvit_serving_batch_size_count")

    barrier = threading.Barrier(8)
    answers, failures = {}, []

    def client(i):
        barrier.wait()
        try:
            response = stub.Predict(examples_request((i,)), TIMEOUT)
            answers[i] = tf.make_ndarray(response.outputs["scores"])
        except grpc.RpcError as e:
            failures.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not failures
    # Each request got its own rows back out of the merged batch.
    for i, scores in answers.items():
        np.testing.assert_allclose(scores, expected_scores([i], 0.0), rtol=1e-5)

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("polyvit_serving_batch_size")
    }
    model_calls = samples["polyvit_serving_batch_size_count"] - before
    assert samples["polyvit_serving_batch_size_sum"] >= 9  # 1 warm-up row + 8 burst rows
    assert 1 <= model_calls < 8, f"8 concurrent requests took {model_calls} model calls"
    assert "polyvit_serving_requests_total" in text


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
        np.arange(6, dtype=np.int64).reshape(2, 3).T,  # not contiguous
        np.array([[b"a", b"bc"], [b"", b"\xff"]], dtype=object),
        np.array([True, False]),
        np.zeros((0, 3), np.float32),
        np.array(2.5, np.float64),
        np.arange(4, dtype=">i4"),  # big-endian
    ],
    ids=["float32", "int64-transposed", "bytes", "bool", "empty", "scalar", "big-endian"],
)
def test_response_tensors_read_back_as_tf_writes_them(array):
    from tensorflow.core.framework import tensor_pb2

    from serving.tensors import fill_tensor_proto

    proto = tensor_pb2.TensorProto()
    fill_tensor_proto(proto, array)
    reference = tf.make_tensor_proto(array)
    assert proto.dtype == reference.dtype
    assert proto.tensor_shape == reference.tensor_shape
    np.testing.assert_array_equal(tf.make_ndarray(proto), tf.make_ndarray(reference))
