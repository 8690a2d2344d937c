"""preprocessing_fn and the in-graph media processors shared by training and serving."""

import core.env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
