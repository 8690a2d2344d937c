"""gRPC servicers: TF Serving's generated PredictionService and ModelService base classes,
served by grpcio's asyncio server.

Only transport lives here: each RPC calls the transport-free handler, records metrics, and turns
a ServingError into the gRPC status it names. Unexpected failures answer INTERNAL and the server
keeps serving. The RPCs run on the server's event loop; the model calls run off it (on the
batch threads, or in `executor` without batching), so the loop never waits for a model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.errors import ServingError
from serving.handlers import Handlers
from serving.metrics import ServerMetrics

log = logging.getLogger("polyvit.serving")


async def _answer(method: str, call, request, context, metrics: ServerMetrics):
    """`await call(request)` as the RPC's answer; refusals and failures as gRPC statuses."""
    start = time.perf_counter()
    code = grpc.StatusCode.OK
    try:
        return await call(request)
    except ServingError as e:
        code = e.code
        await context.abort(e.code, e.message)
    except asyncio.CancelledError:  # the client went away (or the server is stopping)
        code = grpc.StatusCode.CANCELLED
        raise
    except Exception as e:  # a bug or a TF failure must not take the server down
        code = grpc.StatusCode.INTERNAL
        log.exception("%s failed", method)
        await context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")
    finally:
        model = request.model_spec.name if request.HasField("model_spec") else ""
        metrics.requests.labels(method, model, code.name).inc()
        metrics.latency.labels(method).observe(time.perf_counter() - start)


def _on_loop(handler):
    """A cheap transport-free handler (no model call) as a coroutine function."""

    async def call(request):
        return handler(request)

    return call


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, handlers: Handlers, metrics: ServerMetrics, executor: Executor):
        self._handlers = handlers
        self._metrics = metrics
        self._executor = executor

    async def Predict(self, request, context):
        return await _answer("Predict", self._predict, request, context, self._metrics)

    async def Classify(self, request, context):
        return await _answer("Classify", self._classify, request, context, self._metrics)

    async def GetModelMetadata(self, request, context):
        call = _on_loop(self._handlers.get_model_metadata)
        return await _answer("GetModelMetadata", call, request, context, self._metrics)

    async def _predict(self, request):
        return await self._handlers.predict_async(request, self._executor)

    async def _classify(self, request):
        return await self._handlers.classify_async(request, self._executor)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, handlers: Handlers, metrics: ServerMetrics):
        self._handlers = handlers
        self._metrics = metrics

    async def GetModelStatus(self, request, context):
        call = _on_loop(self._handlers.get_model_status)
        return await _answer("GetModelStatus", call, request, context, self._metrics)
