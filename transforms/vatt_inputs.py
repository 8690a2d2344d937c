"""Pretraining batches from video records: frames, the raw soundtrack, caption ids and masks.

Per record: `video` float32 [T, S, S, 3] (the task's video path), `audio` float32 [N, 1] (the
waveform at inputs.audio_sample_rate, its first inputs.audio_seconds, zero-padded: WaT reads
raw samples), `text` int32 [K, L] caption ids with `text_mask` [K] (transforms.captions), and
`audio_mask` / `caption_mask` from `audio/has_audio` / `caption/has_caption` (1 when a record
does not say, as records written elsewhere carry real audio and their captions).
"""

from __future__ import annotations

import tensorflow as tf

from core import features as keys
from core.config import Inputs, Pretraining, Task
from transforms import captions
from transforms.audio import resample
from transforms.input_pipeline import _list_files, _read_records, record_features
from transforms.parsing import AUDIO, VIDEO, checked_waveform, parse_record


def num_samples(inputs: Inputs) -> int:
    return int(round(inputs.audio_seconds * inputs.audio_sample_rate))


def raw_audio(serialized: tf.Tensor, task: Task, inputs: Inputs) -> tf.Tensor:
    """float32 [N, 1]: the record's waveform resampled, cut or zero-padded to N samples."""
    parsed = parse_record(serialized, AUDIO)
    waveform, rate = checked_waveform(parsed, task)
    waveform = resample(waveform, rate, inputs.audio_sample_rate)[: num_samples(inputs)]
    waveform = tf.pad(waveform, [[0, num_samples(inputs) - tf.shape(waveform)[0]]])
    return tf.ensure_shape(waveform, [num_samples(inputs)])[:, None]


def record_masks(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The caption candidates string [k] and float32 audio and caption masks."""
    context, _ = tf.io.parse_single_sequence_example(
        serialized,
        context_features={
            keys.CAPTION: tf.io.VarLenFeature(tf.string),
            keys.HAS_AUDIO: tf.io.FixedLenFeature([], tf.int64, default_value=1),
            keys.HAS_CAPTION: tf.io.FixedLenFeature([], tf.int64, default_value=1),
        },
    )
    texts = context[keys.CAPTION].values
    return (
        texts,
        tf.cast(context[keys.HAS_AUDIO], tf.float32),
        tf.cast(context[keys.HAS_CAPTION], tf.float32),
    )


def pretraining_example(
    serialized: tf.Tensor,
    task: Task,
    inputs: Inputs,
    pretraining: Pretraining,
    table: tf.lookup.StaticHashTable,
    *,
    training: bool,
    seed: tf.Tensor | None = None,
) -> dict[str, tf.Tensor]:
    texts, audio_mask, caption_mask = record_masks(serialized)
    ids, text_mask = captions.caption_ids(
        texts, table, pretraining.text_length, pretraining.max_captions
    )
    video = record_features(serialized, task, inputs, training=training, seed=seed, modality=VIDEO)
    return {
        "video": video,
        "audio": raw_audio(serialized, task, inputs),
        "text": ids,
        "text_mask": text_mask * caption_mask,
        "audio_mask": audio_mask,
    }


def make_pretraining_dataset(
    file_pattern: str,
    task: Task,
    inputs: Inputs,
    pretraining: Pretraining,
    vocabulary: list[str],
    *,
    training: bool,
    batch_size: int,
    seed: int = 0,
    input_context: tf.distribute.InputContext | None = None,
    drop_remainder: bool = True,
) -> tf.data.Dataset:
    """Batches of `pretraining_example` dicts; repeated and shuffled in training."""
    ds = _read_records(
        _list_files(file_pattern),
        training=training,
        seed=seed,
        input_context=input_context,
        shuffle_buffer=inputs.shuffle_buffer,
    )
    if training:
        ds = ds.repeat()
    table = captions.word_table(vocabulary)
    base = tf.constant([seed, input_context.input_pipeline_id if input_context else 0], tf.int64)

    def process(index, serialized):
        element_seed = tf.random.experimental.stateless_fold_in(base, index) if training else None
        return pretraining_example(
            serialized, task, inputs, pretraining, table, training=training, seed=element_seed
        )

    ds = ds.enumerate().map(process, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
