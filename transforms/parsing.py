"""Parse phase: one serialized DMVR SequenceExample -> the raw tensors a modality needs.

Only the keys the modality uses are parsed, so a video record that also carries a waveform
costs nothing extra unless audio is asked for. Labels are parsed separately: serving
records need not carry any.
"""

from __future__ import annotations

import tensorflow as tf

from core import features as keys

IMAGE, VIDEO, AUDIO = "image", "video", "audio"
MODALITIES = (IMAGE, VIDEO, AUDIO)


def parse_record(serialized: tf.Tensor, modality: str) -> dict[str, tf.Tensor]:
    """Returns `frames` (encoded JPEGs [T]) or `waveform` ([samples]) plus `sample_rate` and
    `filename` (for error messages). A missing feature list parses as empty; the decode phase
    turns that into an error naming the record's file."""
    if modality not in MODALITIES:
        raise ValueError(f"modality: {modality!r} is not one of {list(MODALITIES)}")
    context_spec = {
        keys.FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=""),
        # 0 means "not recorded": the audio phase then assumes the configured rate.
        keys.SAMPLE_RATE: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    }
    if modality == AUDIO:
        # VarLen and flattened: one Feature holding the whole waveform (our writer) and
        # several Features of consecutive chunks read the same.
        sequence_spec = {keys.WAVEFORM: tf.io.VarLenFeature(tf.float32)}
    else:
        sequence_spec = {
            keys.IMAGE_ENCODED: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
        }
    context, sequence = tf.io.parse_single_sequence_example(
        serialized, context_features=context_spec, sequence_features=sequence_spec
    )
    parsed = {"filename": context[keys.FILENAME], "sample_rate": context[keys.SAMPLE_RATE]}
    if modality == AUDIO:
        parsed["waveform"] = sequence[keys.WAVEFORM].values
    else:
        parsed["frames"] = sequence[keys.IMAGE_ENCODED]
    return parsed


def parse_label_indices(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """The record's `clip/label/index` list (int64 [k]) and its filename."""
    context, _ = tf.io.parse_single_sequence_example(
        serialized,
        context_features={
            keys.LABEL_INDEX: tf.io.VarLenFeature(tf.int64),
            keys.FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=""),
        },
    )
    return {"indices": context[keys.LABEL_INDEX].values, "filename": context[keys.FILENAME]}


def label_vector(
    indices: tf.Tensor, num_classes: int, label_type: str, filename: tf.Tensor | str = ""
) -> tf.Tensor:
    """float32 [num_classes]: one-hot (single: exactly one index) or multi-hot (multi: any
    number, none gives all zeros). Out-of-range indices fail loudly instead of vanishing, as
    tf.one_hot would make them do."""
    indices = tf.cast(indices, tf.int64)
    in_range = tf.reduce_all((indices >= 0) & (indices < num_classes))
    checks = [
        tf.debugging.Assert(
            in_range,
            [f"{keys.LABEL_INDEX}: index outside [0, {num_classes}) in record", filename, indices],
        )
    ]
    if label_type == "single":
        checks.append(
            tf.debugging.Assert(
                tf.equal(tf.size(indices), 1),
                [
                    f"{keys.LABEL_INDEX}: a single-label task needs exactly one label; record",
                    filename,
                    indices,
                ],
            )
        )
    elif label_type != "multi":
        raise ValueError(f"label_type: {label_type!r} is not 'single' or 'multi'")
    with tf.control_dependencies(checks):
        hot = tf.reduce_sum(tf.one_hot(indices, num_classes, dtype=tf.float32), axis=0)
    return tf.ensure_shape(tf.minimum(hot, 1.0), [num_classes])
