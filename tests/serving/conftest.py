"""Fixtures for the serving tests: tiny SavedModels with the export contract's signatures.

The model is small on purpose, but its signatures have the contract's names, inputs and
outputs: `digits` (serialized SequenceExamples), `digits_raw` (uint8 images),
`digits_classify` (serialized tf.Examples, Classify), `serving_default` = `digits`. Scores
depend on the input and on a per-version `bias`, so a test can tell which version answered.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
from serving_models import export_model, install_version

SERVED_MODEL = "m"


@pytest.fixture(scope="session")
def exported_models(tmp_path_factory):
    """Two exported versions (bias 0 and bias 5) to copy into model folders."""
    root = tmp_path_factory.mktemp("exports")
    return {
        1: export_model(str(root / "v1"), bias=0.0),
        2: export_model(str(root / "v2"), bias=5.0),
    }


@pytest.fixture
def start_server():
    """Starts ModelServers on a free loopback port; stops them after the test.

    `start(base, model)` serves <base>/<model>/<version>/ (the folder that holds the model's
    versions folder); `models=` gives ModelConfigs instead."""
    import os

    from serving.model_config import ModelConfig
    from serving.server import ModelServer, ServerOptions

    started = []

    def start(base: str, model: str = "m", **overrides):
        models = overrides.pop("models", None) or (ModelConfig(model, os.path.join(base, model)),)
        options = ServerOptions(
            models=models,
            port=overrides.pop("port", 0),
            host="127.0.0.1",
            poll_seconds=overrides.pop("poll_seconds", 0.2),
            **overrides,
        )
        server = ModelServer(options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(grace=1)


@pytest.fixture
def channel_to():
    import grpc

    channels = []

    def open_channel(target: str):
        channel = grpc.insecure_channel(
            target, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        channels.append(channel)
        return channel

    yield open_channel
    for channel in channels:
        channel.close()


class Served(NamedTuple):
    server: object  # serving.server.ModelServer
    stub: object  # PredictionServiceStub
    model_stub: object  # ModelServiceStub
    channel: object


@pytest.fixture
def served(tmp_path, exported_models, start_server, channel_to) -> Served:
    """Version 1 of model `m` behind gRPC and REST, with small limits the hostile-request tests
    reach: 1 MB messages, 64 frames, Prometheus metrics on the REST port."""
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    install_version(exported_models[1], str(tmp_path), SERVED_MODEL, 1)
    server = start_server(
        str(tmp_path),
        SERVED_MODEL,
        rest_api_port=0,
        max_message_mb=1,
        max_frames=64,
        prometheus_path="/monitoring/prometheus/metrics",
    )
    channel = channel_to(server.target)
    return Served(
        server,
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
        channel,
    )
