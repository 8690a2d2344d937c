"""Server-side dynamic batching: concurrent requests for one signature share one model call.

Like TF Serving's batching session: requests queue per signature (and per non-batch input shape,
since only equal shapes concatenate); a batch runs when it holds `max_batch_size` rows or its
oldest request has waited `batch_timeout_micros`. A failure in the merged call is the answer to
every request in that batch, as in TF Serving, except a refused request (INVALID_ARGUMENT, the
signatures' own request checks): then each request of the batch runs again on its own.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from serving import errors


@dataclass(frozen=True)
class BatchingOptions:
    max_batch_size: int
    batch_timeout_micros: int
    num_batch_threads: int
    max_enqueued_batches: int

    @classmethod
    def from_config(cls, serving, **overrides) -> BatchingOptions:
        """From the config's `serving` section; keyword overrides (CLI flags) win."""
        values = {name: getattr(serving, name) for name in cls.__dataclass_fields__}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self):
        for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"serving.{name}: must be at least 1, got {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError("serving.batch_timeout_micros: must not be negative")


@dataclass
class _Task:
    inputs: Mapping[str, np.ndarray]
    rows: int
    future: Future
    enqueued: float


def batch_key(signature: str, inputs: Mapping[str, np.ndarray]) -> tuple:
    """Requests with equal keys can be concatenated along the batch dimension."""
    return (signature,) + tuple(
        (alias, array.dtype.str, array.shape[1:]) for alias, array in sorted(inputs.items())
    )


def merge_inputs(tasks: list[_Task]) -> dict[str, np.ndarray]:
    aliases = tasks[0].inputs.keys()
    return {a: np.concatenate([t.inputs[a] for t in tasks], axis=0) for a in aliases}


def split_outputs(outputs: Mapping[str, np.ndarray], rows: list[int]) -> list[dict]:
    """Cuts each batched output back into one piece per request, by row counts."""
    total = sum(rows)
    for alias, array in outputs.items():
        if array.ndim == 0 or array.shape[0] != total:
            raise errors.internal(
                f"batched output {alias!r} has shape {list(array.shape)}; expected a leading "
                f"batch dimension of {total}"
            )
    cuts = np.cumsum(rows)[:-1]
    pieces = {alias: np.split(array, cuts) for alias, array in outputs.items()}
    return [{alias: pieces[alias][i] for alias in outputs} for i in range(len(rows))]


class DynamicBatcher:
    """Queues requests and runs them in merged batches on `num_batch_threads` threads."""

    def __init__(
        self,
        run: Callable[[str, dict], dict],
        options: BatchingOptions,
        on_batch: Callable[[int], None] | None = None,
    ):
        self._run = run
        self._options = options
        self._on_batch = on_batch or (lambda size: None)
        self._queues: dict[tuple, collections.deque] = {}
        self._queued_rows = 0
        self._closed = False
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(options.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, signature: str, inputs: Mapping[str, np.ndarray], rows: int) -> dict:
        """Runs a request through a batch; blocks until its rows of the outputs are ready."""
        future = self.submit(signature, inputs, rows)
        if future is None:
            return self.run_alone(signature, inputs, rows)
        return future.result()

    def submit(self, signature: str, inputs: Mapping[str, np.ndarray], rows: int) -> Future | None:
        """Queues a request without waiting: the Future of its rows of the outputs, or None
        when it is not batched (too big to share a batch, or the version is being unloaded)
        and the caller runs it on its own (`run_alone`). Cancelling the Future before its
        batch starts drops the request from the batch (a client that went away)."""
        if rows > self._options.max_batch_size:
            return None  # too big to share a batch: run it on its own rather than refuse it
        task = _Task(inputs, rows, Future(), time.monotonic())
        limit = self._options.max_enqueued_batches * self._options.max_batch_size
        with self._cond:
            if self._closed:
                return None
            if self._queued_rows + rows > limit:
                raise errors.unavailable(
                    "The batch scheduling queue to which this task was submitted is full"
                )
            self._queues.setdefault(batch_key(signature, inputs), collections.deque()).append(task)
            self._queued_rows += rows
            self._cond.notify()
        return task.future

    def run_alone(self, signature: str, inputs: Mapping[str, np.ndarray], rows: int) -> dict:
        """A request that `submit` did not batch, run as a batch of its own."""
        self._on_batch(rows)
        return self._run(signature, dict(inputs))

    def close(self) -> None:
        """Stops taking requests; queued ones still run, then the threads end."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)

    # -- worker side --------------------------------------------------------------------------

    def _ready_batch(self, now: float) -> tuple[tuple, list[_Task]] | float | None:
        """A batch ready to run, else the seconds until one may be, else None (nothing queued)."""
        timeout = self._options.batch_timeout_micros / 1e6
        wait = None
        for key, queue in self._queues.items():
            if not queue:
                continue
            rows = sum(t.rows for t in queue)
            age = now - queue[0].enqueued
            if rows >= self._options.max_batch_size or age >= timeout or self._closed:
                tasks = self._take(queue)
                if not queue:
                    del self._queues[key]  # safe: we return before iterating further
                return key, tasks
            remaining = timeout - age
            wait = remaining if wait is None else min(wait, remaining)
        return wait

    def _take(self, queue: collections.deque) -> list[_Task]:
        tasks, rows = [], 0
        while queue and rows + queue[0].rows <= self._options.max_batch_size:
            task = queue.popleft()
            self._queued_rows -= task.rows
            if task.future.set_running_or_notify_cancel():  # False: its client went away
                tasks.append(task)
                rows += task.rows
        return tasks

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    ready = self._ready_batch(time.monotonic())
                    if isinstance(ready, tuple):
                        break
                    if ready is None and self._closed:
                        return
                    self._cond.wait(ready)
            key, tasks = ready
            if tasks:
                self._execute(key[0], tasks)

    def _execute(self, signature: str, tasks: list[_Task]) -> None:
        rows = [t.rows for t in tasks]
        try:
            self._on_batch(sum(rows))
            results = split_outputs(self._run(signature, merge_inputs(tasks)), rows)
        except errors.ServingError as e:
            if e.code != errors.grpc.StatusCode.INVALID_ARGUMENT or len(tasks) == 1:
                self._fail(tasks, e)
                return
            # The signatures refuse bad requests in the graph (a NaN waveform, an empty
            # record): one hostile request must not fail the others merged with it, and its
            # message must name its own row, so each request is run again on its own.
            for task in tasks:
                self._run_one(signature, task)
            return
        except BaseException as e:  # every request of the batch gets the batch's failure
            self._fail(tasks, e)
            return
        for task, result in zip(tasks, results, strict=True):
            task.future.set_result(result)

    def _run_one(self, signature: str, task: _Task) -> None:
        try:
            self._on_batch(task.rows)
            task.future.set_result(self._run(signature, dict(task.inputs)))
        except BaseException as e:
            task.future.set_exception(e)

    @staticmethod
    def _fail(tasks: list[_Task], error: BaseException) -> None:
        for task in tasks:
            task.future.set_exception(error)
