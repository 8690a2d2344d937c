"""gRPC inference clients and a local TF-Serving-compatible model server."""

import core.env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
