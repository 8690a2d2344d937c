"""VATT's building blocks beside PolyViT's: the raw-waveform tokenizer (WaT), DropToken, the
caption tokenizer (word embeddings, optionally frozen from a word2vec file) and the
fine-and-coarse projection heads into the video-audio and video-text spaces."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from trainer.tokenizers import Tokenizer
from transforms.captions import PAD_ID


class WaveformTokenizer(Tokenizer):
    """WaT: a raw waveform [B, S, 1] cut into 1D patches of `patch` samples, each projected
    linearly (VATT's audio tokenizer), zero-padded up to a multiple of the patch. A
    `Tokenizer`, so a supervised audio task can use it in place of the spectrogram one."""

    modality = "waveform"

    def __init__(self, hidden_size: int, patch: int, dropout: float, **kwargs):
        super().__init__(hidden_size, (patch,), dropout, **kwargs)

    def padded_dims(self, dims: tuple[int, ...]) -> tuple[int, ...]:
        return (-(-dims[0] // self.patch[0]) * self.patch[0],)

    def pad(self, x: tf.Tensor) -> tf.Tensor:
        extra = self.padded_dims(tuple(x.shape[1:-1]))[0] - x.shape[1]
        return tf.pad(x, [[0, 0], [0, extra], [0, 0]]) if extra else x


def drop_tokens(tokens: tf.Tensor, keep: float, training: bool, seed=None) -> tf.Tensor:
    """DropToken: in training, a random `keep` fraction of the tokens after the class token
    (each example its own draw, at least one kept); in evaluation every token."""
    if not training or keep >= 1.0:
        return tokens
    count = tokens.shape[1] - 1
    kept = max(1, int(round(count * keep)))
    batch = tf.shape(tokens)[0]
    scores = tf.random.uniform([batch, count], seed=seed)
    chosen = tf.sort(tf.math.top_k(scores, kept).indices, axis=1) + 1
    return tf.concat([tokens[:, :1], tf.gather(tokens, chosen, batch_dims=1)], axis=1)


def read_word2vec_text(path: str, vocabulary: list[str], dim: int) -> np.ndarray:
    """Rows for [pad, oov, *vocabulary] from a word2vec text file (an optional `count dim`
    header line, then `word v1 ... vdim` per line). Words missing from the file get zeros."""
    table = np.zeros((2 + len(vocabulary), dim), np.float32)
    index = {word: 2 + i for i, word in enumerate(vocabulary)}
    with tf.io.gfile.GFile(path) as f:
        for number, line in enumerate(f, 1):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2:
                continue  # header
            if len(parts) != dim + 1:
                raise ValueError(
                    f"{path}:{number}: expected a word and {dim} numbers "
                    f"(pretraining.word_embeddings), got {len(parts) - 1}"
                )
            if parts[0] in index:
                table[index[parts[0]]] = np.asarray(parts[1:], np.float32)
    return table


class TextTokenizer(keras.layers.Layer):
    """Caption ids [B, L] -> tokens [B, 1 + L, hidden]: word embedding (trainable, or frozen
    from `embeddings`), a linear projection, a class token and positions. Padding positions
    are zeroed so they add nothing to the class token through attention's values."""

    def __init__(
        self,
        hidden_size: int,
        vocab_size: int,
        embeddings: np.ndarray | None = None,
        embed_dim: int = 64,
        **kwargs,
    ):
        super().__init__(**kwargs)
        rows = vocab_size + 2
        if embeddings is not None and embeddings.shape[0] != rows:
            raise ValueError(f"TextTokenizer: {embeddings.shape[0]} embedding rows, need {rows}")
        self.embedding = keras.layers.Embedding(
            rows,
            embed_dim if embeddings is None else embeddings.shape[1],
            embeddings_initializer=(
                "uniform" if embeddings is None else keras.initializers.Constant(embeddings)
            ),
            trainable=embeddings is None,
            name="word_embedding",
        )
        self.project = keras.layers.Dense(hidden_size, name="project")
        self.hidden_size = hidden_size

    def build(self, input_shape):
        length = input_shape[-1]
        self.cls = self.add_weight("cls", shape=(1, 1, self.hidden_size), initializer="zeros")
        self.pos_embedding = self.add_weight(
            "pos_embedding",
            shape=(1, 1 + length, self.hidden_size),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )
        super().build(input_shape)

    def call(self, ids, training=False):
        present = tf.cast(tf.not_equal(ids, PAD_ID), tf.float32)[..., None]
        words = self.project(self.embedding(ids)) * present
        cls = tf.tile(self.cls, [tf.shape(ids)[0], 1, 1])
        return tf.concat([cls, words], axis=1) + self.pos_embedding


class FineAndCoarseHeads(keras.layers.Layer):
    """VATT's projection layout: video and audio meet in a fine video-audio space; video's
    embedding there is projected on into the coarser video-text space, where text meets it."""

    def __init__(self, audio_dim: int, text_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.video_to_va = keras.Sequential(
            [keras.layers.Dense(audio_dim, activation="relu"), keras.layers.Dense(audio_dim)],
            name="video_to_va",
        )
        self.audio_to_va = keras.layers.Dense(audio_dim, name="audio_to_va")
        self.va_to_vt = keras.layers.Dense(text_dim, name="va_to_vt")
        self.text_to_vt = keras.layers.Dense(text_dim, name="text_to_vt")

    def video(self, features: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        video_va = self.video_to_va(features)
        return video_va, self.va_to_vt(video_va)

    def audio(self, features: tf.Tensor) -> tf.Tensor:
        return self.audio_to_va(features)

    def text(self, features: tf.Tensor) -> tf.Tensor:
        return self.text_to_vt(features)
