"""TensorProto <-> numpy, and the input checks TF Serving makes before running a signature."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from serving import errors

# TF's DataTypeString names the float types by their C names; everything else by its dtype name.
_TF_NAMES = {tf.float32.as_datatype_enum: "float", tf.float64.as_datatype_enum: "double"}


def dtype_name(dtype_enum: int) -> str:
    if dtype_enum in _TF_NAMES:
        return _TF_NAMES[dtype_enum]
    try:
        return tf.dtypes.as_dtype(dtype_enum).name
    except TypeError:
        return f"invalid dtype {dtype_enum}"


def shape_of(tensor_info) -> list[int] | None:
    """A TensorInfo's shape as a list with -1 for unknown dims; None for unknown rank."""
    shape = tensor_info.tensor_shape
    if shape.unknown_rank:
        return None
    return [d.size for d in shape.dim]


def _shape_text(shape: list[int] | tuple[int, ...] | None) -> str:
    if shape is None:
        return "<unknown>"
    return "[" + ",".join("?" if d < 0 else str(d) for d in shape) + "]"


def shape_compatible(expected: list[int] | None, actual: tuple[int, ...]) -> bool:
    if expected is None:
        return True
    if len(expected) != len(actual):
        return False
    return all(e < 0 or e == a for e, a in zip(expected, actual, strict=True))


def to_ndarray(proto, alias: str) -> np.ndarray:
    try:
        return tf.make_ndarray(proto)
    except Exception as e:  # any malformed TensorProto
        raise errors.invalid_argument(f"tensor parsing error: {alias} ({e})") from None


# Numeric dtypes whose values TF reads from tensor_content (tensor_util's own list).
_CONTENT_DTYPES = frozenset(
    np.dtype(t)
    for t in (np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64)
    + (np.uint8, np.uint16, np.uint32, np.uint64)
)


def to_tensor_proto(array: np.ndarray):
    return tf.make_tensor_proto(array)


def fill_tensor_proto(proto, array: np.ndarray) -> None:
    """Writes an array into a (response's) TensorProto in place, as make_tensor_proto would
    but without its per-element work and the copy into the response: numbers as one
    tensor_content blob, bytes in string_val (a string tensor has no other place)."""
    if array.dtype in _CONTENT_DTYPES:
        proto.dtype = tf.as_dtype(array.dtype).as_datatype_enum
        proto.tensor_content = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    elif array.dtype == object and all(type(v) is bytes for v in array.flat):
        proto.dtype = tf.string.as_datatype_enum
        proto.string_val.extend(array.ravel().tolist())
    else:  # bool, complex, str, ...: TF's general conversion
        proto.CopyFrom(tf.make_tensor_proto(array))
        return
    for size in array.shape:
        proto.tensor_shape.dim.add().size = size


def check_input_names(signature_def, sent_aliases) -> None:
    """Wrong count or names of inputs are INVALID_ARGUMENT, in TF Serving's words."""
    expected = signature_def.inputs
    sent = sorted(sent_aliases)
    if len(sent) != len(expected):
        wanted = sorted(expected.keys())
        extra = sorted(set(sent) - set(wanted))
        missing = sorted(set(wanted) - set(sent))
        raise errors.invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(wanted)} "
            f"len({{{','.join(sent)}}}) != len({{{','.join(wanted)}}}). "
            f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."
        )
    for alias, info in sorted(expected.items()):
        if alias not in sent:
            raise errors.invalid_argument(
                f"Signature input alias: {alias}(feed name: {info.name}) not found in request "
                f"and no default value provided. Inputs expected to be in the request "
                f"{{{','.join(sent)}}}, or default input alias set: "
            )


def check_array(index: int, alias: str, info, array: np.ndarray) -> None:
    """The shape check of one input (NaN or infinity in a float input is refused by the
    exported signature itself: trainer/export.py's `checked_input`)."""
    want = shape_of(info)
    if not shape_compatible(want, array.shape):
        raise errors.invalid_argument(
            f"Expects arg[{index}] ({alias}) to have shape {_shape_text(want)} but "
            f"{_shape_text(array.shape)} is provided"
        )


def check_inputs(signature_def, request_inputs: Mapping) -> dict[str, np.ndarray]:
    """The request's tensors as numpy arrays keyed by input alias, after TF Serving's checks.

    Wrong count or names, dtype and shape mismatches are INVALID_ARGUMENT, with TF Serving's
    wording where it has one (predict_util.cc, saved_model/util.cc, the session's arg check).
    """
    check_input_names(signature_def, request_inputs.keys())
    arrays = {}
    for index, (alias, info) in enumerate(sorted(signature_def.inputs.items())):
        proto = request_inputs[alias]
        if proto.dtype != info.dtype:
            raise errors.invalid_argument(
                f"Expects arg[{index}] to be {dtype_name(info.dtype)} but "
                f"{dtype_name(proto.dtype)} is provided"
            )
        array = to_ndarray(proto, alias)
        check_array(index, alias, info, array)
        arrays[alias] = array
    return arrays


def check_arrays(signature_def, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """check_inputs for inputs that are numpy arrays already (REST requests)."""
    check_input_names(signature_def, arrays.keys())
    for index, (alias, info) in enumerate(sorted(signature_def.inputs.items())):
        check_array(index, alias, info, arrays[alias])
    return dict(arrays)


def check_batch_sizes(arrays: Mapping[str, np.ndarray]) -> int | None:
    """The common leading (batch) dimension of the inputs, or None when they have none."""
    sizes = {a.shape[0] if a.ndim else None for a in arrays.values()}
    if len(sizes) != 1:
        return None
    return sizes.pop()
