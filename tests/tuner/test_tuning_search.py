"""A tiny search with the real training loop finds a better setting than a deliberately bad
starting point: a learning rate so small that the randomly initialised heads stay as they are
in the trial's steps (with zero-initialised heads even a tiny step in the right direction
separates these easy classes, so the heads start random here)."""

from __future__ import annotations

import os
import types

import numpy as np
import pytest

from core import config as config_lib
from core import features
from tests.support import configs, records
from trainer import tuning, tuning_fn

pytestmark = pytest.mark.e2e

STEPS = 30
# Two image tasks: four grey levels, and which colour channel is lit.
TASKS = {
    "shade": ["black", "dark", "light", "white"],
    "hue": ["blue", "green", "red"],
}


def _pixels(task: str, label: int, i: int) -> np.ndarray:
    if task == "shade":
        return np.full([20, 20, 3], 20 + 70 * label + (i % 3) * 4, np.uint8)
    pixels = np.full([20, 20, 3], 30 + (i % 3) * 4, np.uint8)
    pixels[..., 2 - label] = 220
    return pixels


def _record(task: str, label: int, i: int) -> bytes:
    frames = [records.jpeg(_pixels(task, label, i))]
    return records.record(label_indices=[label], frames=frames, filename=f"{task}_{i}")


def _write_examples(uri: str) -> None:
    by_split = {
        split: {
            name: [_record(name, i % len(labels), i) for i in range(count)]
            for name, labels in TASKS.items()
        }
        for split, count in (("train", 24), ("eval", 12))
    }
    records.write_examples_artifact(uri, by_split, TASKS)


def _config(bad_learning_rate: float) -> config_lib.Config:
    tasks = {
        name: configs.task("image", len(labels), name, batch_size=8)
        for name, labels in TASKS.items()
    }
    return configs.tiny_config(
        tasks,
        {
            "inputs.random_flip": False,
            "inputs.shuffle_buffer": 24,
            "model.overrides.patch_size": 8,
            "model.overrides.zero_init_heads": False,
        },
        training={
            "steps": STEPS,
            "learning_rate": bad_learning_rate,
            "warmup_steps": 0,
            "log_every": STEPS,
            "eval_steps": 0,
        },
        tuning={
            "enabled": True,
            "max_trials": 2,
            "steps_per_trial": STEPS,
            "eval_steps": 0,
            "seed": 3,
            "learning_rate": {"min": 3e-3, "max": 2e-2, "log": True},
        },
    )


def test_a_tiny_search_beats_a_deliberately_bad_start(tmp_path):
    uri = str(tmp_path / "examples")
    _write_examples(uri)
    config = _config(bad_learning_rate=1e-7)
    tuner_slice = config_lib.tuner_config(config_lib.trainer_config(config), config.tuning)
    fn_args = types.SimpleNamespace(
        train_files=[os.path.join(features.split_dir(uri, "train"), "*")],
        eval_files=[os.path.join(features.split_dir(uri, "eval"), "*")],
        train_steps=None,
        eval_steps=None,
        transform_output=None,
        base_model=None,
        working_dir=str(tmp_path / "tuner"),
        custom_config=config_lib.to_custom_config(tuner_slice),
    )
    result = tuning_fn.tuner_fn(fn_args)
    assert result.fit_kwargs == {"verbose": 0}

    # The starting point, scored exactly as a trial is: the configured values, no search.
    patterns = {
        split: {t: features.task_file_pattern(uri, split, t) for t in TASKS}
        for split in ("train", "eval")
    }
    start = tuning.run_trial(
        config_lib.trainer_config(config),
        config.tuning,
        {},
        str(tmp_path / "start"),
        patterns["train"],
        patterns["eval"],
    )

    result.tuner.search(**result.fit_kwargs)
    trials = list(result.tuner.oracle.trials.values())
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    best = result.tuner.oracle.get_best_trials(1)[0]
    best_values = result.tuner.get_best_hyperparameters()[0].values
    assert 3e-3 <= best_values["training.learning_rate"] <= 2e-2
    best_objective = best.metrics.get_best_value(tuning.OBJECTIVE)
    assert best_objective > start[tuning.OBJECTIVE] + 0.1, (best_objective, start)
    # Every trial reports each task's score beside the objective (their mean).
    for trial in trials:
        per_task = [trial.metrics.get_best_value(f"task.{name}") for name in TASKS]
        assert trial.metrics.get_best_value(tuning.OBJECTIVE) == pytest.approx(np.mean(per_task))
