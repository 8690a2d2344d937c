"""continuous.warm_start_steps: a warm-started Trainer trains a shorter, proportional budget."""

from __future__ import annotations

import dataclasses
import os

import pytest

from components.model_report import render, report
from core import config as config_lib
from trainer import run_fn, schedules

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _demo_spans() -> config_lib.TrainerConfig:
    config = config_lib.load(os.path.join(REPO, "configs", "demo_spans.yaml"))
    return config_lib.trainer_config(config)


def test_only_a_warm_start_trains_warm_start_steps():
    config = _demo_spans()
    assert config.warm_start_steps == 975 and config.training.steps == 3900
    assert run_fn.steps_to_train(config, 3900, warm_starts=True) == 975
    assert run_fn.steps_to_train(config, 3900, warm_starts=False) == 3900
    unset = dataclasses.replace(config, warm_start_steps=0)
    assert run_fn.steps_to_train(unset, 3900, warm_starts=True) == 3900
    # `--set training.steps=100` on this config: the fine-tune is no longer than a cold run.
    assert run_fn.steps_to_train(config, 100, warm_starts=True) == 100


def test_every_task_budget_scales_in_proportion():
    config = _demo_spans()
    budgets = {t.name: t.steps for t in config.tasks}
    full = schedules.TaskSchedule(config.tasks, config.training, 3900).steps_per_task()
    short = schedules.TaskSchedule(config.tasks, config.training, 975).steps_per_task()
    assert full == budgets
    assert short == {name: steps // 4 for name, steps in budgets.items()}


def test_the_steps_trained_decide_the_checkpoints_the_setting_the_identity():
    config = dataclasses.replace(
        _demo_spans(), training=dataclasses.replace(_demo_spans().training, checkpoint_root="/ckpt")
    )
    cold = run_fn.checkpoint_dir(config, "/run", "/ex/2", 3900)
    warm = run_fn.checkpoint_dir(config, "/run", "/ex/2", 975)
    assert cold != warm
    # A changed warm_start_steps trains other weights after a warm start: another identity.
    other = dataclasses.replace(config, warm_start_steps=500)
    assert run_fn.resume_fingerprint(other, "/ex/2", 3900) != run_fn.resume_fingerprint(
        config, "/ex/2", 3900
    )


def test_a_negative_warm_start_steps_names_the_key():
    data = {"tasks": {"a": {"modality": "image", "num_classes": 2, "data": {"root": "a"}}}}
    with pytest.raises(config_lib.ConfigError, match=r"continuous\.warm_start_steps"):
        config_lib.from_dict({**data, "continuous": {"warm_start_steps": -1}})
    sliced = dataclasses.replace(_demo_spans(), warm_start_steps=-5)
    with pytest.raises(config_lib.ConfigError, match=r"continuous\.warm_start_steps"):
        config_lib.validate_slice(sliced)


def test_the_report_says_how_long_the_fine_tune_was():
    warm = {
        "source": "/m/7/Format-Serving",
        "carried_heads": ["digits"],
        "fresh_heads": [],
        "steps": 975,
        "steps_per_task": {"motion": 75, "digits": 900},
    }
    line = report.describe_training_data({"spans": [2], "warm_start": warm})
    assert "fine-tuned for 975 steps (digits 900, motion 75)" in line
    assert "975 steps (digits 900, motion 75)" in render.training_section({"warm_start": warm})
    # Reports written before the setting existed still render.
    assert render.describe_steps({"source": "/m/1"}) == ""
