"""The data contract of MediaExampleGen's output (`schema.pbtxt`, package data)."""

import os

CURATED_SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema.pbtxt")
