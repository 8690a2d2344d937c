"""The local runs' blessed-model resolver: the newest blessed model, except the one this run's
Trainer would train again (same data and weight-deciding settings)."""

from __future__ import annotations

import json
import os

from tfx import v1 as tfx

from components.continuous.model_resolver import (
    LatestBlessedOtherModelStrategy,
    newest_blessed_other_model,
)
from core import config as config_lib
from tests.support import configs
from trainer import run_fn

CONFIG = {
    "pipeline_name": "p",
    "data_root": "data",
    "tasks": {"digits": {"modality": "image", "data": {"root": "digits"}, "num_classes": 2}},
    "training": {"steps": 5},
}


def _model(tmp_path, id_: int, fingerprint: str | None):
    model = tfx.types.standard_artifacts.Model()
    model.id = id_
    model.uri = str(tmp_path / f"model{id_}")
    os.makedirs(model.uri)
    if fingerprint:
        with open(os.path.join(model.uri, run_fn.IDENTITY_FILE), "w") as f:
            json.dump({"fingerprint": fingerprint}, f)
    return model


def _blessing(model_id: int, blessed: bool):
    blessing = tfx.types.standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property("current_model_id", model_id)
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def _examples(uri: str):
    examples = tfx.types.standard_artifacts.Examples()
    examples.uri = uri
    return examples


def test_newest_blessed_model_that_is_not_ours():
    models = [tfx.types.standard_artifacts.Model() for _ in range(3)]
    for i, m in enumerate(models, start=1):
        m.id = i
    blessings = [_blessing(1, True), _blessing(2, True), _blessing(3, False)]
    assert newest_blessed_other_model(models, blessings, lambda m: False)[0] == [models[1]]
    chosen, blessing = newest_blessed_other_model(models, blessings, lambda m: m.id == 2)
    assert chosen == [models[0]] and blessing == [blessings[0]]
    assert newest_blessed_other_model(models, blessings, lambda m: True) == ([], [])


def test_the_model_trained_on_the_same_data_and_settings_is_skipped(tmp_path):
    config = configs.build(CONFIG)
    trainer_json = config_lib.slice_to_json(config_lib.trainer_config(config))
    strategy = LatestBlessedOtherModelStrategy(trainer_json, 5)
    examples = [_examples("/pipeline_root/MediaExampleGen/examples/3")]
    ours = run_fn.resume_fingerprint(
        config_lib.trainer_config(config), "/pipeline_root/MediaExampleGen/examples/3", 5
    )
    older = _model(tmp_path, 1, "0123456789abcdef")  # other data or settings
    same = _model(tmp_path, 2, ours)
    inputs = {
        "model": [older, same],
        "model_blessing": [_blessing(1, True), _blessing(2, True)],
        "examples": examples,
    }
    resolved = strategy.resolve_artifacts(None, inputs)
    assert resolved["model"] == [older] and resolved["examples"] == examples
    # More steps is another model: the newest blessed one is the baseline and warm start.
    resolved = LatestBlessedOtherModelStrategy(trainer_json, 6).resolve_artifacts(None, inputs)
    assert resolved["model"] == [same]
    # So are other data (a new span).
    inputs["examples"] = [_examples("/pipeline_root/MediaExampleGen/examples/9")]
    assert strategy.resolve_artifacts(None, inputs)["model"] == [same]
