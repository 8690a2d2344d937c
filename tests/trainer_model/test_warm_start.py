"""Warm start from an exported model: the encoder, tokenizers and heads of tasks with unchanged
labels carry over; a task whose label set changed gets a fresh head."""

from __future__ import annotations

import numpy as np
import pytest

from core import config as config_lib
from tests.support import configs
from trainer import warm_start
from trainer.export import export_saved_model
from trainer.model import build_model

OLD = {"digits": [f"d{i}" for i in range(10)], "motion": ["down", "left", "right", "up"]}


def two_task_config(motion_classes: int, seed: int) -> config_lib.TrainerConfig:
    tasks = {"digits": configs.task("image", 10, "digits"), "motion": configs.task("video", 4)}
    tasks["motion"]["num_classes"] = motion_classes
    settings = {
        **configs.model_overrides(num_layers=1, num_heads=2, zero_init_heads=False),
        "training.seed": seed,
    }
    return config_lib.trainer_config(configs.tiny_config(tasks, settings))


def test_which_heads_carry_is_decided_by_the_label_vocabularies():
    new = {"digits": OLD["digits"], "motion": ["down", "left"], "extra": ["a"]}
    assert warm_start.heads_to_carry(OLD, new) == (["digits"], ["motion", "extra"])
    reordered = {"motion": ["left", "down", "right", "up"]}
    assert warm_start.heads_to_carry(OLD, reordered) == ([], ["motion"])


def test_plan_copies_matching_non_head_variables_and_chosen_heads_only():
    target = {
        "encoder/ln/gamma:0": (8,),
        "tokenizer_image/kernel:0": (4, 8),
        "head_digits/dense/kernel:0": (8, 10),
        "head_motion/dense/kernel:0": (8, 2),
        "new_layer/kernel:0": (3,),
    }
    source = {**target, "head_motion/dense/kernel:0": (8, 4)}
    del source["new_layer/kernel:0"]
    copy, keep = warm_start.plan(target, source, ["digits", "motion"], ["digits"])
    assert sorted(copy) == [
        "encoder/ln/gamma:0",
        "head_digits/dense/kernel:0",
        "tokenizer_image/kernel:0",
    ]
    assert sorted(keep) == ["head_motion/dense/kernel:0", "new_layer/kernel:0"]


def assert_same(mine, theirs) -> None:
    for a, b in zip(mine, theirs, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("motion_classes", [4, 2])
def test_warm_start_loads_encoder_and_unchanged_heads_from_a_saved_model(tmp_path, motion_classes):
    old_config = two_task_config(4, seed=1)
    old = build_model(old_config.model, old_config.tasks, old_config.inputs)
    serving_dir = str(tmp_path / "model" / "Format-Serving")
    export_saved_model(old, old_config, OLD, serving_dir)
    warm_start.write_labels(serving_dir, OLD)

    new_config = two_task_config(motion_classes, seed=2)
    new = build_model(new_config.model, new_config.tasks, new_config.inputs)
    fresh_motion = [v.numpy() for v in new.heads["motion"].variables]
    labels = {**OLD, "motion": OLD["motion"][:motion_classes]}
    carry, _ = warm_start.heads_to_carry(warm_start.read_labels(serving_dir), labels)
    report = warm_start.warm_start(new, serving_dir, carry_heads_for=carry)

    for mine, theirs in zip(new.encoder.variables, old.encoder.variables, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    tokenizer = new.tokenizers["image"].variables
    for mine, theirs in zip(tokenizer, old.tokenizers["image"].variables, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert_same(new.heads["digits"].variables, old.heads["digits"].variables)
    if motion_classes == 4:  # unchanged labels: the head is the old one
        assert report.carried_heads == ["digits", "motion"]
        assert_same(new.heads["motion"].variables, old.heads["motion"].variables)
    else:  # a changed label set: the head stays as initialised
        assert (report.carried_heads, report.fresh_heads) == (["digits"], ["motion"])
        for mine, before in zip(new.heads["motion"].variables, fresh_motion, strict=True):
            np.testing.assert_array_equal(mine.numpy(), before)
    assert report.variables_fresh == []
    assert report.source == serving_dir


def test_a_model_without_labels_file_reads_as_none(tmp_path):
    assert warm_start.read_labels(str(tmp_path / "m" / "Format-Serving")) is None
