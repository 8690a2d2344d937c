"""gRPC servicers: TF Serving's generated PredictionService and ModelService base classes.

Only transport lives here: each RPC calls the transport-free handler, records metrics, and turns
a ServingError into the gRPC status it names. Unexpected failures answer INTERNAL and the server
keeps serving.
"""

from __future__ import annotations

import logging
import time

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.errors import ServingError
from serving.handlers import Handlers
from serving.metrics import ServerMetrics

log = logging.getLogger("polyvit.serving")


def _answer(method: str, handler, request, context, metrics: ServerMetrics):
    start = time.perf_counter()
    code = grpc.StatusCode.OK
    try:
        return handler(request)
    except ServingError as e:
        code = e.code
        context.abort(e.code, e.message)
    except Exception as e:  # a bug or a TF failure must not take the server down
        code = grpc.StatusCode.INTERNAL
        log.exception("%s failed", method)
        context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
    finally:
        model = request.model_spec.name if request.HasField("model_spec") else ""
        metrics.requests.labels(method, model, code.name).inc()
        metrics.latency.labels(method).observe(time.perf_counter() - start)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, handlers: Handlers, metrics: ServerMetrics):
        self._handlers = handlers
        self._metrics = metrics

    def Predict(self, request, context):
        return _answer("Predict", self._handlers.predict, request, context, self._metrics)

    def Classify(self, request, context):
        return _answer("Classify", self._handlers.classify, request, context, self._metrics)

    def GetModelMetadata(self, request, context):
        return _answer(
            "GetModelMetadata", self._handlers.get_model_metadata, request, context, self._metrics
        )


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, handlers: Handlers, metrics: ServerMetrics):
        self._handlers = handlers
        self._metrics = metrics

    def GetModelStatus(self, request, context):
        return _answer(
            "GetModelStatus", self._handlers.get_model_status, request, context, self._metrics
        )
