"""VATT's layers: WaT patches, DropToken in training versus evaluation, word2vec embeddings
(frozen), both backbones and the shapes of the embeddings the losses take."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from core.config import MODEL_PRESETS, Pretraining
from trainer.vatt import layers
from trainer.vatt.model import build_vatt

SIZE = dataclasses.replace(MODEL_PRESETS["tiny"], num_layers=1, patch_size=8)
SHAPES = {"video": (4, 16, 16, 3), "audio": (1000, 1), "text": (2, 6)}


def test_wat_cuts_the_waveform_into_padded_1d_patches():
    wat = layers.WaveformTokenizer(8, patch=320, dropout=0.0)
    tokens = wat(tf.zeros([2, 1000, 1]))
    assert tokens.shape == (2, 1 + 4, 8)  # 1000 samples -> 4 patches of 320 (padded), + class
    # The first patch's projection sees exactly samples 0..319.
    wave = np.zeros([1, 1000, 1], np.float32)
    wave[0, 100] = 1.0
    moved = wat(tf.constant(wave)) - wat(tf.zeros([1, 1000, 1]))
    assert np.abs(moved[0, 1]).sum() > 0 and np.abs(moved[0, 2:]).sum() == 0


def test_drop_token_keeps_a_fraction_in_training_only():
    tokens = tf.reshape(tf.range(2 * 11 * 1, dtype=tf.float32), [2, 11, 1])
    kept = layers.drop_tokens(tokens, 0.5, training=True, seed=1)
    assert kept.shape == (2, 6, 1)  # class token + 5 of 10
    assert kept[:, 0].numpy().tolist() == tokens[:, 0].numpy().tolist()
    for row in range(2):
        values = kept[row, 1:, 0].numpy()
        assert len(set(values)) == 5 and set(values) <= set(tokens[row, 1:, 0].numpy())
    assert layers.drop_tokens(tokens, 0.5, training=False) is tokens


def test_word2vec_text_file_rows_follow_the_vocabulary(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("3 2\ndog 1 2\ncat 3 4\nbird 5 6\n")
    table = layers.read_word2vec_text(str(path), ["cat", "fish", "dog"], 2)
    assert table.tolist() == [[0, 0], [0, 0], [3, 4], [0, 0], [1, 2]]
    path.write_text("dog 1 2 3\n")
    with pytest.raises(ValueError, match=r"vectors.txt:1: expected a word and 2 numbers"):
        layers.read_word2vec_text(str(path), ["dog"], 2)


def test_frozen_word_embeddings_are_not_trained():
    table = np.arange(2 * 5, dtype=np.float32).reshape(5, 2)
    text = layers.TextTokenizer(8, vocab_size=3, embeddings=table)
    text(tf.constant([[2, 0]]))
    assert text.embedding.trainable_weights == []
    assert np.allclose(text.embedding.embeddings.numpy(), table)


@pytest.mark.parametrize("backbone, encoders", [("shared", 1), ("per_modality", 3)])
def test_both_backbones_give_the_loss_embeddings(backbone, encoders):
    pre = Pretraining(backbone=backbone, audio_space_dim=12, text_space_dim=6, vocab_size=20)
    model = build_vatt(SIZE, pre, SHAPES)
    assert len({id(e) for e in model.encoders.values()}) == encoders
    out = model(
        {
            "video": tf.zeros([3, *SHAPES["video"]]),
            "audio": tf.zeros([3, *SHAPES["audio"]]),
            "text": tf.ones([3, *SHAPES["text"]], tf.int32),
        },
        training=True,
    )
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {"video_va": (3, 12), "video_vt": (3, 6), "audio": (3, 12), "text": (3, 2, 6)}
