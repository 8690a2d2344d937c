"""Captions as token ids: the words of a caption, the vocabulary Transform computes from the
train captions of the pretraining task (no downloads), and the padded id grid a model reads.

Words: lower-cased, every run of characters other than a-z and 0-9 is a separator. Ids: 0 is
padding, 1 an out-of-vocabulary word, 2 + i the i-th vocabulary word. The vocabulary is the
`vocab_size` most frequent words, ties broken alphabetically (deterministic across runs),
one word per line in id order: the asset `caption_vocabulary` of the TransformGraph.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

import tensorflow as tf

PAD_ID, OOV_ID = 0, 1
VOCABULARY_ASSET = "caption_vocabulary"


def caption_words(captions: tf.Tensor) -> tf.RaggedTensor:
    """string [...] -> ragged words [..., (w)]."""
    text = tf.strings.regex_replace(tf.strings.lower(captions), "[^a-z0-9]+", " ")
    return tf.strings.split(tf.strings.strip(text))


def vocabulary_text(words: Iterable[bytes | str], size: int) -> str:
    """The vocabulary file's text from every word occurrence. Pure, for tests."""
    counts = collections.Counter(w.decode() if isinstance(w, bytes) else w for w in words)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:size]
    return "".join(f"{word}\n" for word, _ in ranked)


def read_vocabulary(path: str) -> list[str]:
    with tf.io.gfile.GFile(path) as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]


def word_table(vocabulary: list[str]) -> tf.lookup.StaticHashTable:
    if not vocabulary:
        raise ValueError(
            "caption vocabulary is empty: the pretraining task's train records have no caption "
            "words (caption/string); check the CSV's caption column"
        )
    init = tf.lookup.KeyValueTensorInitializer(
        tf.constant(vocabulary), tf.range(2, 2 + len(vocabulary), dtype=tf.int64)
    )
    return tf.lookup.StaticHashTable(init, default_value=OOV_ID)


def caption_ids(
    captions: tf.Tensor, table: tf.lookup.StaticHashTable, length: int, max_captions: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """One record's candidates string [k] -> ids int32 [max_captions, length] (each caption
    truncated / zero-padded) and the candidate mask float32 [max_captions] (1 where a
    non-empty caption sits; extra candidates are dropped, missing ones padded)."""
    captions = captions[:max_captions]
    words = caption_words(captions)
    ids = tf.cast(table.lookup(words), tf.int32)
    dense = ids.to_tensor(default_value=PAD_ID, shape=[None, length])
    present = tf.cast(words.row_lengths() > 0, tf.float32)
    missing = max_captions - tf.shape(dense)[0]
    dense = tf.pad(dense, [[0, missing], [0, 0]])
    present = tf.pad(present, [[0, missing]])
    return tf.ensure_shape(dense, [max_captions, length]), tf.ensure_shape(present, [max_captions])
