"""Hyperparameter search, the pure parts: the search space from `tuning`, applying chosen
values over the Trainer's config, one trial (the project's own training loop), its score.

Hyperparameters are named by the config key they replace, so the search space, the Tuner's
best_hyperparameters artifact and the Trainer's log all speak the config's language:

    training.learning_rate      in tuning.learning_rate (min, max, log)
    training.weight_decay       in tuning.weight_decay
    tasks.<task>.loss_weight    in tuning.loss_weight, one per searched task
    tasks.<task>.batch_size     one of tuning.batch_sizes, one per searched task

A trial's objective is the mean over tasks of each task's headline eval metric (top-1, or mAP
for multi-label tasks: trainer.metrics.headline_metric, what the Evaluator's gate and the
model report use), so every task counts the same whatever its metric's scale of difficulty.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from core.config import ConfigError, SearchRange, Task, TrainerConfig, Tuning

log = logging.getLogger("polyvit.tuner")

OBJECTIVE = "objective"
# Per-task scores are trial metrics too, as `task.<name>` (no clash with the objective).
TASK_PREFIX = "task."
TRAINING_KEYS = ("learning_rate", "weight_decay")
TASK_KEYS = ("loss_weight", "batch_size")


def searched_tasks(tuning: Tuning, tasks: list[Task]) -> list[Task]:
    """The tasks whose loss weight and batch size are searched (`tuning.tasks`, else all)."""
    return [t for t in tasks if not tuning.tasks or t.name in tuning.tasks]


def _inside(value: float, search: SearchRange) -> float:
    """The configured value as the search's default when it lies in the range, else `min`."""
    return value if search.min <= value <= search.max else search.min


def space_spec(tuning: Tuning, config: TrainerConfig) -> list[dict[str, Any]]:
    """The search space as plain data: [{name, kind: float|choice, ...}], defaults the
    configured values where they lie in the range (keras-tuner wants a default inside it)."""
    spec: list[dict[str, Any]] = []

    def add_range(name: str, search: SearchRange, current: float) -> None:
        if search.is_set:
            spec.append(
                {
                    "name": name,
                    "kind": "float",
                    "min": search.min,
                    "max": search.max,
                    "log": search.log,
                    "default": _inside(current, search),
                }
            )

    for field in TRAINING_KEYS:
        add_range(f"training.{field}", getattr(tuning, field), getattr(config.training, field))
    for task in searched_tasks(tuning, config.tasks):
        add_range(f"tasks.{task.name}.loss_weight", tuning.loss_weight, task.loss_weight)
        if tuning.batch_sizes:
            sizes = sorted(tuning.batch_sizes)
            spec.append(
                {
                    "name": f"tasks.{task.name}.batch_size",
                    "kind": "choice",
                    "values": sizes,
                    "default": task.batch_size if task.batch_size in sizes else sizes[0],
                }
            )
    return spec


def search_space(tuning: Tuning, config: TrainerConfig):
    """keras_tuner.HyperParameters holding `space_spec`'s hyperparameters."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for item in space_spec(tuning, config):
        if item["kind"] == "float":
            hp.Float(
                item["name"],
                min_value=item["min"],
                max_value=item["max"],
                sampling="log" if item["log"] else "linear",
                default=item["default"],
            )
        else:
            hp.Choice(item["name"], item["values"], ordered=True, default=item["default"])
    return hp


def values_from_artifact(hyperparameters: Mapping | None) -> dict[str, Any]:
    """{name: value} from what the TFX Trainer passes as fn_args.hyperparameters (a
    keras_tuner.HyperParameters config, {"space": [...], "values": {...}}); {} for none."""
    if not hyperparameters:
        return {}
    values = hyperparameters.get("values")
    if not isinstance(values, Mapping):
        raise ValueError(
            "hyperparameters: expected a keras-tuner HyperParameters config with 'values', "
            f"got keys {sorted(hyperparameters)}"
        )
    return dict(values)


def apply_hyperparameters(
    config: TrainerConfig, values: Mapping[str, Any]
) -> tuple[TrainerConfig, dict[str, dict[str, Any]]]:
    """`config` with `values` (named by config key) applied, and {key: {"from", "to"}}.

    A name that is no searchable key, or names a task the config lacks, is an error naming it:
    a best_hyperparameters artifact of another pipeline must not be half applied."""
    training = config.training
    tasks = {t.name: t for t in config.tasks}
    applied: dict[str, dict[str, Any]] = {}
    for name, value in sorted(values.items()):
        parts = name.split(".")
        if len(parts) == 2 and parts[0] == "training" and parts[1] in TRAINING_KEYS:
            old = getattr(training, parts[1])
            change: dict[str, Any] = {parts[1]: float(value)}
            training = dataclasses.replace(training, **change)
        elif len(parts) == 3 and parts[0] == "tasks" and parts[2] in TASK_KEYS:
            if parts[1] not in tasks:
                raise ConfigError(
                    f"hyperparameters: {name}: no task {parts[1]!r}; tasks are {sorted(tasks)}"
                )
            cast = int if parts[2] == "batch_size" else float
            old = getattr(tasks[parts[1]], parts[2])
            task_change: dict[str, Any] = {parts[2]: cast(value)}
            tasks[parts[1]] = dataclasses.replace(tasks[parts[1]], **task_change)
        else:
            raise ConfigError(
                f"hyperparameters: {name}: not a tuned key (training.learning_rate, "
                "training.weight_decay, tasks.<task>.loss_weight, tasks.<task>.batch_size)"
            )
        applied[name] = {"from": old, "to": value}
    tuned = dataclasses.replace(
        config, training=training, tasks=[tasks[t.name] for t in config.tasks]
    )
    return tuned, applied


def describe_applied(applied: Mapping[str, Mapping[str, Any]]) -> str:
    """One log line: `training.learning_rate 0.002 -> 0.00421, ...`."""
    if not applied:
        return "no tuned hyperparameters"
    return ", ".join(f"{k} {v['from']:g} -> {v['to']:g}" for k, v in sorted(applied.items()))


def objective(evaluation: Mapping[str, Mapping[str, Any]]) -> float:
    """The mean over tasks of each task's headline eval metric (train_loop's final evaluation)."""
    if not evaluation:
        raise ValueError("objective: the trial evaluated no task")
    return float(sum(float(o["value"]) for o in evaluation.values()) / len(evaluation))


def trial_scores(evaluation: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """{"objective": mean, "task.<task>": value}: what a trial reports (each is a metric)."""
    scores = {TASK_PREFIX + name: float(outcome["value"]) for name, outcome in evaluation.items()}
    return {OBJECTIVE: objective(evaluation), **scores}


def trial_config(config: TrainerConfig, tuning: Tuning, values: Mapping[str, Any]):
    """The config a trial trains: the values applied, evaluated on `tuning.eval_steps`
    batches per task, with no intermediate checkpoints (a trial is short and thrown away)."""
    tuned, _ = apply_hyperparameters(config, values)
    steps = tuning.steps_per_trial
    training = dataclasses.replace(
        tuned.training,
        steps=steps,
        eval_steps=tuning.eval_steps,
        warmup_steps=min(tuned.training.warmup_steps, steps // 10),
        checkpoint_every=steps,
        log_every=min(tuned.training.log_every, steps),
        steps_per_loop=min(tuned.training.steps_per_loop, steps),
    )
    return dataclasses.replace(tuned, training=training)


def run_trial(
    config: TrainerConfig,
    tuning: Tuning,
    values: Mapping[str, Any],
    model_dir: str,
    train_patterns: Mapping[str, str],
    eval_patterns: Mapping[str, str],
    *,
    train_fn: Callable | None = None,
    **train_kwargs,
) -> dict[str, float]:
    """Trains `config` with `values` for tuning.steps_per_trial steps with the Trainer's own
    loop (train_loop.train) in `model_dir`, evaluates every task; returns trial_scores."""
    if train_fn is None:
        from trainer import train_loop

        train_fn = train_loop.train
    trial = trial_config(config, tuning, values)
    result = train_fn(
        trial,
        model_dir,
        train_patterns,
        eval_patterns,
        total_steps=trial.training.steps,
        **train_kwargs,
    )
    scores = trial_scores(result.metrics)
    log.info(
        "trial %s: objective %.4f (%s)",
        describe_values(values),
        scores[OBJECTIVE],
        ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if k != OBJECTIVE),
    )
    return scores


def describe_values(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(values.items())) or "configured values"
