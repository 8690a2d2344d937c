"""Handwritten digits (scikit-learn's bundled 8x8 set, no download), upscaled and augmented."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from demo.presets import ImageSpec

DIGIT_LABELS = tuple(str(d) for d in range(10))
_DIGIT_MAX = 16.0  # load_digits stores ink as 0..16


def load_digit_ink() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as ink in [0, 1], shape (N, 8, 8), and their integer labels (N,)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float32) / _DIGIT_MAX, digits.target.astype(np.int64)


def pick_per_class(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> list[list[int]]:
    """For each digit 0..9, `per_class` distinct sample indices in a seeded random order."""
    picks = []
    for digit in range(10):
        pool = np.flatnonzero(labels == digit)
        if per_class > len(pool):
            raise ValueError(f"digit {digit}: {per_class} images asked, only {len(pool)} exist")
        picks.append([int(i) for i in rng.permutation(pool)[:per_class]])
    return picks


def _affine_ink(
    ink: np.ndarray, out_hw: tuple[int, int], rng: np.random.Generator, spec: ImageSpec
) -> np.ndarray:
    """Resamples the 8x8 ink into out_hw with a random rotation, scale and shift."""
    height, width = out_hw
    zoom = 0.8 * min(height, width) / ink.shape[0] * rng.uniform(*spec.scale_range)
    angle = np.deg2rad(rng.uniform(-spec.max_rotation, spec.max_rotation))
    shift = rng.uniform(-spec.max_shift, spec.max_shift, size=2)
    # affine_transform maps output coordinates to input ones: input = M @ output + offset.
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = np.array([[cos, -sin], [sin, cos]]) / zoom
    out_center = np.array([(height - 1) / 2, (width - 1) / 2]) + shift
    in_center = (np.array(ink.shape) - 1) / 2
    offset = in_center - matrix @ out_center
    resampled = ndimage.affine_transform(
        ink, matrix, offset=offset, output_shape=(height, width), order=1, mode="constant"
    )
    return np.clip(resampled, 0.0, 1.0)


def _colors(rng: np.random.Generator, grayscale: bool) -> tuple[np.ndarray, np.ndarray]:
    """Light paper and dark ink of random tints, with enough contrast.

    Always dark on light, as scanned handwriting is: a random polarity too made the digits a
    much harder task than a tiny transformer learns in the demo's few minutes of CPU training.
    """
    channels = 1 if grayscale else 3
    ink = rng.uniform(0, 70, size=channels)
    paper = rng.uniform(170, 255, size=channels)
    return paper, ink


def augmented_digit(
    ink: np.ndarray, rng: np.random.Generator, spec: ImageSpec, grayscale: bool = False
) -> np.ndarray:
    """One augmented, upscaled digit image: uint8 (H, W) if grayscale else (H, W, 3)."""
    width, height = spec.sizes[rng.integers(len(spec.sizes))]
    alpha = _affine_ink(ink, (height, width), rng, spec)[..., np.newaxis]
    paper, pen = _colors(rng, grayscale)
    pixels = paper * (1.0 - alpha) + pen * alpha
    pixels = pixels + rng.normal(0.0, rng.uniform(*spec.noise_std), size=pixels.shape)
    pixels = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    return pixels[..., 0] if grayscale else pixels
