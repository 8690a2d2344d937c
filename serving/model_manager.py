"""Model versions: load the newest, watch the base path, swap atomically, keep the old on failure.

The manager follows TF Serving's `latest` version policy with availability preserved: a new
version is loaded and warmed up in the background while the current one keeps serving; the
switch is one reference assignment, so no request sees a half-loaded model; the old version is
unloaded only after the new one is available; a version that fails to load is reported in
GetModelStatus and the previous one goes on serving.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from tensorflow_serving.apis import get_model_status_pb2

from serving import errors, layout
from serving.batching import BatchingOptions, DynamicBatcher
from serving.metrics import ServerMetrics
from serving.model_config import ModelConfig
from serving.servable import LoadError, Servable, load_servable
from serving.tensors import check_batch_sizes

log = logging.getLogger("polyvit.serving")

State = get_model_status_pb2.ModelVersionStatus.State
# tensorflow.error.Code values used in ModelVersionStatus.status.
OK_CODE, UNKNOWN_CODE = 0, 2


@dataclass(frozen=True)
class VersionState:
    version: int
    state: int
    error_code: int = OK_CODE
    error_message: str = ""


class LoadedVersion:
    """A servable that takes traffic, with its batcher when batching is on."""

    def __init__(
        self, servable: Servable, metrics: ServerMetrics, batching: BatchingOptions | None
    ):
        self.servable = servable
        self._metrics = metrics
        self._batcher = (
            DynamicBatcher(servable.run, batching, metrics.batch_size.observe) if batching else None
        )

    @property
    def version(self) -> int:
        return self.servable.version

    def predict(self, signature: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = check_batch_sizes(inputs)
        if self._batcher is not None and rows is not None:
            return self._batcher.run(signature, inputs, rows)
        self._metrics.batch_size.observe(rows or 1)
        return self.servable.run(signature, inputs)

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()


def _fingerprint(path: str) -> tuple:
    """Changes whenever a file under the version folder is added, removed or rewritten."""
    entries = []
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            try:
                st = os.stat(full)
            except FileNotFoundError:
                continue
            entries.append((os.path.relpath(full, path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(entries))


class ModelManager:
    """Serves the versions of one model that its version policy names, from its versions
    folder (`model.base_path`)."""

    def __init__(
        self,
        model: ModelConfig,
        *,
        metrics: ServerMetrics,
        batching: BatchingOptions | None = None,
        warm_up: Callable[[LoadedVersion], None] | None = None,
        on_change: Callable[[bool], None] | None = None,
        loader: Callable[[str, str, int], Servable] = load_servable,
    ):
        self.model = model
        self.model_name = model.name
        self.model_path = model.base_path
        self._policy = model.policy
        self._metrics = metrics
        self._batching = batching
        self._warm_up = warm_up or (lambda loaded: None)
        self._on_change = on_change or (lambda serving: None)
        self._loader = loader
        # Replaced wholesale, never mutated: readers take the reference without a lock.
        self._available: dict[int, LoadedVersion] = {}
        self._states: dict[int, VersionState] = {}
        self._failed: dict[int, tuple] = {}
        self._lock = threading.Lock()  # one poll at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- serving side -------------------------------------------------------------------------

    def get(self, version: int | None = None) -> LoadedVersion:
        available = self._available
        if version is None:
            if not available:
                raise errors.servable_not_found(self.model_name, None)
            return available[max(available)]
        if version not in available:
            raise errors.servable_not_found(self.model_name, version)
        return available[version]

    def version_for_label(self, label: str) -> int:
        """The version a label names (model config's version_labels), or INVALID_ARGUMENT."""
        if label not in self.model.labels:
            raise errors.unknown_version_label(label)
        return self.model.labels[label]

    def states(self) -> dict[int, VersionState]:
        return dict(self._states)

    def available_versions(self) -> list[int]:
        return sorted(self._available)

    # -- loading side -------------------------------------------------------------------------

    def poll_once(self) -> None:
        """Loads new aspired versions and unloads the ones no longer served."""
        with self._lock:
            on_disk = layout.list_versions(self.model_path)
            aspired = self._policy.aspired(on_disk)
            for version in reversed(aspired):
                if version not in self._available:
                    self._try_load(version)
            if self._policy.kind == "latest":
                # Nothing servable yet (a fresh start whose newest version is broken): fall
                # back to older versions, newest first, rather than answer NOT_FOUND.
                for version in reversed([v for v in on_disk if v not in aspired]):
                    if self._available:
                        break
                    self._try_load(version)
            self._unload_stale(set(on_disk))

    def _try_load(self, version: int) -> None:
        path = os.path.join(self.model_path, str(version))
        fingerprint = _fingerprint(path)
        if self._failed.get(version) == fingerprint:
            return  # failed before and unchanged since; a rewritten folder is tried again
        self._states[version] = VersionState(version, State.LOADING)
        log.info("loading %s version %d from %s", self.model_name, version, path)
        try:
            loaded = LoadedVersion(
                self._loader(path, self.model_name, version), self._metrics, None
            )
            self._warm_up(loaded)
            loaded = LoadedVersion(loaded.servable, self._metrics, self._batching)
        except (LoadError, errors.ServingError) as e:
            message = getattr(e, "message", None) or str(e)
            self._failed[version] = fingerprint
            self._states[version] = VersionState(version, State.END, UNKNOWN_CODE, message)
            self._metrics.load_failures.labels(self.model_name).inc()
            log.error("%s version %d not served: %s", self.model_name, version, message)
            return
        self._failed.pop(version, None)
        self._available = {**self._available, version: loaded}
        self._states[version] = VersionState(version, State.AVAILABLE)
        self._metrics.available_version.labels(self.model_name).set(max(self._available))
        log.info("%s version %d is serving", self.model_name, version)
        self._on_change(True)

    def _unload_stale(self, on_disk: set[int]) -> None:
        available = self._available
        keep = self._policy.keep(available, sorted(on_disk))
        if not keep:
            # Files gone and nothing newer: keep serving what is loaded (availability first).
            keep = sorted(available)[-max(self._policy.num_versions, 1) :]
        stale = sorted(set(available) - set(keep))
        if not stale:
            return
        self._available = {v: available[v] for v in keep}
        for version in stale:
            self._states[version] = VersionState(version, State.UNLOADING)
            # In-flight requests hold their own reference and finish on the old version.
            available[version].close()
            self._states[version] = VersionState(version, State.END)
            log.info("%s version %d unloaded", self.model_name, version)

    # -- background watcher -------------------------------------------------------------------

    def start(self, poll_seconds: float) -> None:
        if poll_seconds <= 0:
            return  # no watching: serve what was loaded at start

        def watch():
            while not self._stop.wait(poll_seconds):
                try:
                    self.poll_once()
                except Exception:  # keep watching; a broken poll must not stop serving
                    log.exception("polling %s failed", self.model_path)

        self._thread = threading.Thread(target=watch, name="version-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        available, self._available = self._available, {}
        for loaded in available.values():
            loaded.close()
        self._on_change(False)
