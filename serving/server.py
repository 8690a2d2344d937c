"""`polyvit serve`: a local model server that speaks TF Serving's gRPC API.

No TF Serving binary installs on these machines, so local runs and tests serve with this one;
production runs the `tensorflow/serving` image (k8s/serving/). Both answer the same stubs from
`tensorflow_serving.apis`: PredictionService (Predict, Classify, GetModelMetadata),
ModelService.GetModelStatus and the standard gRPC health service.
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from core.config import Serving
from serving import layout, model_config
from serving.batching import BatchingOptions
from serving.handlers import Handlers, replay_warmup
from serving.metrics import ServerMetrics
from serving.model_config import ModelConfig, VersionPolicy
from serving.model_manager import LoadedVersion, ModelManager
from serving.rest import RestApi, RestServer
from serving.servicers import ModelServicer, PredictionServicer

log = logging.getLogger("polyvit.serving")

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"


@dataclass
class ServerOptions:
    """How to run the server. Defaults are the config's (core.config.Serving), so the
    library, the CLI and the config cannot drift apart.

    `models`: what to serve, each with its versions folder (TF Serving's `base_path`),
    version policy and labels; `ServerOptions.from_config` builds them from the config or
    from TF Serving's flags.
    """

    models: tuple[ModelConfig, ...]
    port: int = Serving.port
    host: str = Serving.host
    rest_api_port: int | None = None  # None: no REST API; 0: any free port
    rest_api_timeout_seconds: float | None = 30.0
    prometheus_path: str | None = None  # on the REST port (--monitoring_config_file)
    metrics_port: int = Serving.metrics_port
    poll_seconds: float = Serving.poll_seconds
    max_message_mb: int = Serving.max_message_mb
    max_frames: int = Serving.max_frames
    grpc_workers: int = Serving.grpc_workers
    grpc_options: tuple[tuple[str, int | str], ...] = ()
    batching: BatchingOptions | None = None
    shutdown_grace_seconds: float = Serving.shutdown_grace_seconds

    def __post_init__(self):
        self.models = tuple(self.models)
        if not self.models:
            raise ValueError("no models to serve")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"models named twice: {sorted(names)}")

    @property
    def model_name(self) -> str:
        """The first model's name (the one `polyvit serve` prints)."""
        return self.models[0].name

    @classmethod
    def from_config(
        cls,
        serving,
        *,
        model_name: str | None = None,
        model_base_path: str | None = None,
        model_config_file: str | None = None,
        enable_batching: bool | None = None,
        batching_parameters_file: str | None = None,
        monitoring_config_file: str | None = None,
        **overrides,
    ) -> ServerOptions:
        """Options from the config's `serving` section; keyword overrides win (CLI flags).

        Models: `model_config_file` (TF Serving's ModelServerConfig), else one model named
        `model_name` (default serving.model_name) in the versions folder `model_base_path`
        (default <serving.push_dir>/<model name>).
        """
        batch_flags = {
            key: overrides.pop(key, None)
            for key in ("max_batch_size", "batch_timeout_micros", "num_batch_threads")
        }
        batching = None
        if serving.enable_batching if enable_batching is None else enable_batching:
            if batching_parameters_file:
                batching = model_config.read_batching_parameters(batching_parameters_file)
                batching = dataclasses.replace(
                    batching, **{k: v for k, v in batch_flags.items() if v is not None}
                )
            else:
                batching = BatchingOptions.from_config(serving, **batch_flags)
        models = resolve_models(
            serving, model_name, model_base_path, model_config_file, serving.num_versions
        )
        prometheus_path = (
            model_config.read_monitoring_config(monitoring_config_file)
            if monitoring_config_file
            else None
        )
        values = {
            name: getattr(serving, name)
            for name in cls.__dataclass_fields__
            if hasattr(Serving, name) and name != "models"
        }
        values.update(overrides)
        return cls(models=models, batching=batching, prometheus_path=prometheus_path, **values)


def resolve_models(
    serving,
    model_name: str | None,
    model_base_path: str | None,
    model_config_file: str | None,
    num_versions: int,
) -> tuple[ModelConfig, ...]:
    if model_config_file:
        if model_base_path:
            # TF Serving's own rule: the two ways of naming models exclude each other.
            raise ValueError("--model_config_file and --model_base_path cannot both be given")
        return tuple(model_config.read_model_config_file(model_config_file))
    name = model_name or serving.model_name
    if model_base_path is None:
        path = layout.model_dir(serving.push_dir, name)
        return (ModelConfig(name, path, VersionPolicy(num_versions=num_versions)),)
    model, legacy = model_config.single_model(name, model_base_path, num_versions)
    if legacy:
        log.warning(
            "%s holds no version folders but %s/ does: serving that (the old meaning of "
            "--model-base-path); TF Serving's --model_base_path is the versions folder itself",
            model_base_path,
            name,
        )
    return (model,)


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def warm_up(loaded: LoadedVersion) -> None:
    """Replays the version's assets.extra warm-up requests before it takes traffic."""
    count = replay_warmup(loaded, layout.read_warmup_requests(loaded.servable.path))
    if count:
        log.info("version %d answered %d warm-up requests", loaded.version, count)


def grpc_message_options(max_message_mb: int, extra=()) -> list[tuple[str, int | str]]:
    """The message limits, then any `--grpc_channel_arguments` (which win, as in TF Serving)."""
    limit = max_message_mb * 1024 * 1024
    options: dict[str, int | str] = {
        "grpc.max_receive_message_length": limit,
        "grpc.max_send_message_length": limit,
    }
    options.update(dict(extra))
    return list(options.items())


class ModelServer:
    """The gRPC server, the REST API, the model managers and the metrics endpoint, started
    and stopped together."""

    def __init__(self, options: ServerOptions):
        self.options = options
        max_batch = options.batching.max_batch_size if options.batching else 32
        self.metrics = ServerMetrics(max_batch)
        self.health = health.HealthServicer()
        self._set_health(False)
        self.managers = {
            model.name: ModelManager(
                model,
                metrics=self.metrics,
                batching=options.batching,
                warm_up=warm_up,
                on_change=self._on_change,
            )
            for model in options.models
        }
        self.handlers = Handlers(self.managers, options.max_frames)
        self._grpc_options = grpc_message_options(options.max_message_mb, options.grpc_options)
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=options.grpc_workers, thread_name_prefix="rpc"),
            options=self._grpc_options,
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(self.handlers, self.metrics), self._grpc
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelServicer(self.handlers, self.metrics), self._grpc
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._grpc)
        self.port = 0
        self.rest_port = 0
        self.metrics_port = 0
        self._metrics_http = None
        self._rest: RestServer | None = None

    @property
    def manager(self) -> ModelManager:
        """The first model's manager (a server of one model)."""
        return self.managers[self.options.model_name]

    def _on_change(self, serving: bool) -> None:
        # SERVING while any model has a version loaded (a fleet health check per server).
        self._set_health(any(m.available_versions() for m in self.managers.values()))

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

    @property
    def rest_url(self) -> str:
        return f"http://{host_port(self.options.host, self.rest_port)}"

    def _max_receive_bytes(self) -> int:
        return int(dict(self._grpc_options)["grpc.max_receive_message_length"])

    def start(self) -> ModelServer:
        """Loads each model's versions, then listens; the watchers load later versions."""
        for manager in self.managers.values():
            manager.poll_once()
            if not manager.available_versions():
                log.warning(
                    "no servable version of %s under %s yet; serving NOT_FOUND until one loads",
                    manager.model_name,
                    manager.model_path,
                )
        address = host_port(self.options.host, self.options.port)
        self.port = self._grpc.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot listen on {address}")
        self._grpc.start()
        if self.options.rest_api_port is not None:
            api = RestApi(self.handlers, self.metrics, self.options.prometheus_path)
            self._rest = RestServer(
                api,
                self.metrics,
                self.options.host,
                self.options.rest_api_port,
                self._max_receive_bytes(),
                self.options.rest_api_timeout_seconds,
            ).start()
            self.rest_port = self._rest.port
        if self.options.metrics_port:
            self._serve_metrics(self.options.metrics_port)
        for manager in self.managers.values():
            manager.start(self.options.poll_seconds)
        log.info("serving %s on %s", ", ".join(self.managers), self.target)
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
        if self._rest is not None:
            self._rest.stop()
            self._rest = None
        self._grpc.stop(grace).wait()
        for manager in self.managers.values():
            manager.stop()
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http.server_close()
            self._metrics_http = None
