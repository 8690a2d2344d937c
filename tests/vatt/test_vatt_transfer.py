"""What carries over from pretraining into the co-training PolyViT, per the config."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import Model, Pretraining, Task, TrainerConfig
from trainer.model import build_model
from trainer.vatt import pretrain, transfer
from trainer.vatt.model import build_vatt

MODEL = Model(preset="tiny", overrides={"num_layers": 1})
SHAPES = {"video": (4, 16, 16, 3), "audio": (800, 1), "text": (2, 4)}
TASKS = [
    Task(name="moves", modality="video", num_classes=3),
    Task(name="tones", modality="audio", num_classes=2),
]


def _polyvit(video=(4, 16, 16, 3)):
    shapes = {"video": video, "audio": (49, 64, 1)}
    return build_model(MODEL, TASKS, feature_shapes=shapes, load_checkpoint=False)


def _same(a, b) -> bool:
    return all(np.allclose(x.numpy(), y.numpy()) for x, y in zip(a.weights, b.weights, strict=True))


@pytest.mark.parametrize("backbone", ["shared", "per_modality"])
def test_tokenizer_and_encoder_carry_over_heads_do_not(backbone):
    vatt = build_vatt(MODEL.size(), Pretraining(backbone=backbone, vocab_size=10), SHAPES)
    polyvit = _polyvit()
    heads = {k: [w.numpy() for w in h.weights] for k, h in polyvit.heads.items()}
    audio_tokenizer = [w.numpy() for w in polyvit.tokenizers["audio"].weights]
    assert not _same(vatt.encoders["video"], polyvit.encoder)
    copied = transfer.carry_over(vatt, polyvit, ["tokenizers", "encoder"])
    assert copied["tokenizers"] == 4 and copied["encoder"] > 0
    assert _same(vatt.tokenizers["video"], polyvit.tokenizers["video"])
    assert _same(vatt.encoders["video"], polyvit.encoder)
    for name, weights in heads.items():
        assert all(
            np.array_equal(w, v.numpy())
            for w, v in zip(weights, polyvit.heads[name].weights, strict=True)
        )
    kept = polyvit.tokenizers["audio"].weights
    assert all(np.array_equal(w, v.numpy()) for w, v in zip(audio_tokenizer, kept, strict=True))


def test_only_the_configured_parts_carry_over():
    vatt = build_vatt(MODEL.size(), Pretraining(vocab_size=10), SHAPES)
    polyvit = _polyvit()
    transfer.carry_over(vatt, polyvit, ["encoder"])
    assert _same(vatt.encoders["video"], polyvit.encoder)
    assert not _same(vatt.tokenizers["video"], polyvit.tokenizers["video"])


def test_a_different_token_grid_is_refused_naming_the_shapes():
    vatt = build_vatt(MODEL.size(), Pretraining(vocab_size=10), SHAPES)
    with pytest.raises(ValueError, match=r"carry_over tokenizers: .*pos_embedding.* shape"):
        transfer.carry_over(vatt, _polyvit(video=(8, 16, 16, 3)), ["tokenizers"])


def test_load_pretrained_reads_checkpoint_and_vocabulary(tmp_path):
    import tensorflow as tf

    from core.config import Inputs

    config = TrainerConfig(
        tasks=TASKS,
        model=MODEL,
        inputs=Inputs(video_size=16, num_frames=4, audio_seconds=0.1, audio_sample_rate=8000),
        pretraining=Pretraining(task="moves", waveform_patch=200, text_length=4, max_captions=2),
    )
    words = ["up", "down", "left"]
    vatt = pretrain.make_model(config, words)
    pretrain.save_vocabulary(str(tmp_path), words)
    tf.train.Checkpoint(model=vatt).save(str(tmp_path / "ckpt"))
    loaded = transfer.load_pretrained(str(tmp_path), config)
    assert _same(loaded, vatt)
    assert loaded.tokenizers["text"].embedding.input_dim == len(words) + 2
    with pytest.raises(FileNotFoundError, match="no pretraining checkpoint"):
        transfer.load_pretrained(str(tmp_path / "none"), config)
