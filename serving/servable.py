"""One loaded model version: its SignatureDefs (as TF Serving reports them) and callables."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import saved_model_pb2

from serving import errors, layout

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
DEFAULT_SIGNATURE = "serving_default"


class LoadError(Exception):
    """A model version could not be loaded or did not answer its warm-up requests."""


def read_signature_defs(version_path: str) -> dict:
    """The SignatureDefs of a SavedModel's serving MetaGraph, straight from saved_model.pb.

    These are what TF Serving's GetModelMetadata returns (including TF2's
    `__saved_model_init_op`), with the graph's own tensor names.
    """
    pb_path = os.path.join(version_path, layout.SAVED_MODEL_PB)
    try:
        with open(pb_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise LoadError(f"{version_path}: no {layout.SAVED_MODEL_PB}") from None
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(data)
    except DecodeError as e:
        raise LoadError(f"{pb_path}: cannot parse the SavedModel proto ({e})") from None
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise LoadError(f"{pb_path}: no MetaGraph tagged 'serve'")


def graph_error_message(message: str) -> str:
    """A graph's refusal without TF's wrapping (the node, its stack, the node trailer): the
    failed assertion's own text (the signatures' request checks, trainer/export.py), else
    TF's error line."""
    text = message.split("\n\t [[", 1)[0].strip()
    if "Detected at node" in text:
        text = text.rsplit("\n", 1)[-1]  # the error follows the node's stack
    if text.startswith("assertion failed: [") and text.endswith("]") and "] [" not in text:
        text = text[len("assertion failed: [") : -1]
    return text


@dataclass
class Servable:
    name: str
    version: int
    path: str
    signature_defs: Mapping[str, Any]  # SignatureDef protos
    functions: Mapping[str, Callable[..., Any]]
    # The loaded object owns the variables the functions read; keep it alive with them.
    handle: object = field(repr=False, default=None)

    def signature(self, signature_name: str):
        """The SignatureDef for a name ('' means serving_default) or FAILED_PRECONDITION."""
        name = signature_name or DEFAULT_SIGNATURE
        if name not in self.functions:
            raise errors.signature_not_found(name)
        return name, self.signature_defs[name]

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs one signature on numpy inputs; every output comes back as numpy."""
        function = self.functions[signature_name]
        try:
            outputs = function(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.InvalidArgumentError as e:
            raise errors.invalid_argument(graph_error_message(e.message)) from None
        except (TypeError, ValueError) as e:  # a tensor the traced function cannot take
            raise errors.invalid_argument(str(e)) from None
        except tf.errors.OpError as e:
            raise errors.internal(e.message) from None
        return {k: v.numpy() for k, v in outputs.items()}


def load_servable(version_path: str, name: str, version: int) -> Servable:
    """Loads a SavedModel version folder; LoadError says why it cannot be served."""
    signature_defs = read_signature_defs(version_path)
    try:
        loaded = tf.saved_model.load(version_path, tags=["serve"])
    except Exception as e:  # TF raises many types for a broken model; all mean "not loadable"
        raise LoadError(f"{version_path}: {type(e).__name__}: {e}") from None
    functions = dict(loaded.signatures)
    missing = sorted(set(functions) - set(signature_defs))
    if missing:
        raise LoadError(f"{version_path}: signatures {missing} missing from saved_model.pb")
    if not functions:
        raise LoadError(f"{version_path}: the SavedModel has no signatures to serve")
    return Servable(name, version, version_path, signature_defs, functions, loaded)
