"""gRPC inference client: a library (`PolyvitClient`) and `polyvit predict FILE...`.

A file is decoded with the same code as ingestion (`decode_file` and DMVR's SequenceExample
builder), so the server sees exactly what training saw; the model's task signatures are read
from GetModelMetadata, so the client needs nothing but the model name. Only the
`tensorflow_serving.apis` protocol is used: it works against TF Serving as well as the local
server.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import grpc
import numpy as np

from core.config import Ingestion

# The file's modality when no task says otherwise: by extension, as users name files.
_EXTENSIONS = {
    "image": (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"),
    "video": (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"),
    "audio": (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aiff", ".aif"),
}
# The raw signature's input name tells a task's modality (export contract).
_MODALITY_BY_RAW_INPUT = {"image": "image", "video": "video", "waveform": "audio"}
PREDICT_METHOD = "tensorflow/serving/predict"
EXAMPLES_INPUT = "examples"


def modality_of(path: str) -> str:
    extension = os.path.splitext(path)[1].lower()
    for modality, extensions in _EXTENSIONS.items():
        if extension in extensions:
            return modality
    raise ValueError(
        f"{path}: cannot tell the modality from the extension {extension or '(none)'!r}; "
        "name a task with --task"
    )


def task_modalities(signature_defs) -> dict[str, str | None]:
    """Task signatures of a model (the `T` ones) and each task's modality when known."""
    tasks = {}
    for name, signature in signature_defs.items():
        if name == "serving_default" or name.startswith("__"):
            continue
        if signature.method_name != PREDICT_METHOD or set(signature.inputs) != {EXAMPLES_INPUT}:
            continue
        raw = signature_defs.get(f"{name}_raw")
        raw_inputs = list(raw.inputs) if raw is not None else []
        tasks[name] = _MODALITY_BY_RAW_INPUT.get(raw_inputs[0]) if len(raw_inputs) == 1 else None
    return dict(sorted(tasks.items()))


def encode_file(path: str, modality: str, ingestion: Ingestion, task: str = "") -> list[bytes]:
    """The file's clips as serialized DMVR SequenceExamples, exactly as ingestion writes them."""
    from media.decode import decode_file
    from media.dmvr import ClipMetadata, build_sequence_example

    clips = decode_file(path, modality, ingestion)
    return [
        build_sequence_example(
            clip,
            ClipMetadata(
                task=task,
                filename=os.path.basename(path),
                start_us=round(clip.start_s * 1e6),
                end_us=round(clip.end_s * 1e6),
            ),
        ).SerializeToString()
        for clip in clips
    ]


def best_labels(scores: np.ndarray, classes: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The k best (label, score) pairs of one score row, best first; ties by label."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), classes[i]))
    return [(_text(classes[i]), float(scores[i])) for i in order[: max(k, 0)]]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Prediction:
    file: str
    task: str
    model_version: int
    clips: int
    top_k: list[tuple[str, float]] = field(default_factory=list)


class PolyvitClient:
    """Talks to one model on a TF Serving (or compatible) server over gRPC."""

    def __init__(
        self,
        target: str,
        model_name: str,
        timeout: float = 30.0,
        retries: int = 3,
        *,
        backoff: float = 0.5,
        max_message_mb: int = 256,
        ingestion: Ingestion | None = None,
    ):
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        limit = max_message_mb * 1024 * 1024
        self.model_name = model_name
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.ingestion = ingestion or Ingestion()
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_send_message_length", limit),
                ("grpc.max_receive_message_length", limit),
            ],
        )
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._signatures: dict | None = None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> PolyvitClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, rpc, request):
        """One RPC with a deadline; UNAVAILABLE (server starting, restarting) is retried."""
        for attempt in range(self.retries + 1):
            try:
                return rpc(request, timeout=self.timeout)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or attempt == self.retries:
                    raise
                time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def signature_defs(self) -> dict:
        """The model's SignatureDefs from GetModelMetadata (read once per client)."""
        if self._signatures is None:
            from tensorflow_serving.apis import get_model_metadata_pb2

            request = get_model_metadata_pb2.GetModelMetadataRequest()
            request.model_spec.name = self.model_name
            request.metadata_field.append("signature_def")
            response = self._call(self._stub.GetModelMetadata, request)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(signature_map)
            self._signatures = dict(signature_map.signature_def)
        return self._signatures

    def tasks(self) -> dict[str, str | None]:
        return task_modalities(self.signature_defs())

    def predict_examples(self, task: str, serialized: list[bytes]) -> dict:
        return self._predict_examples(task, serialized)

    def _predict_examples(self, task: str, serialized: list[bytes]) -> dict:
        """Runs a task signature on serialized SequenceExamples; numpy outputs plus version."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = task
        request.inputs[EXAMPLES_INPUT].CopyFrom(tf.make_tensor_proto(serialized, dtype=tf.string))
        response = self._call(self._stub.Predict, request)
        outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        outputs["model_version"] = response.model_spec.version.value
        return outputs

    def predict_inputs(self, signature: str, inputs: dict[str, list]) -> dict:
        """Runs any signature on named string inputs (e.g. VATT's rank_captions: examples and
        captions); numpy outputs plus the answering version."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = signature
        for name, values in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
        response = self._call(self._stub.Predict, request)
        outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        outputs["model_version"] = response.model_spec.version.value
        return outputs

    def _tasks_for(self, path: str, task: str | None) -> list[tuple[str, str]]:
        tasks = self.tasks()
        if task is not None:
            if task not in tasks:
                raise ValueError(
                    f"{path}: model {self.model_name!r} has no task {task!r}; "
                    f"it has {sorted(tasks)}"
                )
            return [(task, tasks[task] or modality_of(path))]
        modality = modality_of(path)
        matching = [(name, modality) for name, m in tasks.items() if m == modality]
        if not matching:
            raise ValueError(
                f"{path}: model {self.model_name!r} has no {modality} task; its tasks are "
                f"{tasks}; pick one with --task"
            )
        return matching

    def predict_file(self, path: str, task: str | None = None, top_k: int = 5) -> list[Prediction]:
        """Top-k labels of a media file for one task, or for every task of its modality.

        Each clip of the file is one example; the scores of the clips are averaged.
        """
        predictions = []
        encoded: dict[str, list[bytes]] = {}
        for name, modality in self._tasks_for(path, task):
            if modality not in encoded:
                encoded[modality] = encode_file(path, modality, self.ingestion)
            examples = encoded[modality]
            outputs = self.predict_examples(name, examples)
            scores = np.asarray(outputs["scores"]).mean(axis=0)
            classes = np.asarray(outputs["classes"])[0]
            predictions.append(
                Prediction(
                    file=path,
                    task=_text(outputs["task"][0]) if "task" in outputs else name,
                    model_version=int(outputs["model_version"]),
                    clips=len(examples),
                    top_k=best_labels(scores, classes, top_k),
                )
            )
        return predictions


class RestError(Exception):
    """A REST call the server refused: the HTTP status and TF Serving's `error` text."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class PolyvitRestClient(PolyvitClient):
    """The same client over TF Serving's REST API (`polyvit predict --rest`).

    REST answers carry no model version; the one reported is the version GetModelMetadata
    named when the client first read the signatures.
    """

    def __init__(
        self,
        target: str,
        model_name: str,
        timeout: float = 30.0,
        retries: int = 3,
        *,
        backoff: float = 0.5,
        ingestion: Ingestion | None = None,
        **unused_grpc_options,
    ):
        from urllib.parse import quote

        self.model_name = model_name
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.ingestion = ingestion or Ingestion()
        base = target if target.startswith(("http://", "https://")) else f"http://{target}"
        self._url = f"{base.rstrip('/')}/v1/models/{quote(model_name, safe='')}"
        self._signatures: dict | None = None
        self._version = 0

    def close(self) -> None:
        pass  # one connection per call (urllib): nothing held open

    def _request(self, url: str, body: dict | None = None) -> dict:
        """One call; 503 and refused connections (server starting) are retried with backoff."""
        import json
        import urllib.error
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, data=data, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as e:
                text = e.read().decode("utf-8", "replace")
                try:
                    message = json.loads(text).get("error", text)
                except ValueError:
                    message = text
                if e.code != 503 or attempt == self.retries:
                    raise RestError(e.code, message) from None
            except urllib.error.URLError as e:
                if attempt == self.retries:
                    raise RestError(0, f"cannot reach {url}: {e.reason}") from None
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def signature_defs(self) -> dict:
        if self._signatures is None:
            from google.protobuf import json_format
            from tensorflow_serving.apis import get_model_metadata_pb2

            answer = self._request(f"{self._url}/metadata")
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            json_format.ParseDict(answer["metadata"]["signature_def"], signature_map)
            self._signatures = dict(signature_map.signature_def)
            self._version = int(answer["model_spec"]["version"])
        return self._signatures

    def _predict_examples(self, task: str, serialized: list[bytes]) -> dict:
        import base64

        self.signature_defs()  # the version this client reports
        body = {
            "signature_name": task,
            "inputs": {EXAMPLES_INPUT: [{"b64": base64.b64encode(s).decode()} for s in serialized]},
        }
        outputs = self._request(f"{self._url}:predict", body)["outputs"]
        result: dict = {k: np.asarray(v) for k, v in outputs.items()}
        result["model_version"] = self._version
        return result

    def predict_inputs(self, signature: str, inputs: dict[str, list]) -> dict:
        import base64

        self.signature_defs()  # the version this client reports
        body = {
            "signature_name": signature,
            "inputs": {
                name: [
                    {"b64": base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode()}
                    for v in values
                ]
                for name, values in inputs.items()
            },
        }
        outputs = self._request(f"{self._url}:predict", body)["outputs"]
        result: dict = {k: np.asarray(v) for k, v in outputs.items()}
        result["model_version"] = self._version
        return result
