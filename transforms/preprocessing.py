"""Transform's `preprocessing_fn`: the statistics training and serving need from a full pass.

TFX's Transform component runs `preprocessing_fn` over the train split of MediaExampleGen's
DMVR SequenceExamples (read as tensors through the curated schema's tensor representations,
core/schema/schema.pbtxt) and writes a TransformGraph artifact holding, as assets:

    labels_<task>       the task's label vocabulary, one label per line, SORTED, over the labels
                        of that task's examples only: the ingestion's order, so the index of a
                        label here is its `clip/label/index` in the records (labelled tasks
                        only: an unlabelled one, `labelled: false`, has none)
    caption_vocabulary  with pretraining on: the pretraining task's caption words
                        (transforms/captions.py)
    audio_stats.json    mean and standard deviation of the log-mel features of every audio
                        task's waveforms (the input pipeline's own log-mel function), used to
                        normalise audio in training, evaluation and serving

Why not `tft.vocabulary` for the labels: it orders by decreasing frequency, ties broken in
REVERSE lexicographic order, so its indices would disagree with the records' label indices
(and the export's label strings). The vocabulary is therefore a small TFT analyzer of our own
(`tft.experimental.ptransform_analyzer`) that writes the sorted distinct labels, registered with
`tft.annotate_asset` under the same name `tft.vocabulary(vocab_filename=...)` would use, so
`TFTransformOutput.vocabulary_file_by_name(f"labels_{task}")` finds it. The caption vocabulary
is the same analyzer (`_text_asset`) with another text function. The audio moments are
summed in float64 (count, sum, sum of squares) by the same kind of analyzer, which also writes
them to a file, because run_fn and export need plain numbers, not graph tensors.

Transform runs with `materialize=False` (copying video is too costly) and nothing reads its
transformed features: training and serving parse the records themselves and take only the
assets. Its one output is the task name, passed through, because a transform graph must have
an output. (Label indices from `tft.apply_vocabulary` would build a lookup table inside TFT's
tf.function, which TFT warns about, for a feature nobody reads.)

Entry points: `preprocessing_fn(inputs, custom_config)` (the module path given to Transform is
`transforms.preprocessing`), `to_custom_config(transform_config(config))` (its custom_config:
the tasks and the `inputs` section only, from core.config) and
`read_transform_stats(transform_output_dir)` (for run_fn and export).
"""

from __future__ import annotations

import functools
import json
import os
import uuid

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam

from core import config as config_lib
from core import features as keys
from transforms import captions
from transforms.audio import resample
from transforms.input_pipeline import log_mel_spectrogram

AUDIO_STATS = "audio_stats.json"


def vocabulary_name(task: str) -> str:
    """The asset (and vocabulary) name of a task's labels: what `tft.vocabulary` would use."""
    return f"labels_{task}"


# --------------------------------------------------------------------------------------------
# Beam analyzers (run once over the whole analysed split).


def _write_text(directory: str, name: str, text: str) -> str:
    """Writes `text` to <directory>/<uuid>/<name>: the asset keeps `name` as its basename."""
    folder = os.path.join(directory, uuid.uuid4().hex)
    tf.io.gfile.makedirs(folder)
    path = os.path.join(folder, name)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(text)
    return path


def sorted_vocabulary_text(labels, task: str) -> str:
    """The vocabulary file's text: distinct labels, sorted, one per line. Pure, for tests."""
    labels = sorted({label.decode() if isinstance(label, bytes) else label for label in labels})
    if not labels:
        raise ValueError(
            f"Transform: task {task!r} has no labelled example in the analysed split, so it "
            "has no label vocabulary; check tasks.{task}.data and the ingestion's quarantine"
        )
    bad = [label for label in labels if not label or "\n" in label or "\r" in label]
    if bad:
        raise ValueError(
            f"Transform: task {task!r} has labels a line-based file cannot hold: {bad}"
        )
    return "".join(f"{label}\n" for label in labels)


class _TextAsset(tft_beam.experimental.PTransformAnalyzer):
    """Batches of strings -> the path of a file `name` whose text is `text_of(every string)`
    (each distinct string once when `distinct`): the label and caption vocabularies."""

    def __init__(self, name: str, text_of, distinct: bool):
        super().__init__()
        self._name, self._text_of, self._distinct = name, text_of, distinct

    def expand(self, batches):
        name, text_of = self._name, self._text_of

        def write(values):
            return np.array(_write_text(self.base_temp_dir, name, text_of(values)).encode())

        values = batches | "Values" >> beam.FlatMap(lambda batch: batch[0].tolist())
        if self._distinct:
            values = values | "Distinct" >> beam.Distinct()
        return values | "ToList" >> beam.combiners.ToList() | "Write" >> beam.Map(write)


def _text_asset(values: tf.Tensor, name: str, text_of, distinct: bool = False) -> None:
    """Registers the asset `name` (a text file computed from every analysed value of the 1-D
    string tensor `values`) in the TransformGraph, where
    `TFTransformOutput.vocabulary_file_by_name(name)` finds it."""
    tft.experimental.ptransform_analyzer(
        inputs=[values],
        ptransform=_TextAsset(name, text_of, distinct),
        output_dtypes=[tf.string],
        output_shapes=[[]],
        output_asset_default_values=[b"__not_analysed_yet__"],
        name=f"asset_{name}",
    )
    tft.annotate_asset(name, name)


def moments_to_stats(count: float, total: float, total_squares: float) -> dict:
    """Mean and standard deviation from float64 moments. Pure, for tests."""
    if count <= 0:
        return {"audio_mean": 0.0, "audio_std": 1.0, "count": 0}
    mean = total / count
    variance = max(total_squares / count - mean * mean, 0.0)
    std = float(np.sqrt(variance))
    if not std > 0.0:
        raise ValueError(
            "Transform: the log-mel features of the audio tasks are constant "
            f"(mean {mean}, {int(count)} values); cannot normalise them"
        )
    return {"audio_mean": float(mean), "audio_std": std, "count": int(count)}


class _AudioMoments(tft_beam.experimental.PTransformAnalyzer):
    """Per-batch (count, sum, sum of squares) -> the path of the stats file (JSON)."""

    def __init__(self, has_audio: bool):
        super().__init__()
        self._has_audio = has_audio

    def expand(self, batches):
        has_audio = self._has_audio

        def finish(moments):
            stats = moments_to_stats(*moments)
            if has_audio and stats["count"] == 0:
                raise ValueError(
                    "Transform: the config has audio tasks but no analysed record of theirs "
                    f"holds a waveform of at least one window ({keys.WAVEFORM})"
                )
            path = _write_text(self.base_temp_dir, AUDIO_STATS, json.dumps(stats, indent=2))
            return np.array(path.encode())

        return (
            batches
            | "Moments" >> beam.Map(lambda batch: np.asarray(batch[0], np.float64))
            | "Sum" >> beam.CombineGlobally(_sum_arrays)
            | "Write" >> beam.Map(finish)
        )


def _sum_arrays(rows) -> np.ndarray:
    return np.sum(list(rows), axis=0) if rows else np.zeros(3)


# --------------------------------------------------------------------------------------------
# In-graph pieces.


def _task_names(inputs: dict) -> tf.Tensor:
    """string [B]: each record's task (dense [B, 1] in the schema)."""
    return tf.reshape(inputs[keys.TASK], [-1])


def _rows(tensor) -> tf.RaggedTensor:
    """A sparse [B, k] context feature as ragged [B, (k)]."""
    if isinstance(tensor, tf.SparseTensor):
        return tf.RaggedTensor.from_sparse(tensor)
    return tensor


def _first_or(tensor, default) -> tf.Tensor:
    """One value per record of a sparse/ragged [B, (k)] feature, `default` where absent."""
    return _rows(tensor).to_tensor(default_value=default, shape=[None, 1])[:, 0]


def _waveforms(inputs: dict) -> tf.RaggedTensor:
    """float32 ragged [B, (samples)]: the feature list's Features concatenated (see parsing)."""
    waveform = inputs[keys.WAVEFORM]
    if not isinstance(waveform, tf.RaggedTensor):
        raise ValueError(
            f"preprocessing_fn: {keys.WAVEFORM} must arrive as a ragged tensor (the schema's "
            "tensor_representation_group); got a " + type(waveform).__name__
        )
    return waveform.merge_dims(1, -1) if waveform.ragged_rank > 1 else waveform


def log_mel_moments(waveforms: tf.RaggedTensor, rates: tf.Tensor, inputs_config) -> tf.Tensor:
    """float64 [3]: count, sum and sum of squares of the log-mel values of every waveform,
    each resampled to the model's rate first exactly as the input pipeline does."""

    def one(args):
        waveform, rate = args
        waveform = resample(waveform, rate, inputs_config.audio_sample_rate)
        # A waveform shorter than one window gives no frame, hence adds nothing.
        values = tf.cast(log_mel_spectrogram(waveform, inputs_config), tf.float64)
        return tf.stack(
            [
                tf.cast(tf.size(values), tf.float64),
                tf.reduce_sum(values),
                tf.reduce_sum(tf.square(values)),
            ]
        )

    per_record = tf.map_fn(
        one, (waveforms, rates), fn_output_signature=tf.TensorSpec([3], tf.float64)
    )
    return tf.reduce_sum(per_record, axis=0)


def preprocessing_fn(inputs: dict, custom_config: dict | None = None) -> dict:
    """TFX Transform's entry point.

    `custom_config`: `core.config.to_custom_config(core.config.transform_config(config))`.
    """
    config = config_lib.from_custom_config(
        custom_config, config_lib.TransformConfig, "preprocessing_fn"
    )
    for key in (keys.TASK, keys.LABEL_TEXT):
        if key not in inputs:
            raise ValueError(
                f"preprocessing_fn: no {key!r} tensor; the schema's tensor_representation_group "
                f"must represent it (core/schema/schema.pbtxt). Have {sorted(inputs)}"
            )
    tasks = _task_names(inputs)
    labels = _rows(inputs[keys.LABEL_TEXT])
    outputs = {"task": tasks}  # the graph's one output (see the module docstring)
    for task in config_lib.labelled_tasks(config.tasks):  # an unlabelled task has no classes
        task_labels = tf.ragged.boolean_mask(labels, tf.equal(tasks, task.name)).flat_values
        _text_asset(
            task_labels,
            vocabulary_name(task.name),
            functools.partial(sorted_vocabulary_text, task=task.name),
            distinct=True,
        )

    audio_tasks = [t.name for t in config.tasks if t.modality == "audio"]
    is_audio = tf.reduce_any(
        tf.stack([tf.equal(tasks, name) for name in audio_tasks] or [tf.zeros_like(tasks, bool)]),
        axis=0,
    )
    if audio_tasks and keys.WAVEFORM not in inputs:
        raise ValueError(
            f"preprocessing_fn: the config has audio tasks {audio_tasks} but there is no "
            f"{keys.WAVEFORM!r} tensor; represent it in the schema's tensor_representation_group"
        )
    if audio_tasks:
        waveforms = tf.ragged.boolean_mask(_waveforms(inputs), is_audio)
        rates = tf.boolean_mask(
            _first_or(inputs[keys.SAMPLE_RATE], tf.constant(0, tf.int64)), is_audio
        )
        moments = log_mel_moments(waveforms, rates, config.inputs)
    else:
        moments = tf.zeros([3], tf.float64)
    # Its output (the file's path) is registered as an asset by TFT, which copies the file
    # into the TransformGraph; nothing in the graph needs to read it.
    tft.experimental.ptransform_analyzer(
        inputs=[moments],
        ptransform=_AudioMoments(bool(audio_tasks)),
        output_dtypes=[tf.string],
        output_shapes=[[]],
        output_asset_default_values=[b"{}"],
        name="audio_moments",
    )
    tft.annotate_asset(AUDIO_STATS, AUDIO_STATS)
    if config.pretraining.enabled:
        _caption_vocabulary(inputs, tasks, config.pretraining)
    return outputs


def _caption_vocabulary(inputs: dict, tasks: tf.Tensor, pretraining) -> None:
    """The caption vocabulary asset from the pretraining task's captions (every candidate)."""
    if keys.CAPTION not in inputs:
        raise ValueError(
            f"preprocessing_fn: pretraining needs {keys.CAPTION!r}; represent it in the schema"
        )
    texts = tf.ragged.boolean_mask(_rows(inputs[keys.CAPTION]), tf.equal(tasks, pretraining.task))
    words = captions.caption_words(texts.flat_values).flat_values
    _text_asset(
        words,
        captions.VOCABULARY_ASSET,
        functools.partial(captions.vocabulary_text, size=pretraining.vocab_size),
    )


# --------------------------------------------------------------------------------------------
# Reading the TransformGraph artifact.


def read_transform_stats(transform_output_dir: str) -> dict:
    """What run_fn and export need from a TransformGraph artifact's directory:
    {"audio_mean": float, "audio_std": float, "vocabularies": {task: path of labels_<task>}}."""
    output = tft.TFTransformOutput(transform_output_dir)
    stats_path = output.vocabulary_file_by_name(AUDIO_STATS)
    if not stats_path:
        raise FileNotFoundError(
            f"{transform_output_dir}: no {AUDIO_STATS} asset; was the TransformGraph made by "
            "transforms.preprocessing?"
        )
    with tf.io.gfile.GFile(stats_path) as f:
        stats = json.load(f)
    assets = os.path.join(output.transform_savedmodel_dir, "assets")
    prefix = vocabulary_name("")
    vocabularies = {
        name[len(prefix) :]: os.path.join(assets, name)
        for name in sorted(tf.io.gfile.listdir(assets))
        if name.startswith(prefix)
    }
    caption_vocabulary = output.vocabulary_file_by_name(captions.VOCABULARY_ASSET)
    return {
        "caption_vocabulary": caption_vocabulary or "",
        "audio_mean": float(stats["audio_mean"]),
        "audio_std": float(stats["audio_std"]),
        "audio_values": int(stats["count"]),
        "vocabularies": vocabularies,
    }


def read_vocabularies(stats: dict) -> dict[str, list[str]]:
    """{task: labels in index order} from `read_transform_stats(...)["vocabularies"]`."""
    result = {}
    for task, path in stats["vocabularies"].items():
        with tf.io.gfile.GFile(path) as f:
            result[task] = [line.rstrip("\n") for line in f if line.rstrip("\n")]
    return result
