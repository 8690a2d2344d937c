"""TF Serving's REST API on the local server (the `--rest_api_port`), over the same handlers.

    GET  /v1/models/<name>[/versions/<n>|/labels/<label>]            model status
    GET  /v1/models/<name>[/versions/<n>|/labels/<label>]/metadata   signature defs
    POST /v1/models/<name>[/versions/<n>|/labels/<label>]:predict    instances / inputs
    POST /v1/models/<name>[/versions/<n>|/labels/<label>]:classify   examples (+ context)
    GET  <the monitoring config's prometheus path>                   Prometheus text

JSON formats as in TF Serving's json_tensor.cc: row (`instances` -> `predictions`) and
columnar (`inputs` -> `outputs`) predict requests, `{"b64": ...}` for bytes both ways (an
output is base64-encoded when its alias ends in `_bytes`); errors are `{"error": "..."}` with
the HTTP status TF Serving maps the gRPC code to (http_server.cc).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
)

from serving import errors, handlers
from serving.handlers import Handlers
from serving.metrics import ServerMetrics

log = logging.getLogger("polyvit.serving")

_VERSION = r"(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
PREDICT_PATH = re.compile(r"(?i)/v1/models/([^/:]+)" + _VERSION + r":(classify|regress|predict)")
STATUS_PATH = re.compile(r"(?i)/v1/models(?:/([^/:]+))?" + _VERSION + r"(?:/(metadata))?")

# TF Serving's gRPC code -> HTTP status (http_server.cc, ToHTTPStatusCode).
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
BYTES_SUFFIX = "_bytes"
# How long a refused, unread request body is drained before the connection closes.
LINGER_SECONDS = 2.0


def invalid(message: str) -> errors.ServingError:
    return errors.invalid_argument(message)


# --------------------------------------------------------------------------------------------
# JSON -> numpy


def _debug(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 100 else text[:97] + "..."


def _is_b64(value) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _decode_b64(value) -> bytes:
    if not isinstance(value["b64"], str):
        raise invalid(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(value["b64"], validate=True)
    except ValueError:
        raise invalid("Unable to base64 decode") from None


def _string_leaf(value) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if _is_b64(value):
        return _decode_b64(value)
    raise invalid(f"JSON Value: {_debug(value)} is not of expected type: string")


def _strings(value, shape: list[int], depth: int, out: list) -> None:
    if isinstance(value, list):
        if len(shape) <= depth:
            shape.append(len(value))
        elif shape[depth] != len(value):
            raise invalid(f"JSON Value: {_debug(value)} ragged list: expected {shape[depth]} items")
        for item in value:
            _strings(item, shape, depth + 1, out)
        return
    if depth != len(shape):
        raise invalid(f"JSON Value: {_debug(value)} ragged list: a value where a list was expected")
    out.append(_string_leaf(value))


def _check_numbers(value, dtype: np.dtype) -> None:
    """Walks nested lists only as deep as needed to name the first wrong-typed value."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif dtype.kind == "b":
            if not isinstance(item, bool):
                raise invalid(f"JSON Value: {_debug(item)} is not of expected type: bool")
        elif isinstance(item, bool) or not isinstance(item, int | float):
            name = "float" if dtype == np.float32 else dtype.name
            raise invalid(f"JSON Value: {_debug(item)} is not of expected type: {name}")
        elif dtype.kind in "iu" and isinstance(item, float):
            raise invalid(f"JSON Value: {_debug(item)} is not of expected type: {dtype.name}")


def json_to_array(value, dtype_enum: int) -> np.ndarray:
    """A JSON value (nested lists) as an array of the signature input's dtype."""
    dtype = tf.dtypes.as_dtype(dtype_enum)
    if dtype == tf.string:
        shape: list[int] = []
        flat: list[bytes] = []
        _strings(value, shape, 0, flat)
        return np.array(flat, dtype=object).reshape(shape)
    np_dtype = np.dtype(dtype.as_numpy_dtype)
    try:
        inferred = np.array(value)
    except ValueError:  # numpy refuses ragged nesting
        raise invalid(f"JSON Value: {_debug(value)} is a ragged list") from None
    if inferred.dtype.kind not in "biuf":
        _check_numbers(value, np_dtype)  # names the offending value
        raise invalid(f"JSON Value: {_debug(value)} is not of expected type: {dtype.name}")
    if np_dtype.kind == "b" and inferred.dtype.kind != "b" and inferred.size:
        _check_numbers(value, np_dtype)
    if np_dtype.kind in "iuf" and inferred.dtype.kind == "b":
        _check_numbers(value, np_dtype)
    if np_dtype.kind in "iu" and inferred.dtype.kind == "f":
        _check_numbers(value, np_dtype)
    return inferred.astype(np_dtype, copy=False)


def arrays_from_instances(instances, inputs) -> dict[str, np.ndarray]:
    """Row format: each instance is one row (a value, or an object keyed by input alias)."""
    if not isinstance(instances, list):
        raise invalid("Expecting 'instances' to be an list/array")
    if not instances:
        raise invalid("No values in 'instances' array")
    as_objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not as_objects and len(inputs) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    names = sorted(inputs)
    columns: dict[str, list] = {name: [] for name in names}
    for index, item in enumerate(instances):
        is_object = isinstance(item, dict) and not _is_b64(item)
        if is_object != as_objects:
            want = "object" if as_objects else "value/list"
            raise invalid(f"Expecting {want} but got another kind at item {index} of input list")
        if as_objects:
            if sorted(item) != names:
                raise invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{_debug(item)} keys must be equal to: {','.join(names)}"
                )
            for name in names:
                columns[name].append(item[name])
        else:
            columns[names[0]].append(item)
    return {name: json_to_array(columns[name], inputs[name].dtype) for name in names}


def arrays_from_inputs(value, inputs) -> dict[str, np.ndarray]:
    """Columnar format: one value for a single input, else an object keyed by input alias."""
    if not isinstance(value, dict) or _is_b64(value):
        if len(inputs) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        (name,) = inputs
        return {name: json_to_array(value, inputs[name].dtype)}
    arrays = {}
    for name in sorted(inputs):
        if name not in value:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = json_to_array(value[name], inputs[name].dtype)
    return arrays


# --------------------------------------------------------------------------------------------
# numpy -> JSON


def _jsonable(array: np.ndarray, as_bytes: bool):
    if array.dtype == object or array.dtype.kind == "S":
        if as_bytes:
            encode: Callable = lambda b: {"b64": base64.b64encode(b).decode()}  # noqa: E731
        else:
            encode = lambda b: b.decode("utf-8", "replace")  # noqa: E731
        return np.vectorize(encode, otypes=[object])(array).tolist() if array.size else []
    return array.tolist()


def predictions_json(outputs: dict[str, np.ndarray], columnar: bool) -> dict:
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    values = {k: _jsonable(v, k.endswith(BYTES_SUFFIX)) for k, v in sorted(outputs.items())}
    if columnar:
        return {"outputs": values if len(values) > 1 else next(iter(values.values()))}
    sizes = {k: (v.shape[0] if v.ndim else None) for k, v in outputs.items()}
    for name, size in sizes.items():
        if size is None:
            raise invalid(f"Tensor name: {name} has no shape information ")
    if len(set(sizes.values())) > 1:
        raise invalid(f"Tensors of inconsistent batch sizes: {sizes}")
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    rows = int(next(iter(outputs.values())).shape[0])
    return {"predictions": [{k: v[i] for k, v in values.items()} for i in range(rows)]}


# --------------------------------------------------------------------------------------------
# Classify: JSON examples -> tf.Example


def _add_feature_value(name: str, value, feature) -> None:
    kind = feature.WhichOneof("kind")

    def want(expected: str):
        if kind not in (None, expected):
            raise invalid(f"Unexpected element type in feature: {name} expecting type: {kind}")
        return getattr(feature, expected).value

    if isinstance(value, bool):
        want("int64_list").append(int(value))
    elif isinstance(value, int):
        want("int64_list").append(value)
    elif isinstance(value, float):
        want("float_list").append(value)
    elif isinstance(value, str):
        want("bytes_list").append(value.encode())
    elif _is_b64(value):
        want("bytes_list").append(_decode_b64(value))
    else:
        raise invalid(f"Feature: {name} has element with unexpected JSON type: {_debug(value)}")


def example_from_json(value) -> example_pb2.Example:
    if not isinstance(value, dict):
        raise invalid(f"Example must be JSON object but got JSON {type(value).__name__}")
    example = example_pb2.Example()
    for name, item in value.items():
        feature = example.features.feature[name]
        for element in item if isinstance(item, list) else [item]:
            _add_feature_value(name, element, feature)
    return example


def classification_request(body: dict) -> classification_pb2.ClassificationRequest:
    request = classification_pb2.ClassificationRequest()
    listed = body.get("examples")
    if not isinstance(listed, list):
        raise invalid("'examples' must be a list of JSON objects")
    examples = [example_from_json(e) for e in listed]
    if "context" in body:
        target = request.input.example_list_with_context
        target.context.CopyFrom(example_from_json(body["context"]))
    else:
        target = request.input.example_list
    target.examples.extend(examples)
    return request


def classify_json(response) -> dict:
    if not response.result.classifications:
        raise invalid("Cannot convert empty ClassificationResults to JSON")
    return {
        "results": [
            [[c.label, c.score] for c in classification.classes]
            for classification in response.result.classifications
        ]
    }


# --------------------------------------------------------------------------------------------
# Routing


def _parse_body(body: bytes) -> dict:
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid(f"JSON Parse error: {e}") from None
    if not isinstance(document, dict):
        raise invalid(f"JSON Value: {_debug(document)} Is not object")
    signature = document.get("signature_name", "")
    if not isinstance(signature, str):
        raise invalid(
            f"JSON Value: {_debug(signature)} not formatted correctly. 'signature_name' key "
            "must be a string value."
        )
    return document


class RestApi:
    """Answers one HTTP request: (status, JSON-able body or text, content type)."""

    def __init__(self, handlers_: Handlers, metrics: ServerMetrics, prometheus_path: str | None):
        self._handlers = handlers_
        self._metrics = metrics
        self._prometheus_path = prometheus_path

    def model_spec(self, spec, name: str, version: str | None, label: str | None):
        spec.name = unquote(name)
        if version and label:
            raise invalid(
                f"Both model version ({version}) and model version label ({label}) cannot "
                "be supplied."
            )
        if version:
            spec.version.value = int(version)
        if label:
            spec.version_label = unquote(label)

    def get(self, path: str) -> dict:
        match = STATUS_PATH.fullmatch(path)
        if not match:
            raise invalid(f"Malformed request: GET {path}")
        name, version, label, metadata = match.groups()
        if not name:
            raise invalid("Missing model name in request.")
        if metadata:
            request = get_model_metadata_pb2.GetModelMetadataRequest()
            request.metadata_field.append(handlers.SIGNATURE_DEF_FIELD)
            self.model_spec(request.model_spec, name, version, label)
            response = self._handlers.get_model_metadata(request)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            response.metadata[handlers.SIGNATURE_DEF_FIELD].Unpack(signature_map)
            printed = {"including_default_value_fields": True, "preserving_proto_field_name": True}
            return {
                "model_spec": json_format.MessageToDict(response.model_spec, **printed),
                "metadata": {"signature_def": json_format.MessageToDict(signature_map, **printed)},
            }
        request = get_model_status_pb2.GetModelStatusRequest()
        self.model_spec(request.model_spec, name, version, label)
        response = self._handlers.get_model_status(request)
        return json_format.MessageToDict(
            response, including_default_value_fields=True, preserving_proto_field_name=True
        )

    def post(self, path: str, body: bytes) -> dict:
        match = PREDICT_PATH.fullmatch(path)
        if not match:
            raise invalid(f"Malformed request: POST {path}")
        name, version, label, method = match.groups()
        method = method.lower()
        document = _parse_body(body)
        signature = document.get("signature_name", "")
        if method == "classify":
            request = classification_request(document)
            self.model_spec(request.model_spec, name, version, label)
            request.model_spec.signature_name = signature
            return classify_json(self._handlers.classify(request))
        if method != "predict":
            raise errors.ServingError(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not served")
        spec = get_model_metadata_pb2.GetModelMetadataRequest().model_spec
        self.model_spec(spec, name, version, label)
        loaded = self._handlers.resolve(spec)
        signature_name = signature or handlers.DEFAULT_SIGNATURE
        if signature_name not in loaded.servable.signature_defs:
            raise invalid(f'Serving signature name: "{signature_name}" not found in signature def')
        inputs = loaded.servable.signature_defs[signature_name].inputs
        has_instances, has_inputs = "instances" in document, "inputs" in document
        if has_instances and has_inputs:
            raise invalid(
                "Not formatted correctly expecting only one of 'inputs' or 'instances' keys "
                "to exist"
            )
        if has_instances:
            arrays = arrays_from_instances(document["instances"], inputs)
        elif has_inputs:
            arrays = arrays_from_inputs(document["inputs"], inputs)
        else:
            raise invalid("Missing 'inputs' or 'instances' key")
        _, outputs = handlers.predict_arrays(
            loaded, signature_name, arrays, max_frames=self._handlers.max_frames
        )
        return predictions_json(outputs, columnar=has_inputs)

    def prometheus(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self._metrics.registry)

    def is_prometheus(self, path: str) -> bool:
        return self._prometheus_path is not None and path == self._prometheus_path


def _http_handler(
    api: RestApi, metrics: ServerMetrics, max_body: int, timeout_seconds: float | None
) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = timeout_seconds  # a stalled client frees its thread after this
        # Answers go out at once: with Nagle's algorithm, a reply written after its headers
        # waits for the client's delayed ACK (40 ms on Linux) on a kept-alive connection.
        disable_nagle_algorithm = True

        def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's name)
            log.debug("rest: " + format, *args)

        def _reply(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _answer(self, method: str, run: Callable[[], dict], model: str) -> None:
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                body = run()
            except errors.ServingError as e:
                code, body = e.code, {"error": e.message}
            except Exception as e:  # a bug or a TF failure must not take the server down
                log.exception("REST %s failed", method)
                code, body = grpc.StatusCode.INTERNAL, {"error": f"{type(e).__name__}: {e}"}
            finally:
                metrics.latency.labels(f"rest:{method}").observe(time.perf_counter() - start)
            metrics.requests.labels(f"rest:{method}", model, code.name).inc()
            payload = json.dumps(body, indent=1).encode()
            self._reply(HTTP_STATUS.get(code, 500), payload, "application/json")

        def _linger(self) -> None:
            """Closing with the unread body still arriving resets the connection, and the
            client may lose the answer already sent; so end our side, then discard what the
            client still sends for a moment (a lingering close) without keeping it."""
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_WR)
                deadline = time.monotonic() + LINGER_SECONDS
                self.connection.settimeout(LINGER_SECONDS)
                while time.monotonic() < deadline and self.connection.recv(65536):
                    pass
            except OSError:  # the client is gone or slow: nothing more to do for it
                pass

        def _model(self) -> str:
            match = re.match(r"(?i)/v1/models/([^/:]+)", self.path)
            return unquote(match.group(1)) if match else ""

        def do_GET(self):  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if api.is_prometheus(path):
                self._reply(200, api.prometheus(), "text/plain; version=0.0.4")
                return
            self._answer("GET", lambda: api.get(path), self._model())

        def do_POST(self):  # noqa: N802
            path = self.path.split("?", 1)[0]
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                self._answer("POST", _raise(invalid("bad Content-Length")), self._model())
                return
            if length > max_body:
                # Refused unread, like gRPC's message limit; the connection is closed after.
                self.close_connection = True
                too_large = errors.ServingError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"Request body of {length} bytes is larger than the limit of {max_body} "
                    "bytes (serving.max_message_mb)",
                )
                self._answer("POST", _raise(too_large), self._model())
                self._linger()
                return
            body = self.rfile.read(length)
            if len(body) < length:  # the client went away mid-request: nobody to answer
                log.info("REST client disconnected after %d of %d bytes", len(body), length)
                self.close_connection = True
                return
            self._answer("POST", lambda: api.post(path, body), self._model())

    return Handler


def _raise(error: Exception) -> Callable[[], dict]:
    def run() -> dict:
        raise error

    return run


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that stalls or resets mid-request; the log, not stderr, hears about it.
        log.info("REST connection from %s ended with an error", client_address, exc_info=True)


class RestServer:
    """A ThreadingHTTPServer in a thread, serving the REST API until `stop`."""

    def __init__(
        self,
        api: RestApi,
        metrics: ServerMetrics,
        host: str,
        port: int,
        max_body: int,
        timeout_seconds: float | None = None,
    ):
        handler = _http_handler(api, metrics, max_body, timeout_seconds)
        self._server = _QuietHTTPServer((host, port), handler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="rest", daemon=True)

    def start(self) -> RestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
