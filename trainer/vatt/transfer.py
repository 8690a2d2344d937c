"""Carry-over of pretrained VATT weights into the co-training PolyViT.

What carries over is `pretraining.carry_over`:
  tokenizers  the video tubelet tokenizer (kernel, bias, class token, positions), when the two
              token grids have the same shape (same inputs.video_size, num_frames, patch and
              tubelet); WaT and the caption tokenizer have no PolyViT counterpart (its audio
              tasks read log-mel spectrograms), so they stay with the pretrained model
  encoder     the transformer: the shared encoder (backbone shared) or the video encoder
              (per_modality) into PolyViT's shared encoder, block by block
Heads never carry over (the tasks' classes are new). A mismatch is an error naming both
shapes, never a silent partial load.

The pretrained model is read from a pretraining stage's output directory: its latest
checkpoint and the caption vocabulary beside it (`pretrain.VOCABULARY_FILE`).
"""

from __future__ import annotations

import logging

import tensorflow as tf
import tf_keras as keras

from core.config import TrainerConfig
from trainer.model import PolyViT
from trainer.vatt.model import Vatt

log = logging.getLogger("polyvit.vatt")


def _copy(source: keras.layers.Layer, target: keras.layers.Layer, what: str) -> int:
    pairs = list(zip(source.weights, target.weights, strict=False))
    if len(source.weights) != len(target.weights):
        raise ValueError(
            f"carry_over {what}: {len(source.weights)} pretrained weights but "
            f"{len(target.weights)} in the model (model sizes must match)"
        )
    for src, dst in pairs:
        if tuple(src.shape) != tuple(dst.shape):
            raise ValueError(
                f"carry_over {what}: {src.name} has shape {tuple(src.shape)} but {dst.name} "
                f"{tuple(dst.shape)}; use the same model size and video inputs in both stages"
            )
        dst.assign(src)
    return len(pairs)


def carry_over(vatt: Vatt, polyvit: PolyViT, what: list[str]) -> dict[str, int]:
    """Copies the chosen parts of `vatt` into `polyvit`; returns weights copied per part."""
    copied = {}
    if "tokenizers" in what:
        if "video" not in polyvit.tokenizers:
            raise ValueError("carry_over tokenizers: the co-training config has no video task")
        copied["tokenizers"] = _copy(
            vatt.tokenizers["video"], polyvit.tokenizers["video"], "tokenizers"
        )
    if "encoder" in what:
        copied["encoder"] = _copy(vatt.encoders["video"], polyvit.encoder, "encoder")
    log.info("carried over from pretraining: %s", copied)
    return copied


def load_pretrained(model_dir: str, config: TrainerConfig) -> Vatt:
    """The pretrained Vatt of a pretraining stage's output directory."""
    from trainer.vatt import pretrain

    latest = tf.train.latest_checkpoint(model_dir)
    if latest is None:
        raise FileNotFoundError(f"{model_dir}: no pretraining checkpoint (base_model)")
    vocabulary = pretrain.read_saved_vocabulary(model_dir)
    # The frozen word2vec table's width sizes the text tokenizer, as in the pretraining stage.
    vatt = pretrain.make_model(config, vocabulary, config.pretraining.word_embeddings)
    tf.train.Checkpoint(model=vatt).restore(latest).expect_partial()
    return vatt
