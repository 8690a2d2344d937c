"""Pipeline definition, configuration, runners and the `polyvit` command line."""

from core import env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
