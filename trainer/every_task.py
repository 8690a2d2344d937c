"""IV-ViT's schedule (`training.schedule: every_task`): every task at every step, each with its
own batch, loss, optimizer, learning rate and weight decay.

At each step, for each task in config order: its next batch (of the task's own batch_size), the
gradient of its loss over the variables on its path (the shared encoder, its tokenizer and
modality layers, its head), all-reduced and clipped, applied by the task's own optimizer. Unlike
`accumulate` (one update of the summed gradients by one optimizer), the tasks' updates follow
one another, and each optimizer keeps its own moments and step count:

    learning rate   training.learning_rate * task.lr_multiplier, warm-up then cosine, per task
    weight decay    training.weight_decay * task.weight_decay_multiplier (decoupled, as before)

Each optimizer covers only its task's variables, so a task never decays (or moves by momentum)
another task's head or tokenizer. train_loop.restore builds them (build_task_optimizers) in
place of the shared optimizer, which this schedule does not build, and they are saved in and
restored from the run's checkpoint under `task_optimizers/<task>`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping

import tensorflow as tf
import tf_keras as keras

from core.config import Task, TrainerConfig
from trainer import late_fusion, optimizers, schedules
from trainer.model import SHARED, parameter_groups

SCHEDULE = "every_task"


def task_variables(model, task: Task) -> list[tf.Variable]:
    """The trainable variables `task`'s loss reaches: shared, its modality's, its head's."""
    groups = parameter_groups(model)
    modality = late_fusion.token_modality(task.modality, getattr(model, "video_encoding", ""))
    return groups[SHARED] + groups[f"modality/{modality}"] + groups[f"task/{task.name}"]


def build_task_optimizers(
    config: TrainerConfig, model, total_steps: int
) -> dict[str, keras.optimizers.Optimizer]:
    """{task: its optimizer}, built over the task's variables (call inside strategy.scope())."""
    training = config.training
    built = {}
    for task in config.tasks:
        own = dataclasses.replace(
            training,
            learning_rate=training.learning_rate * task.lr_multiplier,
            weight_decay=training.weight_decay * task.weight_decay_multiplier,
        )
        lr = schedules.WarmupCosine(own.learning_rate, own.warmup_steps, total_steps)
        built[task.name] = optimizers.build_optimizer(own, lr, task_variables(model, task))
    return built


def _every_task_update(updates: Mapping[str, object], tasks: Mapping[str, Task], batches) -> dict:
    """Replica context: each task's gradient applied by its own optimizer, in config order."""
    summaries = {}
    for name, (features, labels) in batches.items():
        summary, grads = updates[name].gradients(tasks[name], features, labels)  # type: ignore[attr-defined]
        updates[name].apply(grads)  # type: ignore[attr-defined]
        summaries[name] = summary
    return summaries


def every_task_body(
    strategy,
    updates: Mapping[str, object],
    tasks: Mapping[str, Task],
    iterators,
    jit_compile: bool = False,
):
    """The untraced step: one batch of every task, one update per task by its optimizer.

    `updates`: {task: train_loop._Update over the task's optimizer and variables}.
    """
    from trainer.train_loop import _reduce_sum, _replica_fn, _with_replica_fn

    replica_fn = _replica_fn(functools.partial(_every_task_update, updates, tasks), jit_compile)

    def body():
        batches = {name: next(iterators[name]) for name in tasks}
        return _reduce_sum(strategy, strategy.run(replica_fn, args=(batches,)))

    return _with_replica_fn(body, replica_fn)


def step_bodies(
    config: TrainerConfig, strategy, state, iterators: dict, jit_compile: bool | None = None
) -> dict[tuple[str, ...], Callable[[], dict]]:
    """train_loop's hook: {all tasks: the untraced every-task step}, over the per-task
    optimizers train_loop.restore built and restored (`state.task_optimizers`)."""
    from trainer.train_loop import _Update

    tasks = {t.name: t for t in config.tasks}
    missing = sorted(set(tasks) - set(state.task_optimizers))
    assert not missing, f"every_task: no optimizer built for task(s) {missing}"
    clip = config.training.grad_clip_norm
    updates = {
        name: _Update(
            state.model, state.task_optimizers[name], task_variables(state.model, t), clip
        )
        for name, t in tasks.items()
    }
    jit = config.training.jit_compile if jit_compile is None else jit_compile
    body = every_task_body(strategy, updates, tasks, iterators, jit)
    return {tuple(tasks): body}


def step_functions(
    config: TrainerConfig, strategy, state, iterators: dict
) -> dict[tuple[str, ...], Callable[[], dict]]:
    """step_bodies, each traced (one step per call)."""
    return {
        key: tf.function(body, autograph=False)  # no tensor-dependent Python control flow
        for key, body in step_bodies(config, strategy, state, iterators).items()
    }
