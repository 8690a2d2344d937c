"""Carry-over of pretrained VATT weights into the co-training PolyViT.

What carries over is `pretraining.carry_over`:
  tokenizers  the video tubelet tokenizer (kernel, bias, class token, positions), when the two
              token grids have the same shape (same inputs.video_size, num_frames, patch and
              tubelet); WaT and the caption tokenizer have no PolyViT counterpart (its audio
              tasks read log-mel spectrograms), so they stay with the pretrained model
  encoder     the transformer: the shared encoder (backbone shared) or the video encoder
              (per_modality) into PolyViT's shared encoder, block by block
Heads never carry over (the tasks' classes are new). Weights meet by their name within the
layer and their shape (trainer/warm_start.py's plan); a mismatch is an error naming both
shapes, never a silent partial load.

The pretrained model is read from a pretraining stage's output directory: its latest
checkpoint and the caption vocabulary beside it (`pretrain.VOCABULARY_FILE`).
"""

from __future__ import annotations

import logging

import tensorflow as tf
import tf_keras as keras

from core.config import TrainerConfig
from trainer import warm_start
from trainer.model import PolyViT
from trainer.vatt.model import Vatt

log = logging.getLogger("polyvit.vatt")


def _by_inner_name(layer: keras.layers.Layer) -> dict[str, tf.Variable]:
    """A layer's weights by their name below the model's and the layer's scopes
    (`vatt/encoder_video/block_0/...` and `polyvit/encoder/block_0/...` are both
    `block_0/...`), so that the two models' counterparts meet by name."""
    return {w.name.split("/", 2)[-1]: w for w in layer.weights}


def _copy(source: keras.layers.Layer, target: keras.layers.Layer, what: str) -> int:
    if len(source.weights) != len(target.weights):
        raise ValueError(
            f"carry_over {what}: {len(source.weights)} pretrained weights but "
            f"{len(target.weights)} in the model (model sizes must match)"
        )
    src, dst = _by_inner_name(source), _by_inner_name(target)
    # warm_start's plan: copy what matches by name and shape (no heads here: no task names).
    copy, keep = warm_start.plan(
        {n: tuple(w.shape) for n, w in dst.items()},
        {n: tuple(w.shape) for n, w in src.items()},
        task_names=(),
        carry_heads_for=(),
    )
    if keep:
        wrong = dst[keep[0]]
        found = src.get(keep[0])
        have = (
            f"{found.name} has shape {tuple(found.shape)}" if found is not None else f"no {keep[0]}"
        )
        raise ValueError(
            f"carry_over {what}: {have} but {wrong.name} {tuple(wrong.shape)}; use the same "
            "model size and video inputs in both stages"
        )
    for name in copy:
        dst[name].assign(src[name])
    return len(copy)


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
