"""Per-modality tokenizers: media tensor -> [class token, patch tokens] + positional embedding.

image  [B, S, S, 3]     2D patches p x p                  grid (S/p, S/p)
video  [B, T, S, S, 3]  3D tubelets t x p x p             grid (T/t, S/p, S/p)
audio  [B, F, M, 1]     log-mel patches p x p             grid (ceil(F/p), ceil(M/p))

A patch projection with stride equal to the patch is a convolution, but it is computed here as
`patchify` (a reshape) followed by one matmul: the same result as Conv2D/Conv3D with a kernel of
shape (*patch, channels, hidden), without Conv3D's slow CPU kernel. The kernel variable keeps
that convolution layout, so ViT checkpoints (HWIO kernels) load without reshuffling.

From a 2D RGB kernel (trainer/vit_checkpoint.py), the video tubelet kernel takes it in its
central frame (`central_frame_kernel`) and the one-channel audio kernel is its sum over the
colour channels (`channel_sum_kernel`): both as scenic's PolyViT initialises them.

Audio: the number of spectrogram frames F rarely divides by the patch size (and M may not
either). The spectrogram is zero-padded at the end, statically, up to the next multiple of the
patch: no frame is dropped, and since the input pipeline standardises log-mels, zero is the
mean value. The padded size is fixed by the input shape, so the graph stays static for TPU.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
import tf_keras as keras


def patchify(x: tf.Tensor, patch: tuple[int, ...]) -> tf.Tensor:
    """[B, d1, ..., dk, C] -> [B, prod(d/p), prod(p) * C], each patch flattened (p1, ..., pk, C).

    The flattening order matches a convolution kernel of shape (p1, ..., pk, C, D), so
    `patchify(x, p) @ kernel.reshape(-1, D)` equals a VALID convolution with stride p.
    """
    dims = x.shape[1:-1]
    channels = x.shape[-1]
    if len(dims) != len(patch):
        raise ValueError(f"patchify: input has {len(dims)} spatial dims, patch {patch}")
    for dim, size in zip(dims, patch, strict=True):
        if dim is None or dim % size:
            raise ValueError(f"patchify: input dims {tuple(dims)} are not multiples of {patch}")
    grid = [dim // size for dim, size in zip(dims, patch, strict=True)]
    split = [-1]
    for g, size in zip(grid, patch, strict=True):
        split += [g, size]
    x = tf.reshape(x, split + [channels])
    k = len(patch)
    # axes: 0 batch, then (grid_i, patch_i) pairs, then channels.
    order = [0] + [1 + 2 * i for i in range(k)] + [2 + 2 * i for i in range(k)] + [1 + 2 * k]
    x = tf.transpose(x, order)
    return tf.reshape(x, [-1, math.prod(grid), math.prod(patch) * channels])


def central_frame_kernel(kernel_2d: np.ndarray, frames: int) -> np.ndarray:
    """Tubelet kernel (t, p, p, C, D) with the 2D kernel in the central frame, zeros elsewhere.

    A video of identical frames then embeds exactly like the still image (ViViT's
    central-frame initialisation), instead of `t` times brighter as with inflation.
    """
    kernel_3d = np.zeros((frames, *kernel_2d.shape), dtype=kernel_2d.dtype)
    kernel_3d[frames // 2] = kernel_2d
    return kernel_3d


def channel_sum_kernel(kernel_rgb: np.ndarray) -> np.ndarray:
    """Kernel (p, p, C, D) -> (p, p, 1, D): the sum over the C input channels.

    Scenic's PolyViT copies the RGB kernel for spectrograms and tiles the one-channel
    spectrogram to three channels; the summed kernel on the spectrogram itself gives the same
    embeddings (a mean would give a third of them).
    """
    return kernel_rgb.sum(axis=2, keepdims=True)


class Tokenizer(keras.layers.Layer):
    """Patch projection, own class token and own positional embedding for one modality.

    The token grid (and so the positional embedding's length) is fixed by the input shape the
    first call sees; subclasses say how an input shape maps to patches.
    """

    modality = ""

    def __init__(self, hidden_size: int, patch: tuple[int, ...], dropout: float, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.patch = tuple(patch)
        self.dropout = keras.layers.Dropout(dropout)
        self.grid: tuple[int, ...] = ()

    def padded_dims(self, dims: tuple[int, ...]) -> tuple[int, ...]:
        """Spatial dims after any padding; the default requires exact multiples."""
        for dim, size in zip(dims, self.patch, strict=True):
            if dim % size:
                raise ValueError(
                    f"{self.name}: {self.modality} input dims {dims} are not multiples of the "
                    f"patch {self.patch} (see inputs.* and model patch_size/tubelet_frames)"
                )
        return dims

    def build(self, input_shape):
        dims = tuple(input_shape[1:-1])
        if len(dims) != len(self.patch) or any(d is None for d in dims):
            raise ValueError(
                f"{self.name}: expected a static {self.modality} input of rank "
                f"{len(self.patch) + 2}, got shape {tuple(input_shape)}"
            )
        padded = self.padded_dims(dims)
        self.grid = tuple(d // p for d, p in zip(padded, self.patch, strict=True))
        channels = input_shape[-1]
        fan_in = math.prod(self.patch) * channels
        self.kernel = self.add_weight(
            "kernel",
            shape=(*self.patch, channels, self.hidden_size),
            initializer=keras.initializers.LecunNormal(),
        )
        self.bias = self.add_weight("bias", shape=(self.hidden_size,), initializer="zeros")
        self.cls = self.add_weight("cls", shape=(1, 1, self.hidden_size), initializer="zeros")
        self.pos_embedding = self.add_weight(
            "pos_embedding",
            shape=(1, 1 + math.prod(self.grid), self.hidden_size),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )
        self._fan_in = fan_in
        super().build(input_shape)

    @property
    def num_tokens(self) -> int:
        """Tokens per example, class token included."""
        return 1 + math.prod(self.grid)

    def pad(self, x: tf.Tensor) -> tf.Tensor:
        return x

    def embed_patches(self, x: tf.Tensor) -> tf.Tensor:
        """[B, *dims, C] -> patch embeddings [B, N, hidden], before class token and positions."""
        patches = patchify(self.pad(x), self.patch)
        kernel = tf.reshape(self.kernel, [self._fan_in, self.hidden_size])
        return tf.matmul(patches, kernel) + self.bias

    def call(self, x, training=False):
        tokens = self.embed_patches(x)
        cls = tf.tile(tf.cast(self.cls, tokens.dtype), [tf.shape(tokens)[0], 1, 1])
        tokens = tf.concat([cls, tokens], axis=1) + tf.cast(self.pos_embedding, tokens.dtype)
        return self.dropout(tokens, training=training)


class ImageTokenizer(Tokenizer):
    """2D p x p patches of an RGB image [B, S, S, 3]."""

    modality = "image"

    def __init__(self, hidden_size: int, patch_size: int, dropout: float, **kwargs):
        super().__init__(hidden_size, (patch_size, patch_size), dropout, **kwargs)


class VideoTokenizer(Tokenizer):
    """3D t x p x p tubelets of a clip [B, T, S, S, 3]."""

    modality = "video"

    def __init__(
        self, hidden_size: int, patch_size: int, tubelet_frames: int, dropout: float, **kwargs
    ):
        super().__init__(hidden_size, (tubelet_frames, patch_size, patch_size), dropout, **kwargs)


class AudioTokenizer(Tokenizer):
    """p x p patches of a log-mel spectrogram [B, F, M, 1], zero-padded up to multiples of p."""

    modality = "audio"

    def __init__(self, hidden_size: int, patch_size: int, dropout: float, **kwargs):
        super().__init__(hidden_size, (patch_size, patch_size), dropout, **kwargs)

    def padded_dims(self, dims: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(-(-d // p) * p for d, p in zip(dims, self.patch, strict=True))

    def pad(self, x: tf.Tensor) -> tf.Tensor:
        dims = tuple(x.shape[1:-1])
        extra = [p - d for d, p in zip(dims, self.padded_dims(dims), strict=True)]
        if not any(extra):
            return x
        return tf.pad(x, [[0, 0]] + [[0, e] for e in extra] + [[0, 0]])


def make_tokenizer(modality: str, size, name: str) -> Tokenizer:
    """The tokenizer of `modality` sized by a `core.config.ModelSize`."""
    if modality == "image":
        return ImageTokenizer(size.hidden_size, size.patch_size, size.dropout, name=name)
    if modality == "video":
        return VideoTokenizer(
            size.hidden_size, size.patch_size, size.tubelet_frames, size.dropout, name=name
        )
    if modality == "audio":
        return AudioTokenizer(size.hidden_size, size.patch_size, size.dropout, name=name)
    raise ValueError(f"unknown modality {modality!r}; expected image, video or audio")
