"""Tiny configs for the tests, built the way a user's config is: plain data in the YAML layout,
`key=value` overrides through `core.config.apply_overrides`, then `from_dict` (so every test
config is validated like a real one).

    tiny_config(four_tasks(), {"training.steps": 8, "tasks.dtmf.eval.min_metric": 0.5})
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from core import config as config_lib

# A model that builds and trains in seconds; its patch size divides TINY_INPUTS' sizes.
TINY_MODEL = {"hidden_size": 32, "num_layers": 1, "mlp_dim": 64, "patch_size": 4}
TINY_INPUTS = {"image_size": 16, "video_size": 16, "num_frames": 4}


def task(modality: str, num_classes: int, root: str = "media", **fields: Any) -> dict:
    """One task in the YAML layout (`root`: the task's data folder below data_root)."""
    return {"modality": modality, "data": {"root": root}, "num_classes": num_classes, **fields}


def multi_label(modality: str, num_classes: int, root: str = "media", **fields: Any) -> dict:
    return task(modality, num_classes, root, label_type="multi", **fields)


def four_tasks(dtmf_classes: int = 12, tone_mix_classes: int = 6) -> dict:
    """The demo's four tasks (names and modalities of configs/demo.yaml): digits (image),
    motion (video), dtmf (audio) and tone_mix (multi-label audio)."""
    return {
        "digits": task("image", 10, "digits"),
        "motion": task("video", 4, "motion"),
        "dtmf": task("audio", dtmf_classes, "dtmf"),
        "tone_mix": multi_label("audio", tone_mix_classes, "tone_mix"),
    }


def as_overrides(values: Mapping[str, Any]) -> list[str]:
    """{"training.steps": 6} -> ["training.steps=6"], the `--set` form apply_overrides parses
    (JSON is YAML, so strings, numbers, booleans and lists keep their types)."""
    return [f"{key}={json.dumps(value)}" for key, value in values.items()]


def build(data: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> config_lib.Config:
    """A Config from plain data and dotted-key overrides (`tasks.<name>.<field>` by name)."""
    fresh = copy.deepcopy(dict(data))  # apply_overrides edits nested mappings in place
    return config_lib.from_dict(config_lib.apply_overrides(fresh, as_overrides(overrides or {})))


def tiny_data(tasks: Mapping[str, dict], **sections: Any) -> dict:
    """Plain data of a config with `tasks`, the tiny model and tiny inputs; `sections` adds or
    replaces top-level sections (e.g. training={...})."""
    return {
        "tasks": copy.deepcopy(dict(tasks)),
        "model": {"preset": "tiny", "overrides": dict(TINY_MODEL)},
        "inputs": dict(TINY_INPUTS),
        **copy.deepcopy(sections),
    }


def tiny_config(
    tasks: Mapping[str, dict], overrides: Mapping[str, Any] | None = None, **sections: Any
) -> config_lib.Config:
    """build(tiny_data(tasks, **sections), overrides)."""
    return build(tiny_data(tasks, **sections), overrides)


def model_overrides(**fields: Any) -> dict[str, Any]:
    """{"num_layers": 2} -> {"model.overrides.num_layers": 2}."""
    return {f"model.overrides.{name}": value for name, value in fields.items()}


# Shapes the input pipeline produces for model_config()'s inputs (the feature_shape contract).
FEATURE_SHAPES = {"image": (16, 16, 3), "video": (4, 16, 16, 3), "audio": (21, 12, 1)}


def model_config(**model_fields: Any) -> config_lib.Config:
    """The four demo tasks (dtmf with 12 keys) on a 2-layer width-32 encoder; `model_fields`
    override the model size (e.g. num_layers=1, zero_init_heads=False)."""
    fields = {"num_layers": 2, "num_heads": 2, **model_fields}
    return tiny_config(four_tasks(), model_overrides(**fields))
