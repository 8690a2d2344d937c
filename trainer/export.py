"""SavedModel export with the serving signatures of the export contract.

For each task T of the config:
  T           predict   examples: string [None] serialized DMVR SequenceExamples
  T_raw       predict   image uint8 [None,None,None,3] | video uint8 [None,None,None,None,3]
                        | waveform float32 [None,None] (mono, the ingestion's sample_rate)
  T_classify  classify  inputs: string [None] serialized tf.Examples with the same DMVR keys
                        flattened (image/encoded bytes_list, WAVEFORM/feature/floats float_list)
  serving_default = the T signature of the first task.
Predict outputs: scores float32 [None, C] (softmax or sigmoid), classes string [None, C] (the
label of each column, from the task's vocabulary, baked into the graph as a constant), task
string [None]. Classify outputs: classes and scores only (what TF Serving's Classify accepts).

All decoding and preprocessing runs in the graph through the input pipeline's eval-mode
functions, the same code training evaluates with, so there is no train/serve skew. The
classify signature turns each tf.Example into the equivalent SequenceExample (see
`example_to_sequence_example`) and then runs exactly the T path. The T and T_raw inputs
pass `checked_input` first: a hostile request is refused in the graph, by TF Serving as by the
local server.
"""

from __future__ import annotations

import functools
import os

import tensorflow as tf

from core import features as keys
from core.config import Task, TrainerConfig

CLASSIFY_METHOD = "tensorflow/serving/classify"
PREDICT_METHOD = "tensorflow/serving/predict"
RAW_INPUTS = {
    "image": ("image", tf.TensorSpec([None, None, None, 3], tf.uint8, name="image")),
    "video": ("video", tf.TensorSpec([None, None, None, None, 3], tf.uint8, name="video")),
    "audio": ("waveform", tf.TensorSpec([None, None], tf.float32, name="waveform")),
}


def signature_names(config: TrainerConfig) -> list[str]:
    """Every signature the export writes, in a stable order."""
    names = []
    for task in config.tasks:
        names += [task.name, f"{task.name}_raw", f"{task.name}_classify"]
    return names + ["serving_default"]


# --------------------------------------------------------------------------------------------
# tf.Example -> SequenceExample, in the graph.


def _encode(message_type: str, fields: dict[str, tuple[tf.Tensor, tf.Tensor]]) -> tf.Tensor:
    """Serializes a batch of messages: field -> (values [n, k], counts [n]) -> string [n]."""
    names = list(fields)
    sizes = tf.stack([tf.cast(fields[f][1], tf.int32) for f in names], axis=1)
    return tf.io.encode_proto(sizes, [fields[f][0] for f in names], names, message_type)


def _one_each(values: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One value per message: (values [n, 1], counts [n] of ones)."""
    return values[:, None], tf.ones_like(values, dtype=tf.int32)


def example_to_sequence_example(serialized: tf.Tensor, modality: str) -> tf.Tensor:
    """Serialized tf.Examples [N] -> serialized DMVR SequenceExamples [N].

    A tf.Example's field 1 (Features) has the wire format of a SequenceExample's field 1
    (context), and concatenated protobuf messages merge; so each Example, followed by a
    SequenceExample holding only `feature_lists`, IS that SequenceExample with the Example's
    features as context. The feature list is built from the flattened key: one Feature per JPEG
    frame for images and video, one Feature holding the whole waveform for audio.
    """
    if modality == "audio":
        key = keys.WAVEFORM
        parsed = tf.io.parse_example(serialized, {key: tf.io.RaggedFeature(tf.float32)})[key]
        float_list = _encode(
            "tensorflow.FloatList", {"value": (parsed.to_tensor(), parsed.row_lengths())}
        )
        feature = _encode("tensorflow.Feature", {"float_list": _one_each(float_list)})
        per_example = _one_each(feature)
    else:
        key = keys.IMAGE_ENCODED
        parsed = tf.io.parse_example(serialized, {key: tf.io.RaggedFeature(tf.string)})[key]
        bytes_list = _encode("tensorflow.BytesList", {"value": _one_each(parsed.flat_values)})
        frames = parsed.with_flat_values(
            _encode("tensorflow.Feature", {"bytes_list": _one_each(bytes_list)})
        )
        per_example = (frames.to_tensor(), frames.row_lengths())
    feature_list = _encode("tensorflow.FeatureList", {"feature": per_example})
    entry = _encode(
        "tensorflow.FeatureLists.FeatureListEntry",
        {"key": _one_each(tf.fill(tf.shape(serialized), key)), "value": _one_each(feature_list)},
    )
    feature_lists = _encode("tensorflow.FeatureLists", {"feature_list": _one_each(entry)})
    tail = _encode("tensorflow.SequenceExample", {"feature_lists": _one_each(feature_lists)})
    return serialized + tail


# --------------------------------------------------------------------------------------------
# The request checks that live in the graph.


def _refuse_unless(ok: tf.Tensor, message: tf.Tensor | str, value: tf.Tensor) -> tf.Tensor:
    check = tf.debugging.Assert(ok, [message])
    with tf.control_dependencies([check]):
        return tf.identity(value)


def checked_input(alias: str, tensor: tf.Tensor) -> tf.Tensor:
    """A signature input after the checks of a request that live in the graph, so TF Serving
    and the local server refuse the same requests (INVALID_ARGUMENT, naming the input):
    serialized examples must not be empty and their waveform values must be finite (NaN or
    infinity would poison every score after them); a float tensor (a raw waveform) must be
    finite. The T and T_raw signatures and the serving tests' model call this one function.
    What needs the server's own limits or must be refused before anything is decoded (the
    message size, `serving.max_frames`, a record that does not parse) the server checks
    before the graph (serving/examples.py)."""
    if tensor.dtype == tf.string:
        lengths = tf.strings.length(tensor)
        first_empty = tf.argmax(tf.cast(lengths == 0, tf.int32))
        tensor = _refuse_unless(
            tf.reduce_all(lengths > 0),
            tf.strings.format(alias + "[{}]: the serialized example is empty", first_empty),
            tensor,
        )
        # The waveform is the contract's only float feature (a feature list, DMVR's layout).
        _, lists, _ = tf.io.parse_sequence_example(
            tensor, sequence_features={keys.WAVEFORM: tf.io.VarLenFeature(tf.float32)}
        )
        values = lists[keys.WAVEFORM]
        bad = tf.logical_not(tf.math.is_finite(values.values))
        rows = tf.boolean_mask(values.indices[:, 0], bad)
        return _refuse_unless(
            tf.equal(tf.size(rows), 0),
            tf.strings.format(
                f"{alias}[{{}}]: feature {keys.WAVEFORM} holds NaN or infinite values",
                tf.reduce_min(rows),  # only shown when there is one
            ),
            tensor,
        )
    if tensor.dtype.is_floating:
        return _refuse_unless(
            tf.reduce_all(tf.math.is_finite(tensor)),
            f"input {alias} holds NaN or infinite values",  # (TF escapes quotes)
            tensor,
        )
    return tensor


# --------------------------------------------------------------------------------------------
# The serving module.


def scores_from_logits(logits: tf.Tensor, label_type: str) -> tf.Tensor:
    logits = tf.cast(logits, tf.float32)
    return tf.nn.sigmoid(logits) if label_type == "multi" else tf.nn.softmax(logits, axis=-1)


def average_clips(scores: tf.Tensor, num_clips: int) -> tf.Tensor:
    """[N * K, C] scores, the K clips of an example adjacent -> [N, C] mean over clips."""
    if num_clips == 1:
        return scores
    return tf.reduce_mean(tf.reshape(scores, [-1, num_clips, scores.shape[-1]]), axis=1)


def _model_logits(model, features: dict, task: str) -> tf.Tensor:
    return model(features, task=task, training=False)


class _ServingModule(tf.Module):
    """Holds the model (so its variables are saved) and builds the per-task signatures."""

    def __init__(self, model, config: TrainerConfig, vocabularies, audio_mean, audio_std):
        super().__init__(name="polyvit_serving")
        # Only the variables are tracked: tracking the Keras model itself would make
        # tf.saved_model.save trace its `call` without a task, which has no meaning.
        self.model_variables = list(model.variables)
        self._logits = functools.partial(_model_logits, model)
        self._config = config
        self._vocabularies = vocabularies
        self._audio_norm = {"audio_mean": float(audio_mean), "audio_std": float(audio_std)}

    def _clips_for(self, task: Task) -> int:
        # Evaluation averages inputs.eval_clips clips per video or audio; a still image has one.
        return 1 if task.modality == "image" else self._config.inputs.eval_clips

    def _outputs(self, task: Task, features: dict, num_examples: tf.Tensor) -> dict:
        """Features [N, (K clips,) *shape] -> outputs, scores averaged over the K clips."""
        x = features[task.modality]
        clips = self._clips_for(task)
        if clips > 1:  # [N, K, ...] -> [N * K, ...]: an example's clips adjacent
            x = tf.reshape(x, [-1, *x.shape[2:]])
        logits = self._logits({task.modality: x}, task.name)
        scores = average_clips(scores_from_logits(logits, task.label_type), clips)
        vocabulary = tf.constant(self._vocabularies[task.name], tf.string)
        return {
            "scores": scores,
            "classes": tf.tile(vocabulary[None], [num_examples, 1]),
            "task": tf.fill([num_examples], task.name),
        }

    def _from_examples(self, task: Task, examples: tf.Tensor) -> dict:
        from transforms import input_pipeline

        features = input_pipeline.preprocess_serialized(
            examples, task, self._config.inputs, **self._preprocess_args(task)
        )
        return self._outputs(task, features, tf.shape(examples)[0])

    def _from_raw(self, task: Task, tensor: tf.Tensor) -> dict:
        from transforms import input_pipeline

        sample_rate = self._config.sample_rate if task.modality == "audio" else None
        features = input_pipeline.preprocess_raw(
            tensor,
            task,
            self._config.inputs,
            sample_rate=sample_rate,
            **self._preprocess_args(task),
        )
        return self._outputs(task, features, tf.shape(tensor)[0])

    def _preprocess_args(self, task: Task) -> dict:
        """The evaluation preprocessing both signature kinds share (so they agree)."""
        return {"num_clips": self._clips_for(task), **self._audio_norm}

    def signatures(self, task: Task) -> dict[str, tf.types.experimental.ConcreteFunction]:
        examples_spec = tf.TensorSpec([None], tf.string, name="examples")

        @tf.function(input_signature=[examples_spec])
        def examples_fn(examples):
            return self._from_examples(task, checked_input("examples", examples))

        raw_name, raw_spec = RAW_INPUTS[task.modality]
        # A signature's input names come from the Python argument names.
        raw_fn = {
            "image": lambda image: self._from_raw(task, image),
            "video": lambda video: self._from_raw(task, video),
            "waveform": lambda waveform: self._from_raw(task, checked_input("waveform", waveform)),
        }[raw_name]
        raw_fn = tf.function(raw_fn, input_signature=[raw_spec])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def classify_fn(inputs):
            examples = example_to_sequence_example(inputs, task.modality)
            out = self._from_examples(task, examples)
            return {"classes": out["classes"], "scores": out["scores"]}

        return {
            task.name: examples_fn.get_concrete_function(),
            f"{task.name}_raw": raw_fn.get_concrete_function(),
            f"{task.name}_classify": classify_fn.get_concrete_function(),
        }


def check_vocabularies(config: TrainerConfig, vocabularies: dict[str, list[str]]) -> None:
    for task in config.tasks:
        labels = vocabularies.get(task.name)
        if labels is None:
            raise ValueError(f"export: no label vocabulary for task {task.name!r}")
        if len(labels) != task.num_classes:
            raise ValueError(
                f"export: the vocabulary of task {task.name!r} has {len(labels)} labels, "
                f"tasks.{task.name}.num_classes is {task.num_classes}"
            )


def _set_method_names(export_dir: str, methods: dict[str, str]) -> None:
    """tf.saved_model.save marks every signature `predict`; TF Serving's Classify RPC checks
    for `classify`, so the method name is rewritten in saved_model.pb after saving, and the
    fingerprint (a checksum of saved_model.pb) is written again to match."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.saved_model import fingerprinting_utils

    path = os.path.join(export_dir, "saved_model.pb")
    saved = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved.ParseFromString(f.read())
    for meta_graph in saved.meta_graphs:
        for name, method in methods.items():
            meta_graph.signature_def[name].method_name = method
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(saved.SerializeToString())
    fingerprinting_utils.write_fingerprint(export_dir)


def export_saved_model(
    model,
    config: TrainerConfig,
    vocabularies: dict[str, list[str]],
    export_dir: str,
    *,
    audio_mean: float = 0.0,
    audio_std: float = 1.0,
    extra_signatures: dict | None = None,
    extra_modules: dict[str, tf.Module] | None = None,
) -> str:
    """Writes the SavedModel with every signature of the export contract; returns export_dir.

    `extra_signatures` (name -> concrete function over the same model's variables, e.g.
    trainer/eval_signatures.py's TFMA signatures) are added as `predict` signatures.
    `extra_modules` (attribute name -> a tf.Module with its own variables and a `signatures()`
    method, e.g. trainer/vatt/embed_export.py's embedding module) are saved inside the model
    and their signatures added too. A name that collides with another signature is an error.
    """
    check_vocabularies(config, vocabularies)
    extra_modules = extra_modules or {}
    extra_signatures = dict(extra_signatures or {})
    for attribute, extra in extra_modules.items():
        for name, function in extra.signatures().items():
            if name == "serving_default":
                continue  # the model's serving_default stays the first task's
            if name in extra_signatures:
                raise ValueError(f"export: {attribute}'s signature {name!r} is given twice")
            extra_signatures[name] = function
    for name in extra_signatures:
        if name in signature_names(config):
            raise ValueError(f"export: extra signature {name!r} collides with a contract one")
    module = _ServingModule(model, config, vocabularies, audio_mean, audio_std)
    for attribute, extra in extra_modules.items():
        setattr(module, attribute, extra)  # tracked, so its variables and tables are saved
    signatures = {}
    for task in config.tasks:
        signatures.update(module.signatures(task))
    signatures["serving_default"] = signatures[config.tasks[0].name]
    signatures.update(extra_signatures)
    tf.saved_model.save(module, export_dir, signatures=signatures)
    _set_method_names(export_dir, {f"{t.name}_classify": CLASSIFY_METHOD for t in config.tasks})
    return export_dir
