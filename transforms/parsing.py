"""Parse phase: one serialized DMVR SequenceExample -> the raw tensors a modality needs.

Only the keys the modality uses are parsed, so a video record that also carries a waveform
costs nothing extra unless audio is asked for. Labels are parsed separately: serving
records need not carry any.

Records written elsewhere (DMVR's generator, other tools) are read as they are, and what they
cannot tell is an error naming the key and the record's file, never a silent guess:
- labels: `clip/label/text` mapped through the task's vocabulary where the record has texts
  (another tool's numbering would otherwise become the wrong class); an unknown text fails;
- sample rate: `audio/sample_rate`, else the task's `data.sample_rate`, else an error;
- waveform values: NaN or infinity fail (DMVR's generator writes them when it reads 32-bit
  integer PCM as float32).
"""

from __future__ import annotations

import tensorflow as tf

from core import features as keys
from core.config import Task

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
        # 0 means "not recorded": see record_sample_rate.
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
    """The record's `clip/label/index` list (int64 [k]), `clip/label/text` list (string [k'],
    empty when the record has none) and its filename."""
    context, _ = tf.io.parse_single_sequence_example(
        serialized,
        context_features={
            keys.LABEL_INDEX: tf.io.VarLenFeature(tf.int64),
            keys.LABEL_TEXT: tf.io.VarLenFeature(tf.string),
            keys.FILENAME: tf.io.FixedLenFeature([], tf.string, default_value=""),
        },
    )
    return {
        "indices": context[keys.LABEL_INDEX].values,
        "texts": context[keys.LABEL_TEXT].values,
        "filename": context[keys.FILENAME],
    }


def vocabulary_table(vocabulary: list[str]) -> tf.lookup.StaticHashTable:
    """label text -> its index in the task's vocabulary; -1 for a text not in it."""
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(vocabulary), tf.string),
            tf.range(len(vocabulary), dtype=tf.int64),
        ),
        default_value=-1,
    )


def indices_by_text(
    parsed: dict[str, tf.Tensor], table: tf.lookup.StaticHashTable | None
) -> tf.Tensor:
    """The record's label indices in the task's numbering: its texts through `table` when it
    has texts (and a table is given), else its `clip/label/index` as written. A text not in the
    vocabulary fails, naming the text and the record."""
    if table is None:
        return parsed["indices"]
    texts = parsed["texts"]
    by_text = table.lookup(texts)
    unknown = tf.boolean_mask(texts, by_text < 0)
    check = tf.debugging.Assert(
        tf.equal(tf.size(unknown), 0),
        [
            f"{keys.LABEL_TEXT}: not in the task vocabulary:",
            unknown,
            "in record",
            parsed["filename"],
        ],
    )
    with tf.control_dependencies([check]):
        return tf.cond(
            tf.size(texts) > 0, lambda: tf.identity(by_text), lambda: tf.identity(parsed["indices"])
        )


def record_sample_rate(
    recorded: tf.Tensor, waveform: tf.Tensor, configured: int, where: str, filename: tf.Tensor
) -> tf.Tensor:
    """int64: the record's `audio/sample_rate`, else `configured` (the task's
    `data.sample_rate`, 0 when unset). A record with samples but neither rate fails: its
    duration and pitch cannot be known (48 kHz read as 16 kHz is three times too long)."""
    rate = tf.where(recorded > 0, recorded, tf.constant(configured, tf.int64))
    check = tf.debugging.Assert(
        (rate > 0) | tf.equal(tf.size(waveform), 0),
        [
            f"{keys.SAMPLE_RATE}: the record has none and {where} is not set; record",
            filename,
        ],
    )
    with tf.control_dependencies([check]):
        return tf.identity(rate)


def check_finite(waveform: tf.Tensor, filename: tf.Tensor) -> tf.Tensor:
    """The waveform, after failing on NaN or infinite samples (naming the record)."""
    check = tf.debugging.Assert(
        tf.reduce_all(tf.math.is_finite(waveform)),
        [f"{keys.WAVEFORM}: NaN or infinite samples in record", filename],
    )
    with tf.control_dependencies([check]):
        return tf.identity(waveform)


def checked_waveform(parsed: dict, task: Task) -> tuple[tf.Tensor, tf.Tensor]:
    """(waveform, int64 sample rate) of a parsed audio record, after the finite-values and
    sample-rate checks every audio reader makes (`task` gives the configured fallback rate)."""
    waveform = check_finite(parsed["waveform"], parsed["filename"])
    rate = record_sample_rate(
        parsed["sample_rate"],
        waveform,
        task.data.sample_rate,
        f"tasks.{task.name}.data.sample_rate",
        parsed["filename"],
    )
    return waveform, rate


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
