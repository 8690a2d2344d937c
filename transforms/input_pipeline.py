"""Input pipelines for training and evaluation, and the in-graph preprocessors of the serving
signatures: one implementation, so the model is served exactly what it was evaluated on.

Each record goes through DMVR-style phases of small functions on tensors:
    parse       parsing.py   SequenceExample -> encoded frames / waveform, label indices
    sample      video.py     clip frame indices (random in training, evenly spaced in eval)
                audio.py     waveform windows (same rule), silence-padded when short
    decode      video.py     JPEG decode of the sampled frames only
    preprocess  video.py     random resized crop + flip (training) or central crop; [-1, 1]
                audio.py     log-mel, fixed-statistics normalisation, SpecAugment (training)
then the batch phase (augment.py: mixup, training only). Every random op is stateless and
seeded from (seed, input pipeline, element index): a run is reproducible from its seed.

Shapes are static and batches are full (drop_remainder), so the graph compiles for TPU.

Training may cache the deterministic phases (`cache=`, the config's `training.cache_decoded`):
parse, decode of every frame, labels, and for audio the log-mel of the whole clip, run once;
after the cache the sample and preprocess phases run per step with the same seeds, and a
spectrogram clip is a crop of F frames of the cached log-mel (a hop-aligned window, exact).
Records are still shuffled anew every epoch (memory: a full permutation of the cached records;
file: the files' order as before, one cache file per record file, then the record buffer).
"""

from __future__ import annotations

import hashlib
import logging
import os

import numpy as np
import tensorflow as tf

from core.config import Inputs, Task
from media import fs
from transforms import audio, video
from transforms.audio import log_mel_spectrogram
from transforms.augment import mixup
from transforms.parsing import (
    AUDIO,
    IMAGE,
    MODALITIES,
    VIDEO,
    checked_waveform,
    indices_by_text,
    label_vector,
    parse_label_indices,
    parse_record,
    vocabulary_table,
)

__all__ = [
    "CACHE_MODES",
    "choose_cache",
    "feature_shape",
    "log_mel_spectrogram",
    "make_dataset",
    "modality_key",
    "preprocess_raw",
    "preprocess_serialized",
    "record_features",
    "record_labels",
]

# Seed streams: per-example augmentation and per-batch mixup never share random numbers.
_EXAMPLE_STREAM, _BATCH_STREAM = 0, 1

CACHE_MODES = ("auto", "memory", "file", "off")

log = logging.getLogger("polyvit.input")


def modality_key(task: Task) -> str:
    """The features key (and model tokenizer) of a task: "image", "video" or "audio"."""
    if task.modality not in MODALITIES:
        raise ValueError(
            f"tasks.{task.name}.modality: {task.modality!r} is not one of {MODALITIES}"
        )
    return task.modality


def _shape_for(modality: str, inputs: Inputs) -> tuple[int, ...]:
    if modality == IMAGE:
        return (inputs.image_size, inputs.image_size, 3)
    if modality == VIDEO:
        return (inputs.num_frames, inputs.video_size, inputs.video_size, 3)
    return (audio.num_spectrogram_frames(inputs), inputs.num_mel_bins, 1)


def feature_shape(task: Task, inputs: Inputs) -> tuple[int, ...]:
    """Static per-example model input shape: image (S, S, 3); video (T, S, S, 3); audio
    log-mel (F, M, 1) with F = 1 + (clip_samples - window) // hop (see audio.py)."""
    return _shape_for(modality_key(task), inputs)


def _check_num_clips(task: Task, modality: str, num_clips: int) -> None:
    """Fails before any graph is built on a bad `num_clips` argument (the config's values were
    checked when it loaded: core.config)."""
    if num_clips < 1:
        raise ValueError(f"num_clips: must be at least 1, got {num_clips}")
    if modality == IMAGE and num_clips > 1:
        raise ValueError(
            f"num_clips: {num_clips} clips of a still image (task {task.name!r}) would be copies; "
            "use 1 for image tasks"
        )


def _pipeline_seed(seed: int, pipeline_id: int) -> int:
    """A distinct shuffle seed per (seed, pipeline) pair."""
    return (seed * 1_000_003 + pipeline_id) % (2**31 - 1)


def _fold(seed: tf.Tensor | None, stream: int) -> tf.Tensor | None:
    return None if seed is None else tf.random.experimental.stateless_fold_in(seed, stream)


def _drop_single_clip(features: tf.Tensor, num_clips: int) -> tf.Tensor:
    """[num_clips, ...] -> [...] when there is one clip, as the model expects."""
    return features[0] if num_clips == 1 else features


def visual_features(
    frames: tf.Tensor,
    modality: str,
    inputs: Inputs,
    *,
    training: bool,
    num_clips: int = 1,
    seed: tf.Tensor | None = None,
    encoded: bool = True,
    filename: tf.Tensor | str = "",
) -> tf.Tensor:
    """Frames [T] (encoded JPEGs) or [T, H, W, 3] (uint8) -> float32 [num_clips, *shape]."""
    num_frames = 1 if modality == IMAGE else inputs.num_frames
    size = inputs.image_size if modality == IMAGE else inputs.video_size
    indices = video.sample_frame_indices(
        tf.shape(frames)[0],
        inputs,
        num_frames,
        num_clips,
        training=training,
        seed=_fold(seed, 0),
        filename=filename,
    )
    clips = video.decode_frames(frames, indices) if encoded else tf.gather(frames, indices)
    clips = video.preprocess_clips(clips, inputs, size, training=training, seed=_fold(seed, 1))
    return clips[:, 0] if modality == IMAGE else clips


def record_features(
    serialized: tf.Tensor,
    task: Task,
    inputs: Inputs,
    *,
    training: bool,
    num_clips: int = 1,
    seed: tf.Tensor | None = None,
    audio_mean: float | tf.Tensor = 0.0,
    audio_std: float | tf.Tensor = 1.0,
    modality: str | None = None,
) -> tf.Tensor:
    """One serialized record -> float32 [*feature_shape] (or [num_clips, *feature_shape]).
    `modality` overrides the task's, e.g. "audio" for a video record's soundtrack."""
    modality = modality or modality_key(task)
    parsed = parse_record(serialized, modality)
    if modality == AUDIO:
        waveform, rate = checked_waveform(parsed, task)
        features = audio.waveform_features(
            waveform,
            rate,
            inputs,
            num_clips,
            training=training,
            seed=seed,
            audio_mean=audio_mean,
            audio_std=audio_std,
            filename=parsed["filename"],
        )
    else:
        features = visual_features(
            parsed["frames"],
            modality,
            inputs,
            training=training,
            num_clips=num_clips,
            seed=seed,
            filename=parsed["filename"],
        )
    return _drop_single_clip(features, num_clips)


def record_labels(
    serialized: tf.Tensor, task: Task, table: tf.lookup.StaticHashTable | None = None
) -> tf.Tensor:
    """float32 [num_classes]: one-hot (single-label) or multi-hot (multi). With `table` (the
    task's vocabulary, parsing.vocabulary_table) labels come from `clip/label/text` where the
    record has texts, else from `clip/label/index`."""
    parsed = parse_label_indices(serialized)
    indices = indices_by_text(parsed, table)
    return label_vector(indices, task.num_classes, task.label_type, parsed["filename"])


def decoded_record(
    serialized: tf.Tensor,
    task: Task,
    inputs: Inputs,
    modality: str,
    table: tf.lookup.StaticHashTable | None = None,
) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """The deterministic phases of a training record, to cache: ({"frames": uint8 [T, H, W, 3]
    (every frame decoded) or "log_mel": float32 [frames, M] (the whole clip), "filename"},
    labels). The same checks as record_features, with the same messages."""
    parsed = parse_record(serialized, modality)
    decoded = {"filename": parsed["filename"]}
    if modality == AUDIO:
        waveform, rate = checked_waveform(parsed, task)
        decoded["log_mel"] = audio.whole_clip_log_mel(waveform, rate, inputs, parsed["filename"])
    else:
        frames = parsed["frames"]
        decoded["frames"] = video.decode_frames(frames, tf.range(tf.shape(frames)[0]))
    return decoded, record_labels(serialized, task, table)


def augmented_features(
    decoded: dict[str, tf.Tensor],
    inputs: Inputs,
    modality: str,
    *,
    num_clips: int,
    seed: tf.Tensor,
    audio_mean: float | tf.Tensor = 0.0,
    audio_std: float | tf.Tensor = 1.0,
) -> tf.Tensor:
    """The per-step phases on a decoded record (training): what record_features(training=True)
    gives for the same seed, audio clips starting on a hop boundary."""
    if modality == AUDIO:
        features = audio.spectrogram_clip_features(
            decoded["log_mel"],
            inputs,
            num_clips,
            training=True,
            seed=seed,
            audio_mean=audio_mean,
            audio_std=audio_std,
        )
    else:
        features = visual_features(
            decoded["frames"],
            modality,
            inputs,
            training=True,
            num_clips=num_clips,
            seed=seed,
            encoded=False,
            filename=decoded["filename"],
        )
    return _drop_single_clip(features, num_clips)


# --------------------------------------------------------------------------------------------
# tf.data


def _list_files(file_pattern: str) -> list[str]:
    files = sorted(tf.io.gfile.glob(file_pattern))
    if not files:
        raise FileNotFoundError(f"no records match {file_pattern}")
    return files


def file_compressions(files: list[str]) -> list[str]:
    """TFRecordDataset's compression type per file ("GZIP" or ""), from the files' first bytes:
    records of MediaExampleGen (either `ingestion.compression`), DMVR's generator and other
    tools read alike, whatever their names say."""
    return [fs.record_compression(path) for path in files]


def _read_records(
    files: list[str],
    *,
    training: bool,
    seed: int,
    input_context: tf.distribute.InputContext | None,
    shuffle_buffer: int,
) -> tf.data.Dataset:
    """Serialized records of this input pipeline's shard, shuffled in training.

    With at least as many files as pipelines each pipeline reads its own files; otherwise all
    read every file in the same order and keep every n-th record, so shards never overlap."""
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    shard_files = num_pipelines > 1 and len(files) >= num_pipelines
    if shard_files:
        files = files[pipeline_id::num_pipelines]
    ds = tf.data.Dataset.from_tensor_slices((files, file_compressions(files)))
    if training:
        # The same seed in every pipeline: when records are sharded, all pipelines must read
        # the files in the same order for their every-n-th records to be disjoint.
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda path, compression: tf.data.TFRecordDataset(path, compression_type=compression),
        cycle_length=tf.data.AUTOTUNE,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if num_pipelines > 1 and not shard_files:
        ds = ds.shard(num_pipelines, pipeline_id)
    if training:
        ds = ds.shuffle(
            shuffle_buffer, seed=_pipeline_seed(seed, pipeline_id), reshuffle_each_iteration=True
        )
    return ds


def _shard_plan(files: list[str], input_context: tf.distribute.InputContext | None):
    """(this pipeline's files, (num_pipelines, pipeline_id) to shard records by, or None)."""
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    if num_pipelines > 1 and len(files) >= num_pipelines:
        return files[pipeline_id::num_pipelines], None
    return files, ((num_pipelines, pipeline_id) if num_pipelines > 1 else None)


def _element_bytes(element) -> int:
    return sum(
        len(t.numpy()) if t.dtype == tf.string else int(t.numpy().nbytes)
        for t in tf.nest.flatten(element)
    )


def _count_and_estimate(records: tf.data.Dataset, decode) -> tuple[int, int]:
    """(records in the shard, their estimated decoded bytes: count x the first one's)."""
    count = int(records.reduce(np.int64(0), lambda n, _: n + 1))
    first = next(iter(records.take(1).map(decode)), None)
    return count, (count * _element_bytes(first) if first is not None else 0)


def choose_cache(
    mode: str, records: tf.data.Dataset, decode, *, file_bytes: int, max_mb: int
) -> tuple[str, int | None]:
    """("memory" | "file" | "off", the record count when it was counted). "auto" is memory when
    the decoded records are estimated (count x the first record's decoded bytes) to fit
    `max_mb`; record files already larger than that are not read to find out (decoded frames
    outweigh their JPEGs)."""
    if mode not in CACHE_MODES:
        raise ValueError(f"training.cache_decoded: {mode!r} is not one of {list(CACHE_MODES)}")
    if mode != "auto":
        return mode, None
    budget = max_mb * 2**20
    if file_bytes > budget:
        return "off", None
    count, estimate = _count_and_estimate(records, decode)
    return ("memory" if estimate <= budget else "off"), count


def _cache_path(cache_dir: str, path: str, key: str) -> str:
    """A cache file per record file, named by what its decoded content depends on."""
    stat = tf.io.gfile.stat(path)
    digest = hashlib.sha256(repr((path, stat.length, stat.mtime_nsec, key)).encode()).hexdigest()
    return f"{cache_dir.rstrip('/')}/{os.path.basename(path)}-{digest[:16]}"


def _decoded_records(
    files: list[str],
    decode,
    *,
    mode: str,
    count: int | None,
    seed: int,
    input_context: tf.distribute.InputContext | None,
    shuffle_buffer: int,
    cache_dir: str,
    cache_key: str,
) -> tf.data.Dataset:
    """Decoded training records of this pipeline's shard, decoded once and shuffled anew every
    epoch. memory: one cache, then a shuffle over all cached records (a full permutation per
    epoch, which is at least as random as today's file order + buffer); file: the files in a
    new order each epoch, each read through its own cache file, then the record buffer."""
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    record_seed = _pipeline_seed(seed, pipeline_id)
    if mode == "memory":
        records = _read_records(
            files, training=False, seed=seed, input_context=input_context, shuffle_buffer=1
        )
        if count is None:
            count = int(records.reduce(np.int64(0), lambda n, _: n + 1))
        ds = records.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()
        return ds.shuffle(max(count, 1), seed=record_seed, reshuffle_each_iteration=True)
    if not cache_dir:
        raise ValueError("training.cache_decoded: 'file' needs a cache folder (cache_dir)")
    tf.io.gfile.makedirs(cache_dir)
    files, record_shard = _shard_plan(files, input_context)
    key = f"{cache_key}|{record_shard}"
    paths = [_cache_path(cache_dir, path, key) for path in files]
    ds = tf.data.Dataset.from_tensor_slices((files, file_compressions(files), paths))
    ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda path, compression, cache_path: tf.data.TFRecordDataset(
            path, compression_type=compression
        )
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .cache(cache_path),
        cycle_length=tf.data.AUTOTUNE,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if record_shard:
        ds = ds.shard(*record_shard)
    return ds.shuffle(shuffle_buffer, seed=record_seed, reshuffle_each_iteration=True)


def make_dataset(
    file_pattern: str,
    task: Task,
    inputs: Inputs,
    *,
    training: bool,
    batch_size: int,
    seed: int = 0,
    input_context: tf.distribute.InputContext | None = None,
    num_clips: int = 1,
    repeat: bool | None = None,
    audio_mean: float = 0.0,
    audio_std: float = 1.0,
    modality: str | None = None,
    drop_remainder: bool = True,
    vocabulary: list[str] | None = None,
    cache: str = "off",
    cache_dir: str = "",
    cache_max_mb: int = 1024,
) -> tf.data.Dataset:
    """(features, labels) batches of one task's records.

    features: {modality_key(task): float32 [batch_size, *feature_shape]} (with num_clips > 1,
    [batch_size, num_clips, *feature_shape]); labels: float32 [batch_size, num_classes].
    `batch_size` is the size of the batches THIS dataset yields: under
    distribute_datasets_from_function pass `input_context.get_per_replica_batch_size(global)`.
    `repeat` defaults to `training`. `drop_remainder=False` keeps an evaluation's last partial
    batch (dynamic batch dimension: not for TPU). Each file's compression (none or gzip) is
    detected from its first bytes. `vocabulary` (the task's labels in index order) maps records
    by their `clip/label/text`, for records numbered by another tool; an unknown text fails.
    Audio: each record's sample rate, else `task.data.sample_rate`, else an error; NaN or
    infinite samples fail naming the record. `cache` ("auto", "memory", "file" with
    `cache_dir`, or "off"; training only, see the module's docstring and choose_cache) decodes
    each record once; evaluation always decodes as serving does."""
    modality = modality or modality_key(task)
    _check_num_clips(task, modality, num_clips)
    if batch_size <= 0:
        raise ValueError(f"batch_size: must be positive, got {batch_size}")
    if repeat is None:
        repeat = training
    files = _list_files(file_pattern)
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    base_seed = tf.constant([seed, pipeline_id], tf.int64)
    table = vocabulary_table(vocabulary) if vocabulary is not None else None
    example_seed = tf.random.experimental.stateless_fold_in(base_seed, _EXAMPLE_STREAM)

    mode, count = "off", None
    if training:

        def decode(serialized):
            return decoded_record(serialized, task, inputs, modality, table)

        mode, count = choose_cache(
            cache,
            _read_records(
                files, training=False, seed=seed, input_context=input_context, shuffle_buffer=1
            ),
            decode,
            file_bytes=sum(tf.io.gfile.stat(path).length for path in files),
            max_mb=cache_max_mb,
        )
        log.info("task %s: training input cache %s (asked: %s)", task.name, mode, cache)
    if mode != "off":
        ds = _decoded_records(
            files,
            decode,
            mode=mode,
            count=count,
            seed=seed,
            input_context=input_context,
            shuffle_buffer=inputs.shuffle_buffer,
            cache_dir=cache_dir,
            cache_key=repr(
                (modality, task.num_classes, task.label_type, task.data.sample_rate, inputs)
                + (vocabulary,)
            ),
        )
        if repeat:
            ds = ds.repeat()

        def augment(index, element):
            decoded, labels = element
            features = augmented_features(
                decoded,
                inputs,
                modality,
                num_clips=num_clips,
                seed=tf.random.experimental.stateless_fold_in(example_seed, index),
                audio_mean=audio_mean,
                audio_std=audio_std,
            )
            return {modality: features}, labels

        ds = ds.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return _batch(ds, inputs, batch_size, drop_remainder, training, base_seed)

    ds = _read_records(
        files,
        training=training,
        seed=seed,
        input_context=input_context,
        shuffle_buffer=inputs.shuffle_buffer,
    )
    if repeat:
        ds = ds.repeat()

    def process(index, serialized):
        element_seed = (
            tf.random.experimental.stateless_fold_in(example_seed, index) if training else None
        )
        features = record_features(
            serialized,
            task,
            inputs,
            training=training,
            num_clips=num_clips,
            seed=element_seed,
            audio_mean=audio_mean,
            audio_std=audio_std,
            modality=modality,
        )
        return {modality: features}, record_labels(serialized, task, table)

    ds = ds.enumerate().map(process, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return _batch(ds, inputs, batch_size, drop_remainder, training, base_seed)


def _batch(ds, inputs, batch_size, drop_remainder, training, base_seed) -> tf.data.Dataset:
    """The batch phase: batches, mixup (training), prefetch."""
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if training and inputs.mixup_alpha > 0:
        batch_seed = tf.random.experimental.stateless_fold_in(base_seed, _BATCH_STREAM)
        ds = ds.enumerate().map(
            lambda i, batch: mixup(
                batch[0],
                batch[1],
                inputs.mixup_alpha,
                tf.random.experimental.stateless_fold_in(batch_seed, i),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------------------------
# Serving: the evaluation path, in-graph, for a batch of unknown size.


def preprocess_serialized(
    serialized: tf.Tensor,
    task: Task,
    inputs: Inputs,
    *,
    num_clips: int = 1,
    audio_mean: float | tf.Tensor = 0.0,
    audio_std: float | tf.Tensor = 1.0,
    modality: str | None = None,
) -> dict[str, tf.Tensor]:
    """Serialized DMVR SequenceExamples [N] -> {modality: float32 [N, (num_clips,) *shape]},
    exactly what make_dataset(training=False) yields for the same records."""
    modality = modality or modality_key(task)
    _check_num_clips(task, modality, num_clips)
    shape = _shape_for(modality, inputs)
    if num_clips > 1:
        shape = (num_clips, *shape)
    features = tf.map_fn(
        lambda record: record_features(
            record,
            task,
            inputs,
            training=False,
            num_clips=num_clips,
            audio_mean=audio_mean,
            audio_std=audio_std,
            modality=modality,
        ),
        tf.reshape(serialized, [-1]),
        fn_output_signature=tf.TensorSpec(shape, tf.float32),
    )
    return {modality: features}


def _check_raw(tensor: tf.Tensor, modality: str) -> None:
    expected = {
        IMAGE: (tf.uint8, 4, "uint8 images [N, H, W, 3]"),
        VIDEO: (tf.uint8, 5, "uint8 videos [N, T, H, W, 3]"),
        AUDIO: (tf.float32, 2, "float32 waveforms [N, samples]"),
    }[modality]
    dtype, rank, text = expected
    if tensor.dtype != dtype or (tensor.shape.rank is not None and tensor.shape.rank != rank):
        raise ValueError(
            f"preprocess_raw: {modality} input must be {text}, got {tensor.dtype.name} "
            f"{tensor.shape}"
        )
    if modality != AUDIO and tensor.shape[-1] not in (None, 3):
        raise ValueError(
            f"preprocess_raw: {modality} input must have 3 channels, got {tensor.shape}"
        )


def preprocess_raw(
    tensor: tf.Tensor,
    task: Task,
    inputs: Inputs,
    *,
    sample_rate: int | tf.Tensor | None = None,
    num_clips: int = 1,
    audio_mean: float | tf.Tensor = 0.0,
    audio_std: float | tf.Tensor = 1.0,
    modality: str | None = None,
) -> dict[str, tf.Tensor]:
    """Raw tensors -> the evaluation features: uint8 images [N, H, W, 3], uint8 videos
    [N, T, H, W, 3] (at the records' frame rate) or float32 waveforms [N, samples] in [-1, 1] at
    `sample_rate` (default inputs.audio_sample_rate; others are resampled)."""
    modality = modality or modality_key(task)
    _check_num_clips(task, modality, num_clips)
    tensor = tf.convert_to_tensor(tensor)
    _check_raw(tensor, modality)
    shape = _shape_for(modality, inputs)
    if num_clips > 1:
        shape = (num_clips, *shape)
    if modality == AUDIO:
        rate = inputs.audio_sample_rate if sample_rate is None else sample_rate

        def one(waveform):
            features = audio.waveform_features(
                waveform,
                rate,
                inputs,
                num_clips,
                training=False,
                audio_mean=audio_mean,
                audio_std=audio_std,
            )
            return _drop_single_clip(features, num_clips)
    else:

        def one(frames):
            frames = frames[None] if modality == IMAGE else frames
            features = visual_features(
                frames, modality, inputs, training=False, num_clips=num_clips, encoded=False
            )
            return _drop_single_clip(features, num_clips)

    features = tf.map_fn(one, tensor, fn_output_signature=tf.TensorSpec(shape, tf.float32))
    return {modality: features}
