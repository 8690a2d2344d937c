"""TF Serving's flags and config files: model config (several models, policies, labels),
batching parameters, monitoring config, and `polyvit serve`'s flags mapped onto ServerOptions."""

from __future__ import annotations

import argparse
import os

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_models import install_version, sequence_example
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc, predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc as prediction_grpc

from core.config import Serving
from serving import cli, model_config
from serving.model_config import ALL, LATEST, SPECIFIC, VersionPolicy
from serving.server import ServerOptions

K8S_CONFIG = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "k8s", "serving", "base", "config"
)
TWO_MODELS = """
model_config_list {
  config { name: "a" base_path: "%(base)s/a" model_platform: "tensorflow" }
  config {
    name: "b"
    base_path: "%(base)s/b"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
"""


def test_version_policies():
    on_disk = [1, 2, 5]
    assert VersionPolicy(LATEST, 2).aspired(on_disk) == [2, 5]
    assert VersionPolicy(ALL).aspired(on_disk) == [1, 2, 5]
    assert VersionPolicy(SPECIFIC, versions=frozenset({2, 7})).aspired(on_disk) == [2]
    assert VersionPolicy(SPECIFIC, versions=frozenset({1, 5})).keep([1, 2, 5], on_disk) == [1, 5]
    with pytest.raises(ValueError, match="no versions listed"):
        VersionPolicy(SPECIFIC)
    with pytest.raises(ValueError, match="num_versions must be at least 1"):
        VersionPolicy(LATEST, 0)


def test_model_config_file_of_k8s_and_refusals():
    (model,) = model_config.read_model_config_file(os.path.join(K8S_CONFIG, "models.config"))
    assert model.name == Serving().model_name and model.base_path == "/models/polyvit"
    assert model.policy.kind == SPECIFIC and model.labels == {"stable": 1, "canary": 1}

    a, b = model_config.parse_model_config(TWO_MODELS % {"base": "/m"})
    assert (a.name, a.base_path, a.policy) == ("a", "/m/a", VersionPolicy(LATEST, 1))
    assert b.policy.versions == {1, 2} and b.labels == {"stable": 1, "canary": 2}

    refusals = {
        "model_config_list { config { name: 'a' base_path: 'x' } config { name: 'a' "
        "base_path: 'y' } }": "listed twice",
        "model_config_list { config { name: 'a' base_path: 'x' model_platform: 'onnx' } }": (
            "platform 'onnx'"
        ),
        "model_config_list { config { name: 'a' base_path: 'x' model_version_policy { "
        "specific { versions: 1 } } version_labels { key: 'c' value: 3 } } }": r"versions \[3\]",
        "model_config_list { config { nme: 'a' } }": "nme",
        "model_config_list { }": "lists no models",
    }
    for text, message in refusals.items():
        with pytest.raises(ValueError, match=message):
            model_config.parse_model_config(text)


def test_batching_and_monitoring_files():
    shipped = model_config.read_batching_parameters(os.path.join(K8S_CONFIG, "batching.config"))
    serving = Serving()
    assert (shipped.max_batch_size, shipped.batch_timeout_micros) == (
        serving.max_batch_size,
        serving.batch_timeout_micros,
    )
    partial = model_config.parse_batching_parameters("max_batch_size { value: 8 }")
    assert partial.max_batch_size == 8
    assert (
        partial.num_batch_threads == model_config.TF_SERVING_BATCHING_DEFAULTS["num_batch_threads"]
    )
    with pytest.raises(ValueError, match="allowed_batch_sizes is not supported"):
        model_config.parse_batching_parameters("allowed_batch_sizes: 4")
    with pytest.raises(ValueError, match="max_batch_size"):
        model_config.parse_batching_parameters("max_batch_size { value: 0 }")
    with pytest.raises(ValueError, match="max_batch_sise"):
        model_config.parse_batching_parameters("max_batch_sise { value: 8 }")

    path = model_config.read_monitoring_config(os.path.join(K8S_CONFIG, "monitoring.config"))
    assert path == "/monitoring/prometheus/metrics"
    assert model_config.parse_monitoring_config("prometheus_config { enable: false }") is None


def parse_serve(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_serve_arguments(parser)
    return parser.parse_args(argv)


def test_tf_serving_command_line_maps_onto_options(tmp_path):
    versions = tmp_path / "models" / "polyvit"
    (versions / "3").mkdir(parents=True)
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 4 }\nbatch_timeout_micros { value: 100 }\n")
    args = parse_serve(
        [
            "--port=8500",
            "--rest_api_port=8501",
            "--model_name=polyvit",
            f"--model_base_path={versions}",
            "--enable_batching=true",
            f"--batching_parameters_file={batching}",
            f"--monitoring_config_file={os.path.join(K8S_CONFIG, 'monitoring.config')}",
            "--file_system_poll_wait_seconds=5",
            "--grpc_channel_arguments=grpc.max_receive_message_length=1024,grpc.x=y",
        ]
    )
    options = ServerOptions.from_config(Serving(), **cli.server_flags(args))
    (model,) = options.models
    assert (model.name, model.base_path) == ("polyvit", str(versions))
    assert (options.port, options.rest_api_port, options.poll_seconds) == (8500, 8501, 5.0)
    assert options.batching is not None and options.batching.max_batch_size == 4
    assert options.batching.batch_timeout_micros == 100
    assert options.prometheus_path == "/monitoring/prometheus/metrics"
    assert dict(options.grpc_options) == {"grpc.max_receive_message_length": 1024, "grpc.x": "y"}

    # Hyphenated aliases; without flags, the config's push_dir/<name> and no REST API.
    args = parse_serve(["--model-name", "m", "--no-enable-batching", "--rest_api_port", "0"])
    options = ServerOptions.from_config(Serving(push_dir="pushed"), **cli.server_flags(args))
    assert options.models[0].base_path == os.path.join("pushed", "m")
    assert options.batching is None and options.rest_api_port is None
    assert parse_serve(["--enable_batching"]).enable_batching is True
    assert parse_serve(["--enable_batching=false"]).enable_batching is False

    with pytest.raises(ValueError, match="cannot both be given"):
        config_file = tmp_path / "models.config"
        config_file.write_text(TWO_MODELS % {"base": tmp_path})
        args = parse_serve([f"--model_config_file={config_file}", f"--model_base_path={versions}"])
        ServerOptions.from_config(Serving(), **cli.server_flags(args))


def test_old_meaning_of_model_base_path_still_served(tmp_path, caplog):
    (tmp_path / "m" / "1").mkdir(parents=True)
    model, legacy = model_config.single_model("m", str(tmp_path))
    assert legacy and model.base_path == str(tmp_path / "m")
    model, legacy = model_config.single_model("m", str(tmp_path / "m"))
    assert not legacy and model.base_path == str(tmp_path / "m")


def _predict(stub, model: str, version=None, label=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["examples"].CopyFrom(
        tf.make_tensor_proto([sequence_example(1)], dtype=tf.string)
    )
    return stub.Predict(request, 20)


def test_two_models_with_policies_and_labels(tmp_path, exported_models, start_server, channel_to):
    base = str(tmp_path)
    install_version(exported_models[1], base, "a", 1)
    install_version(exported_models[2], base, "a", 2)
    install_version(exported_models[1], base, "b", 1)
    install_version(exported_models[2], base, "b", 2)
    install_version(exported_models[1], base, "b", 3)  # not in b's specific policy
    models = model_config.parse_model_config(TWO_MODELS % {"base": base})
    server = start_server(base, models=models, poll_seconds=0)
    channel = channel_to(server.target)
    stub = prediction_grpc.PredictionServiceStub(channel)
    assert server.managers["a"].available_versions() == [2]  # latest 1
    assert server.managers["b"].available_versions() == [1, 2]  # specific {1, 2}
    assert _predict(stub, "a").model_spec.version.value == 2
    assert _predict(stub, "b").model_spec.version.value == 2
    assert _predict(stub, "b", label="stable").model_spec.version.value == 1
    canary = _predict(stub, "b", label="canary")
    assert canary.model_spec.version.value == 2
    scores_v2 = tf.make_ndarray(canary.outputs["scores"])
    scores_v1 = tf.make_ndarray(_predict(stub, "b", version=1).outputs["scores"])
    assert not np.allclose(scores_v1, scores_v2)  # bias 0 vs bias 5: the versions differ
    for spec, code in (
        ({"model": "b", "version": 3}, grpc.StatusCode.NOT_FOUND),
        ({"model": "b", "label": "nope"}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"model": "a", "label": "stable"}, grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            _predict(stub, **spec)
        assert caught.value.code() == code, caught.value.details()

    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = "b"
    status.model_spec.version_label = "stable"
    answer = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status, 20)
    assert [s.version for s in answer.model_version_status] == [1]
