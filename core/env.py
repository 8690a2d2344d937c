"""Process environment the stack needs, set before TensorFlow is first imported.

TFX 1.16 and TFMA need Keras 2 (`tf_keras`); TensorFlow's C++ start-up messages (CUDA plugin
registration on a machine without GPUs) and google-api-core's Python-version notice drown the
progress output. Users never have to export these themselves: every entry point imports this
module first, and the variables reach the subprocesses that Beam and TFX start.
"""

import os
import warnings

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
warnings.filterwarnings("ignore", category=FutureWarning)
