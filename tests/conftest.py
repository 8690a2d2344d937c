"""Shared pytest setup. Tests are `unit` (fast, default) or `e2e` (marked, tiny generated media)."""

import core.env  # noqa: F401  (the process environment, before any test imports TensorFlow)
