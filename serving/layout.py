"""TF Serving's model layout on disk and its warm-up file.

    <base>/<model_name>/<integer version>/saved_model.pb
                                         /variables/...
                                         /assets.extra/tf_serving_warmup_requests

TF Serving (and the local server) serve the integer-named version folders under the model
folder; anything else there (a temporary copy, a `.tmp` folder) is ignored. The warm-up file is
a TFRecord of `PredictionLog`s that the server replays before a new version takes traffic, so
the first real request does not pay for graph tracing and kernel setup.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
SAVED_MODEL_PB = "saved_model.pb"
# The serialized-example signatures take one string tensor under this alias (export contract).
EXAMPLES_INPUT = "examples"


def model_dir(base_path: str, model_name: str) -> str:
    return os.path.join(base_path, model_name)


def version_dir(base_path: str, model_name: str, version: int) -> str:
    if version < 0:
        raise ValueError(f"version {version}: TF Serving versions are non-negative integers")
    return os.path.join(model_dir(base_path, model_name), str(version))


def parse_version(folder_name: str) -> int | None:
    """The version a folder name stands for, or None when TF Serving would ignore the folder."""
    if not folder_name.isdigit():
        return None
    return int(folder_name)


def list_versions(model_path: str) -> list[int]:
    """Integer versions present under a model folder, ascending; [] when the folder is missing."""
    try:
        names = os.listdir(model_path)
    except FileNotFoundError:
        return []
    versions = []
    for name in names:
        version = parse_version(name)
        if version is not None and os.path.isdir(os.path.join(model_path, name)):
            versions.append(version)
    return sorted(versions)


def next_version(model_path: str) -> int:
    """One more than the newest version present (1 for an empty model folder)."""
    versions = list_versions(model_path)
    return versions[-1] + 1 if versions else 1


def warmup_path(version_path: str) -> str:
    return os.path.join(version_path, WARMUP_DIR, WARMUP_FILE)


def predict_request(
    model_name: str,
    signature_name: str,
    serialized_examples: Sequence[bytes],
    input_name: str = EXAMPLES_INPUT,
):
    """A PredictRequest feeding serialized examples to a signature's string input."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    if not serialized_examples:
        raise ValueError(f"signature {signature_name!r}: no examples to build a request from")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs[input_name].CopyFrom(
        tf.make_tensor_proto(list(serialized_examples), dtype=tf.string)
    )
    return request


def write_warmup_requests(
    version_path: str,
    requests_by_signature: Mapping[str, Any],  # serialized examples or a PredictRequest
    model_name: str | None = None,
) -> str:
    """Writes `assets.extra/tf_serving_warmup_requests` into a version folder; returns its path.

    `requests_by_signature` maps a signature name to either serialized examples for its
    `examples` input (one request per signature, all the examples in one batch) or a ready
    `PredictRequest` (for the raw-tensor signatures). The model name defaults to the name of
    the folder above the version folder, as TF Serving lays it out.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    if not requests_by_signature:
        raise ValueError(f"{version_path}: no warm-up requests given")
    if not os.path.isdir(version_path):
        raise FileNotFoundError(f"{version_path}: not a model version folder")
    name = model_name or os.path.basename(os.path.dirname(os.path.abspath(version_path)))
    path = warmup_path(version_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature_name, value in sorted(requests_by_signature.items()):
            if isinstance(value, predict_pb2.PredictRequest):
                request = predict_pb2.PredictRequest()
                request.CopyFrom(value)
                request.model_spec.signature_name = signature_name
                request.model_spec.name = request.model_spec.name or name
            else:
                request = predict_request(name, signature_name, list(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(version_path: str) -> list:
    """The PredictionLogs of a version's warm-up file ([] when it has none)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = warmup_path(version_path)
    if not os.path.exists(path):
        return []
    logs = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs
