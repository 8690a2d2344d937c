"""Helpers for the serving tests: tiny SavedModels with the export contract's signatures, and
records for them (tests/support/records.py).

The model is small on purpose, but its signatures have the contract's names, inputs and
outputs: `digits` (serialized SequenceExamples), `digits_raw` (uint8 images),
`digits_classify` (serialized tf.Examples, Classify), `serving_default` = `digits`. Scores
depend on the input and on a per-version `bias`, so a test can tell which version answered.
"""

from __future__ import annotations

import os

from tests.support import records

LABELS = ["cat", "dog", "owl"]
TASK = "digits"
WAVEFORM_SIGNATURE = "tones_raw"


def export_model(path: str, bias: float, embeddings: bool = False) -> str:
    """The tiny model; `embeddings` adds stand-ins for VATT's embedding signatures (their
    names, inputs and outputs; `embed_examples` refuses a record without a waveform, as the
    real one does)."""
    import tensorflow as tf

    # The production export's request checks, so the hostile-request tests exercise them.
    from trainer.export import checked_input

    labels = tf.constant(LABELS)
    image_key = "image/encoded"
    waveform_key = "WAVEFORM/feature/floats"

    class Model(tf.Module):
        def __init__(self):
            super().__init__()
            self.bias = tf.Variable(float(bias))

        def _outputs(self, features):
            # features: [batch, 1] float; column c scores c * feature + bias.
            columns = tf.range(len(LABELS), dtype=tf.float32)[tf.newaxis, :]
            logits = features * columns + self.bias * tf.cast(columns == 0, tf.float32)
            batch = tf.shape(features)[0]
            return {
                "scores": tf.nn.softmax(logits),
                "classes": tf.tile(labels[tf.newaxis, :], [batch, 1]),
                "task": tf.fill([batch], TASK),
            }

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def examples(self, examples):
            examples = checked_input("examples", examples)
            _, lists, _ = tf.io.parse_sequence_example(
                examples, sequence_features={image_key: tf.io.VarLenFeature(tf.string)}
            )
            frames = tf.sparse.to_dense(lists[image_key], default_value="")
            # Every frame is decoded, as the real export does: a broken JPEG is refused.
            flat = tf.reshape(frames, [-1])
            present = tf.boolean_mask(flat, tf.strings.length(flat) > 0)
            heights = tf.map_fn(
                lambda jpeg: tf.shape(tf.io.decode_jpeg(jpeg))[0],
                present,
                fn_output_signature=tf.int32,
            )
            num = tf.reduce_sum(tf.cast(tf.strings.length(frames) > 0, tf.float32), axis=[1, 2])
            # Zero times the decoded heights: the decoding stays in the graph (not pruned).
            num += 0.0 * tf.cast(tf.reduce_sum(heights), tf.float32)
            return self._outputs(num[:, tf.newaxis])

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform")])
        def waveform(self, waveform):
            waveform = checked_input("waveform", waveform)
            return self._outputs(tf.reduce_mean(tf.abs(waveform), axis=1, keepdims=True))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")])
        def raw(self, image):
            mean = tf.reduce_mean(tf.cast(image, tf.float32), axis=[1, 2, 3]) / 255.0
            return self._outputs(mean[:, tf.newaxis])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify(self, inputs):
            parsed = tf.io.parse_example(inputs, {image_key: tf.io.VarLenFeature(tf.string)})
            frames = parsed[image_key]
            ones = tf.SparseTensor(
                frames.indices, tf.ones_like(frames.values, tf.float32), frames.dense_shape
            )
            num = tf.sparse.reduce_sum(ones, axis=1)
            out = self._outputs(tf.reshape(num, [-1, 1]))
            return {"classes": out["classes"], "scores": out["scores"]}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def embed_examples(self, examples):
            _, lists, _ = tf.io.parse_sequence_example(
                examples, sequence_features={waveform_key: tf.io.VarLenFeature(tf.float32)}
            )
            samples = tf.sparse.reduce_sum(
                tf.sparse.map_values(tf.ones_like, lists[waveform_key]), [1, 2]
            )
            check = tf.debugging.Assert(
                tf.reduce_all(samples > 0), ["embed_examples: a record without a waveform"]
            )
            with tf.control_dependencies([check]):
                vector = tf.math.l2_normalize(tf.stack([samples, samples + 1.0], axis=1), axis=1)
            return {"video_va": vector, "audio": vector, "video_vt": vector}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="captions")])
        def embed_text(self, captions):
            length = tf.cast(tf.strings.length(captions), tf.float32)
            return {"text": tf.math.l2_normalize(tf.stack([length, 1.0 + 0 * length], 1), 1)}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="examples"),
                tf.TensorSpec([None], tf.string, name="captions"),
            ]
        )
        def rank_captions(self, examples, captions):
            video = tf.reduce_mean(self.embed_examples(examples)["video_vt"], axis=0)
            scores = tf.linalg.matvec(self.embed_text(captions)["text"], video)
            order = tf.argsort(scores, direction="DESCENDING")
            return {
                "scores": tf.gather(scores, order),
                "captions": tf.gather(captions, order),
                "order": order,
            }

    model = Model()
    examples_fn = model.examples.get_concrete_function()
    extra = {}
    if embeddings:
        extra = {
            name: getattr(model, name).get_concrete_function()
            for name in ("embed_examples", "embed_text", "rank_captions")
        }
    classify_fn = model.classify.get_concrete_function()
    tf.saved_model.save(
        model,
        path,
        signatures={
            TASK: examples_fn,
            "serving_default": examples_fn,
            f"{TASK}_raw": model.raw.get_concrete_function(),
            WAVEFORM_SIGNATURE: model.waveform.get_concrete_function(),
            f"{TASK}_classify": classify_fn,
            **extra,
        },
    )
    _set_classify_method(path, f"{TASK}_classify")
    return path


def _set_classify_method(path: str, signature_name: str) -> None:
    """tf.saved_model.save marks every signature `predict`; the contract's classify one is not."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = os.path.join(path, "saved_model.pb")
    saved = saved_model_pb2.SavedModel()
    with open(pb, "rb") as f:
        saved.ParseFromString(f.read())
    saved.meta_graphs[0].signature_def[signature_name].method_name = "tensorflow/serving/classify"
    with open(pb, "wb") as f:
        f.write(saved.SerializeToString())


_JPEG: list[bytes] = []


def tiny_jpeg() -> bytes:
    """A 2x2 JPEG (encoded once)."""
    if not _JPEG:
        import numpy as np
        import tensorflow as tf

        _JPEG.append(tf.io.encode_jpeg(np.full((2, 2, 3), 128, np.uint8)).numpy())
    return _JPEG[0]


def sequence_example(num_frames: int, frame: bytes | None = None) -> bytes:
    """A record with `num_frames` JPEG frames (the tiny model decodes and counts them)."""
    return records.record(frames=[frame or tiny_jpeg()] * num_frames)


def install_version(exported: str, base: str, model: str, version: int) -> str:
    """Copies an export into <base>/<model>/<version> atomically (copy, then rename)."""
    import shutil

    target = os.path.join(base, model, str(version))
    staging = os.path.join(base, model, f".staging-{version}")
    shutil.copytree(exported, staging)
    os.rename(staging, target)
    return target
