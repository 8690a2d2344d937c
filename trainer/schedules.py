"""Which task(s) each training step uses, and the learning rate of each step.

Both are pure functions of (config, step): a resumed run recomputes them and continues the same
sequence from the checkpointed step, with no schedule state in the checkpoint.

Task sampling (`training.schedule`):
  weighted      one task per step; task T gets round(total * w_T / sum(w)) of the steps
                (largest-remainder apportionment, so the counts sum to `total`), in an order
                shuffled by `training.seed`. This is PolyViT's "weighted task sampling"
                (its trainer permutes a list holding each dataset's step budget), so every step's
                marginal probability of T is w_T / sum(w) and the frequencies are exact.
  uniform       the same with equal weights.
  task_by_task  the same counts, unshuffled: contiguous blocks, tasks in config order.
  accumulate    every task every step (gradients summed, weighted by loss_weight).

Learning rate: linear warm-up over `warmup_steps` to `learning_rate`, then cosine decay to 0 at
`total_steps`, times the lr_multiplier of the task trained at that step (PolyViT's `lr_coefs`
multiply the schedule value of the step by the coefficient of the dataset sampled at that step,
so the multiplier scales the whole optimizer update, momentum and Adam moments included, not the
task's gradient). In `accumulate` mode one update mixes all tasks, so the multiplier instead
scales that task's gradient before the sum (see train_loop.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from core.config import ConfigError, Task, Training

SINGLE_TASK_SCHEDULES = ("weighted", "uniform", "task_by_task")


def apportion(weights: Sequence[float], total: int) -> np.ndarray:
    """Integer step counts proportional to `weights` that sum exactly to `total`.

    Largest remainder (Hamilton) method; ties go to the earlier task, so it is deterministic.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or not len(w) or np.any(w <= 0) or not np.all(np.isfinite(w)):
        raise ConfigError(f"task weights must be positive numbers, got {list(weights)}")
    if total < 0:
        raise ConfigError(f"training.steps: must not be negative, got {total}")
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(np.int64)
    remainder = exact - counts
    # Stable sort on -remainder: equal remainders keep config order.
    for i in np.argsort(-remainder, kind="stable")[: total - int(counts.sum())]:
        counts[i] += 1
    return counts


def task_index_sequence(
    schedule: str, weights: Sequence[float], total: int, seed: int
) -> np.ndarray:
    """Task index of every step 0..total-1 for the single-task schedules."""
    if schedule == "uniform":
        weights = [1.0] * len(weights)
    elif schedule not in SINGLE_TASK_SCHEDULES:
        raise ConfigError(
            f"training.schedule: {schedule!r} has no single task per step; "
            f"one of {list(SINGLE_TASK_SCHEDULES)} has"
        )
    counts = apportion(weights, total)
    blocks = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    if schedule == "task_by_task":
        return blocks
    return np.random.default_rng(seed).permutation(blocks)


class TaskSchedule:
    """The task(s) of each step: `tasks_at(step)` -> tuple of task names."""

    def __init__(self, tasks: Sequence[Task], training: Training, total_steps: int):
        self.task_names = [t.name for t in tasks]
        self.kind = training.schedule
        self.total_steps = total_steps
        if self.kind in ("accumulate", "every_task"):  # every task at every step
            self._sequence = None
        else:
            weights = [t.weight for t in tasks]
            self._sequence = task_index_sequence(self.kind, weights, total_steps, training.seed)

    def tasks_at(self, step: int) -> tuple[str, ...]:
        if not 0 <= step < self.total_steps:
            raise IndexError(f"step {step} is outside the schedule's 0..{self.total_steps - 1}")
        if self._sequence is None:
            return tuple(self.task_names)
        return (self.task_names[self._sequence[step]],)

    def steps_per_task(self) -> dict[str, int]:
        """How many steps train each task (all of them for `accumulate`)."""
        if self._sequence is None:
            return {name: self.total_steps for name in self.task_names}
        counts = np.bincount(self._sequence, minlength=len(self.task_names))
        return {name: int(c) for name, c in zip(self.task_names, counts, strict=True)}

    def lr_multipliers(self, tasks: Sequence[Task]) -> np.ndarray:
        """Per-step learning-rate multiplier: that step's task's lr_multiplier (1 to accumulate)."""
        if self._sequence is None:
            return np.ones(self.total_steps, np.float32)
        by_index = np.asarray([t.lr_multiplier for t in tasks], np.float32)
        return by_index[self._sequence]


def warmup_cosine(step: float, base: float, warmup_steps: int, total_steps: int) -> float:
    """Learning rate of the update made at `step` (0-based), as a plain float.

    Warm-up: base * (step + 1) / warmup_steps, reaching `base` on the last warm-up step.
    Then cosine from `base` at step == warmup_steps to 0 at step == total_steps.
    """
    if step < warmup_steps:
        return base * (step + 1) / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / decay_steps, 1.0)
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """`warmup_cosine` in TF, times a per-step multiplier table (the task trained at that step).

    The optimizer calls it with its `iterations`, which count one per training step (also when
    float16 loss scaling skips a step), so `iterations` is the step of the sequence.
    """

    def __init__(self, base: float, warmup_steps: int, total_steps: int, multipliers=None):
        super().__init__()
        self.base = float(base)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.multipliers = None if multipliers is None else np.asarray(multipliers, np.float32)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = self.base * (step + 1.0) / float(max(self.warmup_steps, 1))
        decay_steps = float(max(self.total_steps - self.warmup_steps, 1))
        progress = tf.clip_by_value((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        cosine = self.base * 0.5 * (1.0 + tf.cos(math.pi * progress))
        lr = tf.where(step < self.warmup_steps, warmup, cosine)
        if self.multipliers is not None and len(self.multipliers):
            index = tf.clip_by_value(tf.cast(step, tf.int32), 0, len(self.multipliers) - 1)
            lr = lr * tf.gather(tf.constant(self.multipliers), index)
        return lr

    def get_config(self):
        return {
            "base": self.base,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "multipliers": None if self.multipliers is None else self.multipliers.tolist(),
        }
