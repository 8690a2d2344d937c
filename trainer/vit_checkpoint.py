"""Initialise PolyViT from a ViT image checkpoint in the big_vision/scenic/vit_jax .npz layout.

Layout read (an optional `opt/target/` prefix, as in some released files, is accepted):

    embedding/kernel  (p, p, 3, D)   embedding/bias (D,)   cls (1, 1, D)
    Transformer/posembed_input/pos_embedding   (1, 1 + g*g, D)   (class position first)
    Transformer/encoder_norm/{scale,bias}
    Transformer/encoderblock_N/LayerNorm_0/{scale,bias}                       (before attention)
    Transformer/encoderblock_N/MultiHeadDotProductAttention_1/{query,key,value}/kernel (D, H, D/H)
        .../{query,key,value}/bias (H, D/H); .../out/kernel (H, D/H, D); .../out/bias (D,)
    Transformer/encoderblock_N/LayerNorm_2/{scale,bias}                       (before the MLP)
    Transformer/encoderblock_N/MlpBlock_3/Dense_{0,1}/{kernel,bias}

Flax auto-numbers submodules, so the second LayerNorm of the released ViT files is `LayerNorm_2`
(index 1 went to the attention); `LayerNorm_1` is accepted too for re-exported files.

What goes where:
- blocks 0 .. modality_layers-1 -> each modality's own layers (a copy each), the following
  num_layers blocks -> the shared encoder; encoder_norm -> the shared final LayerNorm;
- image tokenizer: the patch kernel as is; video: a tubelet kernel with the 2D kernel in its
  central frame (zeros elsewhere); audio: the kernel averaged over RGB (one input channel);
- class token and patch bias: the same for every modality;
- positional embeddings: the g x g grid resized bilinearly to the image and spectrogram grids,
  and resized to the frame grid then tiled over the tubelet time steps for video.
Task heads (and the checkpoint's `head`, `pre_logits`) are not loaded: tasks differ.
"""

from __future__ import annotations

import io
import logging
import math

import numpy as np
import tensorflow as tf

from trainer.tokenizers import central_frame_kernel

log = logging.getLogger(__name__)

PREFIXES = ("", "opt/target/")
BLOCK = "Transformer/encoderblock_{}/"
ATTENTION = "MultiHeadDotProductAttention_1/"
# Our attention sub-layer names (tf_keras MultiHeadAttention) for the checkpoint's names.
ATTENTION_PARTS = {"query": "query", "key": "key", "value": "value", "out": "attention_output"}


class CheckpointError(ValueError):
    """The checkpoint lacks a key, or a value does not fit the model; the message names both."""


class _Archive:
    """Key lookup with errors naming the file and the key."""

    def __init__(self, arrays: dict[str, np.ndarray], path: str):
        self.path = path
        prefix = next((p for p in PREFIXES if f"{p}embedding/kernel" in arrays), None)
        if prefix is None:
            raise CheckpointError(
                f"{path}: no 'embedding/kernel' key; not a ViT checkpoint in the "
                f"big_vision/scenic layout (keys start with {sorted(arrays)[:5]})"
            )
        self.prefix: str = prefix
        self.arrays = arrays
        self.used: set[str] = set()

    def has(self, key: str) -> bool:
        return self.prefix + key in self.arrays

    def get(self, key: str) -> np.ndarray:
        full = self.prefix + key
        if full not in self.arrays:
            raise CheckpointError(f"{self.path}: missing key {full!r}")
        self.used.add(full)
        return np.asarray(self.arrays[full], dtype=np.float32)

    def num_blocks(self) -> int:
        n = 0
        while self.has(BLOCK.format(n) + "LayerNorm_0/scale"):
            n += 1
        return n


def _assign(variable: tf.Variable, value: np.ndarray, key: str, path: str) -> None:
    if tuple(variable.shape) != value.shape:
        raise CheckpointError(
            f"{path}: {key!r} has shape {value.shape}, but {variable.name} needs "
            f"{tuple(variable.shape)}"
        )
    variable.assign(value)


def _attention_weight(attention, part: str, kind: str) -> tf.Variable:
    """The `<part>/<kind>` variable of a tf_keras MultiHeadAttention layer."""
    suffix = f"/{part}/{kind}:0"
    found = [v for v in attention.weights if v.name.endswith(suffix)]
    if len(found) != 1:
        raise ValueError(f"{attention.name}: expected one variable named *{suffix}, got {found}")
    return found[0]


def _load_layer_norm(norm, archive: _Archive, key: str) -> None:
    _assign(norm.gamma, archive.get(f"{key}/scale"), f"{key}/scale", archive.path)
    _assign(norm.beta, archive.get(f"{key}/bias"), f"{key}/bias", archive.path)


def _load_block(block, archive: _Archive, index: int) -> None:
    prefix = BLOCK.format(index)
    _load_layer_norm(block.norm_0, archive, prefix + "LayerNorm_0")
    second = "LayerNorm_2" if archive.has(prefix + "LayerNorm_2/scale") else "LayerNorm_1"
    _load_layer_norm(block.norm_1, archive, prefix + second)
    for theirs, ours in ATTENTION_PARTS.items():
        for kind in ("kernel", "bias"):
            key = f"{prefix}{ATTENTION}{theirs}/{kind}"
            variable = _attention_weight(block.attention, ours, kind)
            _assign(variable, archive.get(key), key, archive.path)
    for i, dense in enumerate((block.mlp.dense_0, block.mlp.dense_1)):
        key = f"{prefix}MlpBlock_3/Dense_{i}"
        _assign(dense.kernel, archive.get(f"{key}/kernel"), f"{key}/kernel", archive.path)
        _assign(dense.bias, archive.get(f"{key}/bias"), f"{key}/bias", archive.path)


def resize_grid(grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a positional-embedding grid [h, w, D] to [*shape, D]."""
    if tuple(grid.shape[:2]) == tuple(shape):
        return grid
    resized = tf.image.resize(grid[None], shape, method="bilinear", antialias=False)
    return resized[0].numpy()


def adapt_pos_embedding(pos: np.ndarray, grid: tuple[int, ...], key: str) -> np.ndarray:
    """Checkpoint pos embedding (1, 1 + g*g, D) -> (1, 1 + prod(grid), D) for a token grid.

    2D grids (image, spectrogram) are resized; 3D grids (t, h, w) are resized over (h, w) and
    then tiled over t, so every time step starts from the image's spatial embedding.
    """
    if pos.ndim != 3 or pos.shape[0] != 1:
        raise CheckpointError(f"{key}: expected shape (1, 1 + g*g, D), got {pos.shape}")
    cls_pos, patches = pos[:, :1], pos[0, 1:]
    side = math.isqrt(patches.shape[0])
    if side * side != patches.shape[0]:
        raise CheckpointError(f"{key}: {patches.shape[0]} patch positions are not a square grid")
    square = patches.reshape(side, side, -1)
    if len(grid) == 2:
        new = resize_grid(square, grid)
    elif len(grid) == 3:
        new = np.tile(resize_grid(square, grid[1:])[None], (grid[0], 1, 1, 1))
    else:
        raise CheckpointError(f"{key}: cannot map to a token grid of rank {len(grid)}")
    return np.concatenate([cls_pos, new.reshape(1, -1, pos.shape[-1])], axis=1)


def _patch_kernel_for(modality: str, kernel: np.ndarray, size) -> np.ndarray:
    if modality == "image":
        return kernel
    if modality == "video":
        return central_frame_kernel(kernel, size.tubelet_frames)
    # audio: one input channel; averaging keeps the response to a grey input's mean level.
    return kernel.mean(axis=2, keepdims=True)


def _load_tokenizer(tokenizer, archive: _Archive, size) -> None:
    path = archive.path
    kernel = archive.get("embedding/kernel")
    if kernel.shape[:2] != (size.patch_size, size.patch_size):
        raise CheckpointError(
            f"{path}: 'embedding/kernel' has patch {kernel.shape[:2]}, the config's "
            f"model patch_size is {size.patch_size}"
        )
    name = tokenizer.modality
    new_kernel = _patch_kernel_for(name, kernel, size)
    _assign(tokenizer.kernel, new_kernel, f"embedding/kernel ({name})", path)
    _assign(tokenizer.bias, archive.get("embedding/bias"), "embedding/bias", path)
    _assign(tokenizer.cls, archive.get("cls"), "cls", path)
    key = "Transformer/posembed_input/pos_embedding"
    pos = adapt_pos_embedding(archive.get(key), tokenizer.grid, key)
    _assign(tokenizer.pos_embedding, pos, f"{key} ({name})", path)


def read_npz(path: str) -> dict[str, np.ndarray]:
    """All arrays of an .npz on a local path or any tf.io.gfile filesystem (gs://...)."""
    if not tf.io.gfile.exists(path):
        raise CheckpointError(f"{path}: checkpoint file not found (model.init_checkpoint)")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def load_vit_npz(model, path: str) -> dict[str, list[str]]:
    """Loads the ViT checkpoint at `path` into a built PolyViT (see `trainer.model.build_all`),
    checked against the model's own size (`model.size`, a core.config.ModelSize).

    Returns {"loaded": keys used, "ignored": checkpoint keys not used (heads, pre_logits)}.
    """
    if not model.built or not model.encoder.built:
        raise ValueError("load_vit_npz: build the model first (trainer.model.build_all)")
    size = model.size
    archive = _Archive(read_npz(path), path)
    blocks = archive.num_blocks()
    needed = size.modality_layers + size.num_layers
    if blocks != needed:
        raise CheckpointError(
            f"{path}: has {blocks} encoder blocks (Transformer/encoderblock_N), the config "
            f"needs model modality_layers + num_layers = {needed}"
        )
    for modality_encoder in model.modality_encoders.values():
        for i, block in enumerate(modality_encoder.blocks):
            _load_block(block, archive, i)
    for i, block in enumerate(model.encoder.blocks):
        _load_block(block, archive, size.modality_layers + i)
    _load_layer_norm(model.encoder.final_norm, archive, "Transformer/encoder_norm")
    for tokenizer in model.tokenizers.values():
        _load_tokenizer(tokenizer, archive, size)
    ignored = sorted(set(archive.arrays) - archive.used)
    log.info("%s: loaded %d arrays; not used: %s", path, len(archive.used), ignored)
    return {"loaded": sorted(archive.used), "ignored": ignored}
