"""Initialise PolyViT from a ViT image checkpoint (.npz): vit_jax's layout and big_vision's own.

Names are read as vit_jax's and big_vision's loaders read them. Keys may sit under `opt/target/`
or `params/` (files saved with their optimizer state). Submodule numbers are first renumbered per
class, in order, at every level (Flax's `convert_pre_linen`), so the released pre-Linen files'
`LayerNorm_0, MultiHeadDotProductAttention_1, LayerNorm_2, MlpBlock_3` inside a block read as the
Linen `LayerNorm_0, MultiHeadDotProductAttention_0, LayerNorm_1, MlpBlock_0`, and Linen files read
as they are. After that:

    embedding/kernel (p, p, 3, D)   embedding/bias (D,)   cls (1, 1, D), absent with gap/map pooling
    positional embedding, the first of:
      Transformer/posembed_input/pos_embedding   vit_jax: (1, 1 + g*g, D) with a class token,
                                                          (1, g*g, D) without
      pos_embedding                              big_vision: (1, g*g, D), added before the class
                                                 token is prepended (older files: 1 + g*g)
      Transformer/pos_embedding                  big_vision before 2022
    Transformer/encoder_norm/{scale,bias}
    encoder blocks, either per block or scanned (big_vision's `scan=True`: one entry whose arrays
    have a leading depth axis):
      Transformer/encoderblock_N/<block>   or   Transformer/encoderblock/<block>
    <block>: LayerNorm_0 (before attention), LayerNorm_1 (before the MLP), each {scale,bias};
      MultiHeadDotProductAttention_0/{query,key,value}/kernel (D, H, D/H), .../bias (H, D/H),
      .../out/kernel (H, D/H, D), .../out/bias (D,); MlpBlock_0/Dense_{0,1}/{kernel,bias}

A file with none of these is refused with the key that is missing (CheckpointError).

What goes where:
- blocks 0 .. modality_layers-1 -> each modality's own layers (a copy each), the following
  num_layers blocks -> the shared encoder; encoder_norm -> the shared final LayerNorm;
- image tokenizer: the patch kernel as is; video: a tubelet kernel with the 2D kernel in its
  central frame (zeros elsewhere); audio: the kernel summed over RGB (one input channel): the
  spectrogram tiled to three channels, as scenic's PolyViT feeds it, gives the same embedding;
- class token and patch bias: the same for every modality. A file without a class token (gap or
  MAP pooling) leaves every modality's class token and class position at their initialisation,
  and the load report lists them under "fresh"; a file with a class token but no class position
  (big_vision's) gets a zero class position, so the class token enters the encoder as it did there;
- positional embeddings: the checkpoint's patch grid resized with `scipy.ndimage.zoom(order=1)`,
  as vit_jax, big_vision and scenic resize it, to the image and spectrogram grids, and to the frame
  grid then tiled over the tubelet time steps for video.
Task heads (and the checkpoint's `head`, `pre_logits`, `MAPHead_0`) are not loaded: tasks differ.
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import scipy.ndimage
import tensorflow as tf

from trainer.tokenizers import central_frame_kernel, channel_sum_kernel

log = logging.getLogger(__name__)

PREFIXES = ("", "opt/target/", "params/")
POS_EMBEDDING_KEYS = (
    "Transformer/posembed_input/pos_embedding",
    "pos_embedding",
    "Transformer/pos_embedding",
)
PER_BLOCK = "Transformer/encoderblock_{}/"
SCANNED = "Transformer/encoderblock/"
ATTENTION = "MultiHeadDotProductAttention_0/"
# Our attention sub-layer names (tf_keras MultiHeadAttention) for the checkpoint's names.
ATTENTION_PARTS = {"query": "query", "key": "key", "value": "value", "out": "attention_output"}


class CheckpointError(ValueError):
    """The checkpoint lacks a key, or a value does not fit the model; the message names both."""


def _renumber_siblings(names: Iterable[str]) -> dict[str, str]:
    """{name: Linen name} for the children of one module: `X_<n>` renumbered 0, 1, ... per `X`
    in the order of n, the way Flax numbers submodules per class."""
    numbered: dict[str, list[tuple[int, str]]] = defaultdict(list)
    renamed = {}
    for name in names:
        match = re.fullmatch(r"(.*)_(\d+)", name)
        if match:
            numbered[match.group(1)].append((int(match.group(2)), name))
        else:
            renamed[name] = name
    for stem, members in numbered.items():
        for index, (_, name) in enumerate(sorted(members)):
            renamed[name] = f"{stem}_{index}"
    return renamed


def linen_names(keys: Iterable[str]) -> dict[str, str]:
    """{key: the key with Linen numbering} (`convert_pre_linen` on '/'-separated names)."""
    keys = list(keys)
    children: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for key in keys:
        parts = key.split("/")
        for depth, part in enumerate(parts):
            children[tuple(parts[:depth])].add(part)
    renames = {parent: _renumber_siblings(names) for parent, names in children.items()}
    out = {}
    for key in keys:
        parts = key.split("/")
        out[key] = "/".join(renames[tuple(parts[:d])][part] for d, part in enumerate(parts))
    return out


def _as_float32(value: np.ndarray, key: str, path: str) -> np.ndarray:
    # np.save writes bfloat16 as 2-byte void; its bits are the upper half of a float32.
    if value.dtype.kind == "V" and value.dtype.itemsize == 2:
        return (value.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    if value.dtype.kind != "f":
        raise CheckpointError(f"{path}: {key!r} has dtype {value.dtype}, expected floating point")
    return value.astype(np.float32, copy=False)


class _Archive:
    """The file's arrays by their Linen name, with errors naming the file and its own key."""

    def __init__(self, arrays: dict[str, np.ndarray], path: str):
        self.path = path
        self.arrays = arrays
        prefix = next((p for p in PREFIXES if f"{p}embedding/kernel" in arrays), None)
        if prefix is None:
            raise CheckpointError(
                f"{path}: no 'embedding/kernel' key (nor under {PREFIXES[1:]}); fits neither "
                f"vit_jax's nor big_vision's ViT layout (keys start with {sorted(arrays)[:5]})"
            )
        self.prefix: str = prefix
        own = [k for k in arrays if k.startswith(prefix)]
        renamed = linen_names(k[len(prefix) :] for k in own)
        self.by_name = {renamed[k[len(prefix) :]]: k for k in own}
        self.renumbered = any(k != v for k, v in renamed.items())
        # Linen module path -> the file's module path, to name a missing key as the file would.
        self.modules: dict[str, str] = {}
        for key in own:
            file_parts = key[len(prefix) :].split("/")
            linen_parts = renamed[key[len(prefix) :]].split("/")
            for depth in range(1, len(file_parts)):
                self.modules["/".join(linen_parts[:depth])] = "/".join(file_parts[:depth])
        self.used: set[str] = set()
        self.scanned, self.depth = self._block_layout()

    def file_key(self, name: str) -> str:
        """The file's key for a Linen name, present or not (for messages)."""
        if name in self.by_name:
            return self.by_name[name]
        parts = name.split("/")
        for depth in range(len(parts) - 1, 0, -1):
            module = "/".join(parts[:depth])
            if module in self.modules:
                return self.prefix + "/".join([self.modules[module], *parts[depth:]])
        return self.prefix + name

    def has(self, name: str) -> bool:
        return name in self.by_name

    def lookup(self, name: str) -> tuple[np.ndarray, str]:
        """(value as float32, the file's key)."""
        if name not in self.by_name:
            raise CheckpointError(f"{self.path}: missing key {self.file_key(name)!r}")
        key = self.by_name[name]
        self.used.add(key)
        return _as_float32(np.asarray(self.arrays[key]), key, self.path), key

    def lookup_block(self, index: int, name: str) -> tuple[np.ndarray, str]:
        """(value, the file's key) of `name` (e.g. 'LayerNorm_0/scale') in encoder block `index`."""
        if not self.scanned:
            return self.lookup(PER_BLOCK.format(index) + name)
        value, key = self.lookup(SCANNED + name)
        return value[index], f"{key}[{index}]"

    def _block_layout(self) -> tuple[bool, int]:
        """(scanned?, number of encoder blocks)."""
        scanned = [n for n in self.by_name if n.startswith(SCANNED)]
        per_block = any(n.startswith(PER_BLOCK.format(0)) for n in self.by_name)
        if scanned and per_block:
            raise CheckpointError(
                f"{self.path}: has both scanned blocks ({self.file_key(scanned[0])!r}) and "
                f"per-block ones ({self.file_key(PER_BLOCK.format(0))!r}); expected one layout"
            )
        if per_block:
            depth = 0
            while any(n.startswith(PER_BLOCK.format(depth)) for n in self.by_name):
                depth += 1
            return False, depth
        if not scanned:
            raise CheckpointError(
                f"{self.path}: no encoder blocks: neither {self.file_key(PER_BLOCK.format(0))!r}"
                f"... (one per block) nor {self.file_key(SCANNED)!r}... (scanned)"
            )
        leading = {n: np.shape(self.arrays[self.by_name[n]])[:1] for n in scanned}
        first = leading[scanned[0]]
        for name, axis in leading.items():
            if axis != first or not axis:
                raise CheckpointError(
                    f"{self.path}: scanned block arrays share one leading depth axis; "
                    f"{self.file_key(name)!r} has {axis}, {self.file_key(scanned[0])!r} {first}"
                )
        return True, int(first[0])

    def pos_embedding_name(self) -> str:
        found = next((n for n in POS_EMBEDDING_KEYS if self.has(n)), None)
        if found is None:
            names = [self.file_key(n) for n in POS_EMBEDDING_KEYS]
            raise CheckpointError(f"{self.path}: no positional embedding; expected one of {names}")
        return found

    def pooling(self) -> str:
        """The pre-training pooling the file shows: tok (a class token), map or gap."""
        if self.has("cls"):
            return "tok"
        if any(n.startswith("MAPHead_0/") for n in self.by_name):
            return "map"
        return "gap"


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


def _load_block(block, archive: _Archive, index: int) -> None:
    def load(variable, name):
        value, key = archive.lookup_block(index, name)
        _assign(variable, value, key, archive.path)

    for norm, name in ((block.norm_0, "LayerNorm_0"), (block.norm_1, "LayerNorm_1")):
        load(norm.gamma, f"{name}/scale")
        load(norm.beta, f"{name}/bias")
    for theirs, ours in ATTENTION_PARTS.items():
        for kind in ("kernel", "bias"):
            load(_attention_weight(block.attention, ours, kind), f"{ATTENTION}{theirs}/{kind}")
    for i, dense in enumerate((block.mlp.dense_0, block.mlp.dense_1)):
        load(dense.kernel, f"MlpBlock_0/Dense_{i}/kernel")
        load(dense.bias, f"MlpBlock_0/Dense_{i}/bias")


def resize_grid(grid: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A positional-embedding grid [h, w, D] resized to [*shape, D] by linear interpolation,
    `scipy.ndimage.zoom(order=1)` as vit_jax, big_vision and scenic resize it (the corner
    positions are kept; TF's half-pixel resize would differ)."""
    if tuple(grid.shape[:2]) == tuple(shape):
        return grid
    factors = (shape[0] / grid.shape[0], shape[1] / grid.shape[1], 1)
    resized = scipy.ndimage.zoom(grid, factors, order=1)
    if resized.shape[:2] != tuple(shape):  # zoom rounds the output size
        raise CheckpointError(f"resizing {grid.shape[:2]} to {shape} gave {resized.shape[:2]}")
    return resized


class PosEmbedding(NamedTuple):
    """A positional embedding split for the model: class position (1, 1, D) or None when the
    file has none, and the patch positions (1, N, D) for the model's token grid."""

    class_position: np.ndarray | None
    patches: np.ndarray


def _source_grid(count: int, key: str) -> tuple[bool, int]:
    """(has a class position?, side of the square patch grid) for `count` positions."""
    side = math.isqrt(count)
    if side * side == count:
        return False, side
    side = math.isqrt(count - 1)
    if side * side == count - 1:
        return True, side
    raise CheckpointError(
        f"{key!r}: {count} positions are neither a square grid nor one plus a square grid"
    )


def adapt_pos_embedding(
    pos: np.ndarray,
    grid: tuple[int, ...],
    key: str,
    source_grid: tuple[int, int] | None = None,
) -> PosEmbedding:
    """Checkpoint positional embedding (1, [1 +] h*w, D) -> PosEmbedding for a token grid.

    The file's grid is square unless `source_grid` gives it; a class position (one entry more than
    the grid) is split off and kept as is. 2D grids (image, spectrogram) are resized; 3D grids
    (t, h, w) are resized over (h, w) and then tiled over t, so every time step starts from the
    image's spatial embedding.
    """
    if pos.ndim != 3 or pos.shape[0] != 1:
        raise CheckpointError(f"{key!r}: expected shape (1, [1 +] h*w, D), got {pos.shape}")
    count = pos.shape[1]
    if source_grid is None:
        has_class, side = _source_grid(count, key)
        source_grid = (side, side)
    else:
        has_class = count == math.prod(source_grid) + 1
        if not has_class and count != math.prod(source_grid):
            raise CheckpointError(f"{key!r}: {count} positions do not fit a {source_grid} grid")
    class_position = pos[:, :1] if has_class else None
    patches = pos[0, int(has_class) :].reshape(*source_grid, -1)
    if len(grid) == 2:
        new = resize_grid(patches, grid)
    elif len(grid) == 3:
        new = np.tile(resize_grid(patches, grid[1:])[None], (grid[0], 1, 1, 1))
    else:
        raise CheckpointError(f"{key!r}: cannot map to a token grid of rank {len(grid)}")
    return PosEmbedding(class_position, new.reshape(1, -1, pos.shape[-1]))


def _patch_kernel_for(modality: str, kernel: np.ndarray, size) -> np.ndarray:
    if modality == "image":
        return kernel
    if modality == "video":
        return central_frame_kernel(kernel, size.tubelet_frames)
    return channel_sum_kernel(kernel)


def _load_tokenizer(tokenizer, archive: _Archive, size) -> list[str]:
    """Loads one tokenizer; returns the names of its variables left at their initialisation."""
    path = archive.path
    kernel, kernel_key = archive.lookup("embedding/kernel")
    if kernel.shape[:2] != (size.patch_size, size.patch_size):
        raise CheckpointError(
            f"{path}: {kernel_key!r} has patch {kernel.shape[:2]}, the config's "
            f"model patch_size is {size.patch_size}"
        )
    name = tokenizer.modality
    new_kernel = _patch_kernel_for(name, kernel, size)
    _assign(tokenizer.kernel, new_kernel, f"{kernel_key} ({name})", path)
    bias, bias_key = archive.lookup("embedding/bias")
    _assign(tokenizer.bias, bias, bias_key, path)
    fresh = []
    if archive.has("cls"):
        cls, cls_key = archive.lookup("cls")
        _assign(tokenizer.cls, cls, cls_key, path)
    else:
        fresh.append(f"{tokenizer.name}/cls")
    pos, pos_key = archive.lookup(archive.pos_embedding_name())
    adapted = adapt_pos_embedding(pos, tokenizer.grid, pos_key)
    if adapted.class_position is not None:
        class_position = adapted.class_position
    elif archive.has("cls"):
        # big_vision adds no position to its class token: a zero one keeps the token as trained.
        class_position = np.zeros_like(adapted.patches[:, :1])
    else:
        class_position = tokenizer.pos_embedding.numpy()[:, :1]
        fresh.append(f"{tokenizer.name}/pos_embedding[0] (class position)")
    new_pos = np.concatenate([class_position, adapted.patches], axis=1)
    _assign(tokenizer.pos_embedding, new_pos, f"{pos_key} ({name})", path)
    return fresh


def read_npz(path: str) -> dict[str, np.ndarray]:
    """All arrays of an .npz on a local path or any tf.io.gfile filesystem (gs://...)."""
    if not tf.io.gfile.exists(path):
        raise CheckpointError(f"{path}: checkpoint file not found (model.init_checkpoint)")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def load_vit_npz(model, path: str) -> dict:
    """Loads the ViT checkpoint at `path` into a built PolyViT (see `trainer.model.build_all`),
    checked against the model's own size (`model.size`, a core.config.ModelSize).

    Returns the load report: {"loaded": the file's keys used, "ignored": its keys not used
    (heads, pre_logits, MAP head), "fresh": model variables left at their initialisation (the
    class tokens when the file has none), "layout": what was read (prefix, Linen renumbering,
    per-block or scanned blocks, pooling, positional-embedding key)}.
    """
    if not model.built or not model.encoder.built:
        raise ValueError("load_vit_npz: build the model first (trainer.model.build_all)")
    size = model.size
    archive = _Archive(read_npz(path), path)
    needed = size.modality_layers + size.num_layers
    if archive.depth != needed:
        where = archive.file_key(SCANNED if archive.scanned else PER_BLOCK.format("N"))
        raise CheckpointError(
            f"{path}: has {archive.depth} encoder blocks ({where}), the config "
            f"needs model modality_layers + num_layers = {needed}"
        )
    for modality_encoder in model.modality_encoders.values():
        for i, block in enumerate(modality_encoder.blocks):
            _load_block(block, archive, i)
    for i, block in enumerate(model.encoder.blocks):
        _load_block(block, archive, size.modality_layers + i)
    final_norm = model.encoder.final_norm
    for variable, name in ((final_norm.gamma, "scale"), (final_norm.beta, "bias")):
        value, key = archive.lookup(f"Transformer/encoder_norm/{name}")
        _assign(variable, value, key, path)
    fresh = []
    for tokenizer in model.tokenizers.values():
        fresh += _load_tokenizer(tokenizer, archive, size)
    layout = {
        "prefix": archive.prefix,
        "renumbered_to_linen": archive.renumbered,
        "blocks": "scanned" if archive.scanned else "per-block",
        "pooling": archive.pooling(),
        "pos_embedding": archive.file_key(archive.pos_embedding_name()),
    }
    ignored = sorted(set(archive.arrays) - archive.used)
    log.info("%s: loaded %d arrays (%s); not used: %s", path, len(archive.used), layout, ignored)
    if fresh:
        log.info(
            "%s: no class token in the file (%s pooling); these start fresh: %s",
            path,
            layout["pooling"],
            fresh,
        )
    return {"loaded": sorted(archive.used), "ignored": ignored, "fresh": fresh, "layout": layout}
