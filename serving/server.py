"""`polyvit serve`: a local model server that speaks TF Serving's gRPC API.

No TF Serving binary installs on these machines, so local runs and tests serve with this one;
production runs the `tensorflow/serving` image (k8s/serving/). Both answer the same stubs from
`tensorflow_serving.apis`: PredictionService (Predict, Classify, GetModelMetadata),
ModelService.GetModelStatus and the standard gRPC health service.
"""

from __future__ import annotations

import logging
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from core.config import Serving
from serving import layout
from serving.batching import BatchingOptions
from serving.handlers import Handlers, replay_warmup
from serving.metrics import ServerMetrics
from serving.model_manager import LoadedVersion, ModelManager
from serving.servicers import ModelServicer, PredictionServicer

log = logging.getLogger("polyvit.serving")

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"


@dataclass
class ServerOptions:
    """How to run the server. Defaults are the config's (core.config.Serving), so the
    library, the CLI and the config cannot drift apart."""

    model_base_path: str
    model_name: str = Serving.model_name
    port: int = Serving.port
    host: str = Serving.host
    metrics_port: int = Serving.metrics_port
    poll_seconds: float = Serving.poll_seconds
    num_versions: int = Serving.num_versions
    max_message_mb: int = Serving.max_message_mb
    grpc_workers: int = Serving.grpc_workers
    batching: BatchingOptions | None = None
    shutdown_grace_seconds: float = Serving.shutdown_grace_seconds

    @classmethod
    def from_config(cls, serving, **overrides) -> ServerOptions:
        """Options from the config's `serving` section; keyword overrides win (CLI flags)."""
        batch_flags = {
            key: overrides.pop(key, None)
            for key in ("max_batch_size", "batch_timeout_micros", "num_batch_threads")
        }
        batching = None
        if overrides.pop("enable_batching", serving.enable_batching):
            batching = BatchingOptions.from_config(serving, **batch_flags)
        values = {
            name: getattr(serving, name)
            for name in cls.__dataclass_fields__
            if name not in ("model_base_path", "batching")
        }
        values["model_base_path"] = serving.push_dir
        values.update(overrides)
        return cls(batching=batching, **values)


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def warm_up(loaded: LoadedVersion) -> None:
    """Replays the version's assets.extra warm-up requests before it takes traffic."""
    count = replay_warmup(loaded, layout.read_warmup_requests(loaded.servable.path))
    if count:
        log.info("version %d answered %d warm-up requests", loaded.version, count)


def grpc_message_options(max_message_mb: int) -> list[tuple[str, int]]:
    limit = max_message_mb * 1024 * 1024
    return [("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)]


class ModelServer:
    """The gRPC server, its model manager and its metrics endpoint, started and stopped together."""

    def __init__(self, options: ServerOptions):
        self.options = options
        max_batch = options.batching.max_batch_size if options.batching else 32
        self.metrics = ServerMetrics(max_batch)
        self.health = health.HealthServicer()
        self._set_health(False)
        self.manager = ModelManager(
            options.model_base_path,
            options.model_name,
            metrics=self.metrics,
            num_versions=options.num_versions,
            batching=options.batching,
            warm_up=warm_up,
            on_change=self._set_health,
        )
        self.handlers = Handlers({options.model_name: self.manager})
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=options.grpc_workers, thread_name_prefix="rpc"),
            options=grpc_message_options(options.max_message_mb),
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(self.handlers, self.metrics), self._grpc
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelServicer(self.handlers, self.metrics), self._grpc
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        self.port = 0
        self.metrics_port = 0
        self._metrics_http = None

    def _set_health(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", PREDICTION_SERVICE, MODEL_SERVICE):
            self.health.set(service, status)

    @property
    def target(self) -> str:
        return host_port(self.options.host, self.port)

    def start(self) -> ModelServer:
        """Loads the newest version, then listens; the watcher loads later versions."""
        self.manager.poll_once()
        if not self.manager.available_versions():
            log.warning(
                "no servable version of %s under %s yet; serving NOT_FOUND until one loads",
                self.options.model_name,
                self.manager.model_path,
            )
        address = host_port(self.options.host, self.options.port)
        self.port = self._grpc.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot listen on {address}")
        self._grpc.start()
        if self.options.metrics_port:
            self._serve_metrics(self.options.metrics_port)
        self.manager.start(self.options.poll_seconds)
        log.info("serving %s on %s", self.options.model_name, self.target)
        return self

    def _serve_metrics(self, port: int) -> int:
        server, _ = self.metrics.serve_http(port, self.options.host)
        self._metrics_http = server
        self.metrics_port = server.server_port
        return self.metrics_port

    def serve_metrics_on_any_port(self) -> int:
        """Starts /metrics on a free port (tests and benchmarks); returns the port."""
        return self._serve_metrics(0)

    def stop(self, grace: float | None = None) -> None:
        """Refuses new RPCs, lets in-flight ones finish within `grace`, then unloads models."""
        self._set_health(False)
        grace = self.options.shutdown_grace_seconds if grace is None else grace
        self._grpc.stop(grace).wait()
        self.manager.stop()
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http.server_close()
            self._metrics_http = None
