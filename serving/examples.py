"""Checks of serialized examples that must happen before they reach the model: what needs
the server's own limit, or a message TF's parser cannot give.

Predict's `examples` inputs are DMVR SequenceExamples (the export contract) and Classify's are
tf.Examples. Refused with INVALID_ARGUMENT: a record that does not parse (TF's parser would
answer with the whole record in its message) and one with more frames than `max_frames` (a
10,000-frame video would be decoded whole in the graph). An empty record and NaN or infinite
waveform values are refused in the exported signatures themselves (trainer/export.py's
`checked_input`), where TF Serving refuses them too; Classify's tf.Examples, parsed by the
transport already, still have their float values checked here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from google.protobuf.message import DecodeError
from tensorflow.core.example import example_pb2

from serving import errors

# Below this many values a plain loop beats building a numpy array (a frame rate, a label).
_NUMPY_FROM = 64


def _check_floats(where: str, name: str, feature) -> None:
    if feature.WhichOneof("kind") != "float_list":
        return
    values = feature.float_list.value
    if len(values) < _NUMPY_FROM:
        finite = all(map(math.isfinite, values))
    else:
        finite = bool(np.isfinite(np.asarray(values, np.float32)).all())
    if not finite:
        raise errors.invalid_argument(f"{where}: feature {name!r} holds NaN or infinite values")


def check_sequence_example(index: int, serialized: bytes, max_frames: int) -> None:
    where = f"examples[{index}]"
    example = example_pb2.SequenceExample()
    try:
        example.ParseFromString(serialized)
    except DecodeError:
        raise errors.invalid_argument(
            f"{where}: cannot parse {len(serialized)} bytes as a SequenceExample "
            "(truncated or not a SequenceExample)"
        ) from None
    for name, feature_list in example.feature_lists.feature_list.items():
        if len(feature_list.feature) > max_frames:
            raise errors.invalid_argument(
                f"{where}: {name!r} has {len(feature_list.feature)} frames, more than the "
                f"server's limit of {max_frames} (serving.max_frames); send shorter clips"
            )


def check_sequence_examples(serialized: Iterable[bytes], max_frames: int) -> None:
    for index, item in enumerate(serialized):
        check_sequence_example(index, item, max_frames)


def check_examples(examples: Iterable, max_frames: int) -> None:
    """Classify's tf.Examples (already parsed by the transport)."""
    for index, example in enumerate(examples):
        where = f"examples[{index}]"
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            values = getattr(feature, kind).value if kind else ()
            if kind == "bytes_list" and len(values) > max_frames:
                raise errors.invalid_argument(
                    f"{where}: {name!r} has {len(values)} values, more than the server's limit "
                    f"of {max_frames} (serving.max_frames)"
                )
            _check_floats(where, name, feature)


def check_raw_frames(alias: str, array: np.ndarray, max_frames: int) -> None:
    """A raw video input [N, T, H, W, 3]: at most `max_frames` frames per video."""
    if array.ndim == 5 and array.shape[1] > max_frames:
        raise errors.invalid_argument(
            f"input {alias!r} has {array.shape[1]} frames per video, more than the server's "
            f"limit of {max_frames} (serving.max_frames); send shorter clips"
        )
