"""Task sampling schedules and the warm-up + cosine learning rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trainer_loop_standins as standins

from core.config import ConfigError
from tests.support import configs
from trainer import schedules


def _config(schedule: str, steps: int, weights: dict[str, float], seed: int = 7):
    tasks = {name: configs.task("image", 2, name, sampling_weight=w) for name, w in weights.items()}
    return configs.build(
        {"tasks": tasks},
        {"training.schedule": schedule, "training.steps": steps, "training.seed": seed},
    )


def _frequencies(schedule: schedules.TaskSchedule, start: int, stop: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in range(start, stop):
        for name in schedule.tasks_at(i):
            counts[name] = counts.get(name, 0) + 1
    return counts


WEIGHTS = {"imagenet": 5.0, "kinetics": 3.0, "audioset": 1.5, "pets": 0.5}


def test_weighted_counts_follow_the_weights_exactly_and_are_shuffled():
    config = _config("weighted", 10_000, WEIGHTS)
    schedule = schedules.TaskSchedule(config.tasks, config.training, 10_000)
    assert _frequencies(schedule, 0, 10_000) == {
        "imagenet": 5000,
        "kinetics": 3000,
        "audioset": 1500,
        "pets": 500,
    }
    # Shuffled: every 1000-step window holds each task close to its share (a block order would
    # give the first window to imagenet alone).
    for start in range(0, 10_000, 1000):
        window = _frequencies(schedule, start, start + 1000)
        assert abs(window["imagenet"] - 500) < 80 and abs(window["pets"] - 50) < 30, window
    first = [schedule.tasks_at(i)[0] for i in range(50)]
    assert len(set(first)) >= 3


def test_weighted_defaults_to_the_step_budgets():
    config = standins.standin_config("weighted", steps=40)  # steps 300 and 100
    schedule = schedules.TaskSchedule(config.tasks, config.training, 40)
    assert schedule.steps_per_task() == {"alpha": 30, "beta": 10}


def test_uniform_gives_every_task_the_same_share():
    config = _config("uniform", 1002, WEIGHTS)
    schedule = schedules.TaskSchedule(config.tasks, config.training, 1002)
    counts = _frequencies(schedule, 0, 1002)
    assert sorted(counts.values()) == [250, 250, 251, 251]
    assert sum(counts.values()) == 1002


def test_task_by_task_is_contiguous_blocks_in_config_order():
    config = _config("task_by_task", 100, WEIGHTS)
    schedule = schedules.TaskSchedule(config.tasks, config.training, 100)
    sequence = [schedule.tasks_at(i)[0] for i in range(100)]
    expected = ["imagenet"] * 50 + ["kinetics"] * 30 + ["audioset"] * 15 + ["pets"] * 5
    assert sequence == expected


def test_accumulate_uses_every_task_every_step():
    config = _config("accumulate", 10, WEIGHTS)
    schedule = schedules.TaskSchedule(config.tasks, config.training, 10)
    assert all(schedule.tasks_at(i) == tuple(WEIGHTS) for i in range(10))
    assert np.all(schedule.lr_multipliers(config.tasks) == 1.0)


def test_sequence_is_a_pure_function_of_the_seed():
    config = _config("weighted", 500, WEIGHTS, seed=3)
    a = schedules.TaskSchedule(config.tasks, config.training, 500)
    b = schedules.TaskSchedule(config.tasks, config.training, 500)
    assert [a.tasks_at(i) for i in range(500)] == [b.tasks_at(i) for i in range(500)]
    other = _config("weighted", 500, WEIGHTS, seed=4)
    c = schedules.TaskSchedule(other.tasks, other.training, 500)
    assert [a.tasks_at(i) for i in range(500)] != [c.tasks_at(i) for i in range(500)]
    with pytest.raises(IndexError):
        a.tasks_at(500)


def test_apportion_sums_to_total_and_rejects_bad_weights():
    assert list(schedules.apportion([1, 1, 1], 10)) == [4, 3, 3]
    assert list(schedules.apportion([2, 1], 0)) == [0, 0]
    with pytest.raises(ConfigError, match="positive"):
        schedules.apportion([1, 0], 10)


def test_lr_multipliers_follow_the_task_of_each_step():
    config = standins.standin_config("weighted", steps=40)
    schedule = schedules.TaskSchedule(config.tasks, config.training, 40)
    multipliers = schedule.lr_multipliers(config.tasks)
    expected = [1.0 if schedule.tasks_at(i) == ("alpha",) else 0.5 for i in range(40)]
    np.testing.assert_array_equal(multipliers, expected)


def test_warmup_cosine_values():
    lr = lambda step: schedules.warmup_cosine(step, 1.0, 10, 110)
    assert lr(0) == pytest.approx(0.1)
    assert lr(4) == pytest.approx(0.5)
    assert lr(9) == pytest.approx(1.0)
    assert lr(10) == pytest.approx(1.0)
    assert lr(60) == pytest.approx(0.5)
    assert lr(110) == pytest.approx(0.0)
    assert lr(35) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))


def test_tf_schedule_matches_the_python_one_times_the_multiplier():
    multipliers = np.array([1.0, 0.5] * 55, np.float32)
    tf_lr = schedules.WarmupCosine(2.0, 10, 110, multipliers)
    for step in (0, 5, 9, 10, 37, 80, 109):
        expected = schedules.warmup_cosine(step, 2.0, 10, 110) * multipliers[step]
        assert float(tf_lr(step)) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    no_warmup = schedules.WarmupCosine(1.0, 0, 100)
    assert float(no_warmup(0)) == pytest.approx(1.0)
    assert float(no_warmup(50)) == pytest.approx(0.5, rel=1e-5)
