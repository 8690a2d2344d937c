"""The PolyViT model, co-training loop, run_fn and export signatures."""

import core.env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
