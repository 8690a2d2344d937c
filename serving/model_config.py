"""TF Serving's configuration files, read the way `tensorflow_model_server` reads them.

- `--model_config_file`: a text-format `ModelServerConfig` (several models, each with its
  versions folder, version policy and version labels); parsed with TF Serving's own proto.
- `--batching_parameters_file`: a text-format `BatchingParameters`.
- `--monitoring_config_file`: a text-format `MonitoringConfig` (the Prometheus path).

The pip package `tensorflow-serving-api` ships no Python classes for the last two, so their
messages are declared here from the fields of TF Serving's .proto files; text_format then
refuses unknown fields and wrong types exactly as it would with generated classes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2, descriptor_pool, text_format, wrappers_pb2
from google.protobuf.message_factory import GetMessageClass
from tensorflow_serving.config import model_server_config_pb2

from serving import layout
from serving.batching import BatchingOptions

LATEST, ALL, SPECIFIC = "latest", "all", "specific"


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions found on disk are served (TF Serving's ServableVersionPolicy)."""

    kind: str = LATEST
    num_versions: int = 1
    versions: frozenset[int] = frozenset()

    def __post_init__(self):
        if self.kind not in (LATEST, ALL, SPECIFIC):
            raise ValueError(f"version policy {self.kind!r}: expected latest, all or specific")
        if self.kind == LATEST and self.num_versions < 1:
            raise ValueError(
                f"latest version policy: num_versions must be at least 1, got "
                f"{self.num_versions}"
            )
        if self.kind == SPECIFIC and not self.versions:
            raise ValueError("specific version policy: no versions listed")

    def aspired(self, on_disk: list[int]) -> list[int]:
        """The versions on disk this policy wants served, ascending."""
        if self.kind == LATEST:
            return on_disk[-self.num_versions :]
        if self.kind == ALL:
            return list(on_disk)
        return [v for v in on_disk if v in self.versions]

    def keep(self, available: Iterable[int], on_disk: list[int]) -> list[int]:
        """Loaded versions to keep: the aspired ones; under `latest`, the newest N loaded."""
        present = sorted(v for v in available if v in on_disk)
        if self.kind == LATEST:
            return present[-self.num_versions :]
        return [v for v in present if v in self.aspired(on_disk)]


@dataclass(frozen=True)
class ModelConfig:
    """One served model: `base_path` is its versions folder (<base_path>/<version>/)."""

    name: str
    base_path: str
    policy: VersionPolicy = VersionPolicy()
    labels: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if not self.name:
            raise ValueError("a model needs a name")
        if not self.base_path:
            raise ValueError(f"model {self.name!r}: no base_path")


def _policy_from_proto(name: str, proto) -> VersionPolicy:
    choice = proto.WhichOneof("policy_choice")
    if choice is None or choice == LATEST:
        # TF Serving: an unset policy and `latest {}` both mean the newest single version.
        return VersionPolicy(LATEST, proto.latest.num_versions or 1)
    if choice == ALL:
        return VersionPolicy(ALL)
    try:
        return VersionPolicy(SPECIFIC, versions=frozenset(proto.specific.versions))
    except ValueError as e:
        raise ValueError(f"model {name!r}: {e}") from None


def parse_model_config(text: str, source: str = "model config") -> list[ModelConfig]:
    """The models of a text-format ModelServerConfig; ValueError says what is wrong."""
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ValueError(f"{source}: {e}") from None
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{source}: no model_config_list (custom_model_config is not supported)")
    models, names = [], set()
    for entry in config.model_config_list.config:
        if entry.name in names:
            raise ValueError(f"{source}: model {entry.name!r} is listed twice")
        names.add(entry.name)
        platform = entry.model_platform or "tensorflow"
        if platform != "tensorflow":
            raise ValueError(f"{source}: model {entry.name!r}: platform {platform!r} is not served")
        policy = _policy_from_proto(entry.name, entry.model_version_policy)
        labels = dict(entry.version_labels)
        if policy.kind == SPECIFIC:
            unknown = sorted(set(labels.values()) - policy.versions)
            if unknown:
                raise ValueError(
                    f"{source}: model {entry.name!r}: labels name versions {unknown} that the "
                    f"policy does not serve ({sorted(policy.versions)})"
                )
        models.append(ModelConfig(entry.name, entry.base_path, policy, labels))
    if not models:
        raise ValueError(f"{source}: lists no models")
    return models


def read_model_config_file(path: str) -> list[ModelConfig]:
    with open(path) as f:
        return parse_model_config(f.read(), path)


# --------------------------------------------------------------------------------------------
# BatchingParameters and MonitoringConfig: declared from TF Serving's .proto fields.

_INT64, _BOOL, _STRING, _MESSAGE = (
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
)
_OPTIONAL = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED

# (name, number, type, wrapper message or None, repeated)
_BATCHING_FIELDS = (
    ("max_batch_size", 1, _MESSAGE, ".google.protobuf.Int64Value", False),
    ("batch_timeout_micros", 2, _MESSAGE, ".google.protobuf.Int64Value", False),
    ("max_enqueued_batches", 3, _MESSAGE, ".google.protobuf.Int64Value", False),
    ("num_batch_threads", 4, _MESSAGE, ".google.protobuf.Int64Value", False),
    ("thread_pool_name", 5, _MESSAGE, ".google.protobuf.StringValue", False),
    ("allowed_batch_sizes", 6, _INT64, None, True),
    ("pad_variable_length_inputs", 7, _BOOL, None, False),
    ("enable_large_batch_splitting", 8, _MESSAGE, ".google.protobuf.BoolValue", False),
    ("max_execution_batch_size", 9, _MESSAGE, ".google.protobuf.Int64Value", False),
)


def _message_classes() -> dict[str, type]:
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    file = descriptor_pb2.FileDescriptorProto(
        name="polyvit/tf_serving_config_files.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=[wrappers.name],
    )
    batching = file.message_type.add(name="BatchingParameters")
    for name, number, kind, type_name, repeated in _BATCHING_FIELDS:
        entry = batching.field.add(
            name=name, number=number, type=kind, label=_REPEATED if repeated else _OPTIONAL
        )
        if type_name:
            entry.type_name = type_name
    prometheus = file.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=_BOOL, label=_OPTIONAL)
    prometheus.field.add(name="path", number=2, type=_STRING, label=_OPTIONAL)
    monitoring = file.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config",
        number=1,
        type=_MESSAGE,
        label=_OPTIONAL,
        type_name=".tensorflow.serving.PrometheusConfig",
    )
    pool.Add(file)
    return {
        name: GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
        for name in ("BatchingParameters", "MonitoringConfig")
    }


_CLASSES = _message_classes()
BatchingParameters = _CLASSES["BatchingParameters"]
MonitoringConfig = _CLASSES["MonitoringConfig"]
# TF Serving's defaults for fields the file leaves out (batching_session.h / server.cc).
TF_SERVING_BATCHING_DEFAULTS = {
    "max_batch_size": 1000,
    "batch_timeout_micros": 0,
    "max_enqueued_batches": 100,
    "num_batch_threads": 4,
}
# Fields the local batcher has no counterpart for; a file that sets them is refused.
_UNSUPPORTED_BATCHING = ("allowed_batch_sizes", "max_execution_batch_size")


def _parse(text: str, message, source: str):
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise ValueError(f"{source}: {e}") from None


def parse_batching_parameters(text: str, source: str = "batching parameters") -> BatchingOptions:
    """BatchingOptions from a text BatchingParameters; missing fields take TF Serving's defaults."""
    proto = _parse(text, BatchingParameters(), source)
    for name in _UNSUPPORTED_BATCHING:
        present = (
            len(getattr(proto, name)) if name == "allowed_batch_sizes" else proto.HasField(name)
        )
        if present:
            raise ValueError(f"{source}: {name} is not supported by the local server")
    values = {
        name: getattr(proto, name).value if proto.HasField(name) else default
        for name, default in TF_SERVING_BATCHING_DEFAULTS.items()
    }
    try:
        return BatchingOptions(**values)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def read_batching_parameters(path: str) -> BatchingOptions:
    with open(path) as f:
        return parse_batching_parameters(f.read(), path)


def parse_monitoring_config(text: str, source: str = "monitoring config") -> str | None:
    """The Prometheus path a text MonitoringConfig enables, or None when it is off."""
    proto = _parse(text, MonitoringConfig(), source)
    prometheus = proto.prometheus_config
    if not prometheus.enable:
        return None
    path = prometheus.path or "/monitoring/prometheus/metrics"  # TF Serving's default
    if not path.startswith("/"):
        raise ValueError(f"{source}: prometheus path {path!r} must start with '/'")
    return path


def read_monitoring_config(path: str) -> str | None:
    with open(path) as f:
        return parse_monitoring_config(f.read(), path)


# --------------------------------------------------------------------------------------------
# One model from flags, as `--model_name` / `--model_base_path` give it.


def single_model(
    name: str, versions_path: str, num_versions: int = 1, *, legacy_parent_ok: bool = True
) -> tuple[ModelConfig, bool]:
    """The model `--model_name N --model_base_path P` serves, and whether P was read in the
    old `polyvit serve` meaning (the folder holding N/<version>/).

    TF Serving's meaning wins: P is the versions folder. Only when P holds no version folder
    but P/N does is P taken as the parent, so command lines written for earlier releases
    keep working (the caller warns).
    """
    legacy = (
        legacy_parent_ok
        and not layout.list_versions(versions_path)
        and bool(layout.list_versions(layout.model_dir(versions_path, name)))
    )
    path = layout.model_dir(versions_path, name) if legacy else versions_path
    return ModelConfig(name, os.path.normpath(path), VersionPolicy(LATEST, num_versions)), legacy
