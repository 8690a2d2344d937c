"""The co-training loop: one PolyViT, all tasks, any tf.distribute strategy. Read top to bottom.

    train(config, model_dir, train_patterns, eval_patterns) -> TrainResult

`config` is the Trainer's slice (core.config.TrainerConfig: tasks, model, inputs, training).
The sections below follow the run:

1. Restore: strategy, precision policy and seed from `config.training`; model, optimizer and
   step counter under the strategy's scope; restored from the latest checkpoint in
   `<model_dir>/checkpoints` (or `checkpoint_dir`) if any: a restarted run resumes.
2. Inputs: one distributed dataset per task (`distribute_datasets_from_function`; the GLOBAL
   batch is the task's batch_size, split over the replicas).
3. Steps: one traced train step per task (`strategy.run` inside a tf.function); in `accumulate`
   mode a single step that visits every task. The task of each step comes from the pure
   schedule (schedules.py), so a resumed run continues the same sequence.
4. Loop: `training.steps_per_loop` steps per traced call (MultiStep: the schedule's branch ids
   for the loop are fed in, and a tf.while_loop dispatches each step to its branch with
   tf.switch_case); `training.jit_compile` XLA-compiles each replica's step (of the tasks with
   at least `jit_compile_min_steps` steps). Every
   `log_every` steps TensorBoard scalars per task in `<model_dir>/train` and a progress line
   with steps/s and ETA; every `checkpoint_every` steps (and at the end) a checkpoint. A loop
   ends at those steps, so they are where they would be one step per call.
5. Final evaluation: per task (top-1, or mAP for multi-label tasks), written to
   `<model_dir>/eval_metrics.json` and to TensorBoard under `<model_dir>/eval`.

Data position on resume: tf.distribute's distributed iterators cannot be checkpointed (TF 2.16),
so the position inside each task's stream is NOT restored. Instead each task's stream is reseeded
from (seed, task, resume step): the resumed run sees a fresh, reproducible shuffle rather than
replaying the examples seen before the restart. What is lost is the partial-epoch position.

Gradients: each replica computes the gradient of its share of the global-batch mean loss; the
loop all-reduces (sums) them, clips the sum by its global norm, and applies it once. Variables a
task does not use (other tasks' heads and tokenizers) get a zero gradient, as in PolyViT's JAX
trainer, so momentum and decay keep acting on them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from core.config import ConfigError, Task, TrainerConfig, Training
from trainer import losses, metrics, optimizers, schedules, strategies

METRICS_FILE = "eval_metrics.json"
CHECKPOINT_DIR = "checkpoints"

log = logging.getLogger("polyvit.trainer")


@dataclasses.dataclass
class TrainResult:
    """What `train` returns: the trained model, and the run's summary (`to_json`)."""

    model: keras.Model
    step: int
    start_step: int
    total_steps: int
    schedule: str
    strategy: str
    num_replicas: int
    is_chief: bool
    steps_per_task: dict[str, int]
    # One row per task per log window: step, task, mean loss and metric, steps in the window.
    history: list[dict]
    # Final evaluation per task (metric, value, loss, num_examples, num_clips, label_type);
    # empty without eval patterns.
    metrics: dict[str, dict]

    def to_json(self) -> dict:
        """The run as JSON-able data: the metrics file (METRICS_FILE), `tasks` the evaluation."""
        return {
            "step": self.step,
            "start_step": self.start_step,
            "total_steps": self.total_steps,
            "schedule": self.schedule,
            "strategy": self.strategy,
            "num_replicas": self.num_replicas,
            "is_chief": self.is_chief,
            "steps_per_task": self.steps_per_task,
            "history": self.history,
            "tasks": self.metrics,
        }


# A task's records: one glob pattern, or several (one per Examples artifact of a span window).
FilePatterns = str | list[str]


def train(
    config: TrainerConfig,
    model_dir: str,
    train_patterns: Mapping[str, FilePatterns],
    eval_patterns: Mapping[str, FilePatterns] | None = None,
    *,
    total_steps: int | None = None,
    strategy: tf.distribute.Strategy | None = None,
    build_model_fn: Callable | None = None,
    make_dataset_fn: Callable | None = None,
    audio_mean: float = 0.0,
    audio_std: float = 1.0,
    checkpoint_dir: str | None = None,
) -> TrainResult:
    """Co-trains the model of `config` on every task; the result's summary is the metrics file.

    `train_patterns`/`eval_patterns` map task name -> TFRecord file pattern. `total_steps`
    overrides `training.steps` (the TFX Trainer's train_args). `build_model_fn(config)` and
    `make_dataset_fn(...)` default to trainer.model.build_model and
    transforms.input_pipeline.make_dataset. `audio_mean`/`audio_std` normalise log-mels (the
    Transform component's statistics when there are any). Checkpoints go to `checkpoint_dir`
    (default `<model_dir>/checkpoints`); a checkpoint found there is resumed from.
    """
    training = config.training
    total_steps = int(total_steps or training.steps)
    _check_patterns(config, train_patterns, "train")
    if eval_patterns is not None:
        _check_patterns(config, eval_patterns, "eval")
    if make_dataset_fn is None:  # training.cache_decoded: only the real pipeline caches
        make_dataset_fn = functools.partial(
            _default_make_dataset,
            cache=training.cache_decoded,
            cache_dir=os.path.join(model_dir, "decoded_cache"),
            cache_max_mb=training.cache_max_mb,
        )
    make_dataset_fn = functools.partial(make_dataset_fn, audio_mean=audio_mean, audio_std=audio_std)

    strategy = strategy or strategies.resolve_strategy(training)
    _check_batches_split(config.tasks, strategy, training)
    keras.utils.set_random_seed(training.seed)
    schedule = schedules.TaskSchedule(config.tasks, training, total_steps)
    state = restore(
        config,
        strategy,
        schedule,
        total_steps,
        build_model_fn or _default_build_model,
        _worker_checkpoint_dir(checkpoint_dir or os.path.join(model_dir, CHECKPOINT_DIR), strategy),
    )
    _log_start(state, config, schedule, strategy, total_steps)

    iterators = task_iterators(config, strategy, train_patterns, make_dataset_fn, state.start_step)
    bodies = step_bodies(config, strategy, state, iterators, schedule.steps_per_task())
    chief = strategies.is_chief(strategy)
    history = run_loop(config, state, schedule, bodies, total_steps, model_dir, chief)

    step = int(state.step.numpy())
    evaluation = {}
    if eval_patterns is not None:
        evaluation = final_evaluation(
            state.model, config, eval_patterns, strategy, make_dataset_fn, model_dir, chief, step
        )
    result = TrainResult(
        model=state.model,
        step=step,
        start_step=state.start_step,
        total_steps=total_steps,
        schedule=training.schedule,
        strategy=training.strategy,
        num_replicas=strategy.num_replicas_in_sync,
        is_chief=chief,
        steps_per_task=schedule.steps_per_task(),
        history=history,
        metrics=evaluation,
    )
    if chief:
        write_metrics(os.path.join(model_dir, METRICS_FILE), result.to_json())
    else:
        tf.io.gfile.rmtree(state.checkpoint_dir)
    return result


def _check_batches_split(tasks: Sequence[Task], strategy, training: Training) -> None:
    """Every task's global batch splits evenly over the replicas."""
    replicas = strategy.num_replicas_in_sync
    for task in tasks:
        if task.batch_size % replicas:
            raise ConfigError(
                f"tasks.{task.name}.batch_size: {task.batch_size} is not divisible by the "
                f"{replicas} replicas of the {training.strategy} strategy"
            )


# ----------------------------------------------------------------------------------------------
# 1. Restore: model, optimizer, step counter and checkpoint manager; the latest checkpoint.


@dataclasses.dataclass
class TrainState:
    """The trained objects and their checkpoint. `start_step`: where this run (re)started."""

    model: keras.Model
    # The one optimizer of every schedule but every_task, which has one per task instead
    # (task_optimizers); only what the schedule uses is built and checkpointed.
    optimizer: keras.optimizers.Optimizer | None
    variables: list[tf.Variable]
    step: tf.Variable
    manager: tf.train.CheckpointManager
    checkpoint_dir: str
    start_step: int
    precision: str
    task_optimizers: dict[str, keras.optimizers.Optimizer] = dataclasses.field(default_factory=dict)


def restore(
    config: TrainerConfig,
    strategy: tf.distribute.Strategy,
    schedule: schedules.TaskSchedule,
    total_steps: int,
    build_model_fn: Callable,
    checkpoint_dir: str,
) -> TrainState:
    """Builds model, optimizer(s) and step under the strategy's scope; restores the latest
    checkpoint in `checkpoint_dir`, if there is one.

    The optimizers are the schedule's: one shared optimizer (`optimizer` in the checkpoint), or
    with every_task one per task and none shared (`task_optimizers/<task>`)."""
    training = config.training
    optimizer, task_optimizers = None, {}
    with strategy.scope(), optimizers.precision_policy(training) as policy:
        model = build_model_fn(config)
        variables = list(model.trainable_variables)
        if training.schedule == "every_task":  # IV-ViT: an optimizer per task
            from trainer import every_task

            task_optimizers = every_task.build_task_optimizers(config, model, total_steps)
        else:
            lr_schedule = schedules.WarmupCosine(
                training.learning_rate,
                training.warmup_steps,
                total_steps,
                schedule.lr_multipliers(config.tasks),
            )
            optimizer = optimizers.build_optimizer(training, lr_schedule, variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    tracked = {"optimizer": optimizer} if optimizer is not None else {}
    if task_optimizers:
        tracked["task_optimizers"] = tf.train.Checkpoint(**task_optimizers)
    checkpoint = tf.train.Checkpoint(model=model, step=step, **tracked)
    manager = tf.train.CheckpointManager(
        checkpoint, checkpoint_dir, max_to_keep=training.checkpoints_to_keep
    )
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    return TrainState(
        model=model,
        optimizer=optimizer,
        variables=variables,
        step=step,
        manager=manager,
        checkpoint_dir=checkpoint_dir,
        start_step=int(step.numpy()),
        precision=str(policy),
        task_optimizers=task_optimizers,
    )


def _log_start(state: TrainState, config, schedule, strategy, total_steps: int) -> None:
    log.info(
        "%s at step %d of %d: %d tasks (%s schedule, steps per task %s), strategy %s with %d "
        "replica(s), %s, %d parameters",
        "Resuming from a checkpoint" if state.start_step else "Training from scratch",
        state.start_step,
        total_steps,
        len(config.tasks),
        config.training.schedule,
        schedule.steps_per_task(),
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
        state.precision,
        sum(int(np.prod(v.shape)) for v in state.variables),
    )


# ----------------------------------------------------------------------------------------------
# 2. Inputs: one distributed dataset per task, reseeded by the resume step (see the module doc).


def task_iterators(
    config: TrainerConfig,
    strategy: tf.distribute.Strategy,
    train_patterns: Mapping[str, FilePatterns],
    make_dataset_fn: Callable,
    start_step: int,
) -> dict[str, object]:
    """{task: iterator over its distributed training batches}."""
    iterators = {}
    for index, task in enumerate(config.tasks):
        input_fn = functools.partial(
            _train_dataset,
            make_dataset_fn,
            train_patterns[task.name],
            task,
            config,
            seed=_data_seed(config.training.seed, index, start_step),
        )
        iterators[task.name] = iter(strategy.distribute_datasets_from_function(input_fn))
    return iterators


# ----------------------------------------------------------------------------------------------
# 3. Steps. Each returns {task: {"loss": global mean, "metric": top-1 or batch mAP}}.


@dataclasses.dataclass
class _Update:
    """One replica's part of an update: gradients of its loss share, and applying their sum."""

    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    variables: list[tf.Variable]
    grad_clip_norm: float

    def gradients(self, task: Task, features, labels) -> tuple[dict, list[tf.Tensor]]:
        """Replica context: (summaries, gradient of the replica's weighted loss share)."""
        loss_scaling = optimizers.uses_loss_scaling(self.optimizer)
        with tf.GradientTape() as tape:
            logits = self.model(features, task=task.name, training=True)
            loss = losses.replica_loss(task, labels, logits, task.batch_size)
            scaled = self.optimizer.get_scaled_loss(loss) if loss_scaling else loss
        grads = tape.gradient(scaled, self.variables)
        pairs = zip(grads, self.variables, strict=True)
        grads = [tf.zeros_like(v) if g is None else g for g, v in pairs]
        return {"loss": loss, "metric": _replica_metric(task, labels, logits)}, grads

    def apply(self, grads: list[tf.Tensor]) -> None:
        """Replica context: sum over replicas, unscale, clip by global norm, apply once."""
        grads = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
        if optimizers.uses_loss_scaling(self.optimizer):
            grads = self.optimizer.get_unscaled_gradients(grads)
        if self.grad_clip_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, self.grad_clip_norm)
        pairs = zip(grads, self.variables, strict=True)
        self.optimizer.apply_gradients(pairs, skip_gradients_aggregation=True)


def _single_task_update(update: _Update, task: Task, features, labels) -> dict:
    summary, grads = update.gradients(task, features, labels)
    update.apply(grads)
    return {task.name: summary}


def _accumulated_update(update: _Update, tasks: Mapping[str, Task], batches: dict) -> dict:
    summaries: dict = {}
    total: list | None = None
    for name, (features, labels) in batches.items():
        summary, grads = update.gradients(tasks[name], features, labels)
        # One update mixes every task: the task's lr_multiplier scales its gradient.
        grads = [g * tasks[name].lr_multiplier for g in grads]
        total = grads if total is None else [a + b for a, b in zip(total, grads, strict=True)]
        summaries[name] = summary
    assert total is not None, "accumulate: no task in the batch"
    update.apply(total)
    return summaries


def _reduce_sum(strategy: tf.distribute.Strategy, per_replica):
    return tf.nest.map_structure(
        lambda v: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None), per_replica
    )


def _replica_fn(fn: Callable, jit_compile: bool) -> Callable:
    """The replica's update, XLA-compiled when `training.jit_compile` (a TPU compiles it too)."""
    return tf.function(fn, autograph=False, jit_compile=True) if jit_compile else fn


def _with_replica_fn(body: Callable[[], dict], replica_fn: Callable) -> Callable[[], dict]:
    """Keeps a step body's replica function on it (`body.replica_fn`), so that a test can ask
    the XLA-compiled one for its HLO (tf.function.experimental_get_compiler_ir)."""
    setattr(body, "replica_fn", replica_fn)  # noqa: B010  (a plain function has no such slot)
    return body


def single_task_body(
    strategy, update: _Update, task: Task, iterator, jit_compile: bool = False
) -> Callable[[], dict]:
    """The (untraced) step that trains `task` on its next batch; a traced function calls it."""
    replica_fn = _replica_fn(functools.partial(_single_task_update, update, task), jit_compile)

    def body():
        features, labels = next(iterator)
        return _reduce_sum(strategy, strategy.run(replica_fn, args=(features, labels)))

    return _with_replica_fn(body, replica_fn)


def accumulate_body(
    strategy, update: _Update, tasks: Mapping[str, Task], iterators: dict, jit_compile=False
) -> Callable[[], dict]:
    """The (untraced) step that sums every task's gradient on its next batch into one update."""
    replica_fn = _replica_fn(functools.partial(_accumulated_update, update, tasks), jit_compile)

    def body():
        batches = {name: next(iterator) for name, iterator in iterators.items()}
        return _reduce_sum(strategy, strategy.run(replica_fn, args=(batches,)))

    return _with_replica_fn(body, replica_fn)


def single_task_step(strategy, update: _Update, task: Task, iterator) -> Callable[[], dict]:
    """The traced step that trains `task` on its next batch."""
    # autograph off: no tensor-dependent Python control flow
    return tf.function(single_task_body(strategy, update, task, iterator), autograph=False)


def accumulate_step(strategy, update: _Update, tasks: Mapping[str, Task], iterators: dict):
    """The traced step that sums every task's gradient on its next batch into one update."""
    return tf.function(accumulate_body(strategy, update, tasks, iterators), autograph=False)


def jit_compiled(training: Training, steps: int) -> bool:
    """Whether a step function trained for `steps` steps is XLA-compiled: training.jit_compile,
    for at least training.jit_compile_min_steps steps (compiling it costs seconds on a CPU)."""
    return training.jit_compile and steps >= training.jit_compile_min_steps


def step_bodies(
    config: TrainerConfig,
    strategy,
    state: TrainState,
    iterators: dict,
    steps_per_task: Mapping[str, int] | None = None,
) -> dict[tuple[str, ...], Callable[[], dict]]:
    """{the tasks a schedule entry trains: its untraced step body} (TaskSchedule.tasks_at).

    `steps_per_task` (TaskSchedule.steps_per_task) decides which steps are XLA-compiled under
    training.jit_compile_min_steps; without it every step is when training.jit_compile is on."""
    training = config.training
    counts = steps_per_task or {t.name: training.jit_compile_min_steps for t in config.tasks}
    if training.schedule == "every_task":  # IV-ViT: an optimizer per task
        from trainer import every_task

        return every_task.step_bodies(
            config, strategy, state, iterators, jit_compiled(training, min(counts.values()))
        )
    assert state.optimizer is not None, "restore builds the shared optimizer for this schedule"
    update = _Update(state.model, state.optimizer, state.variables, training.grad_clip_norm)
    tasks = {t.name: t for t in config.tasks}
    if training.schedule == "accumulate":  # every task every step: one step function
        jit = jit_compiled(training, min(counts.values()))
        return {tuple(tasks): accumulate_body(strategy, update, tasks, iterators, jit)}
    return {
        (name,): single_task_body(
            strategy, update, task, iterators[name], jit_compiled(training, counts[name])
        )
        for name, task in tasks.items()
    }


def step_functions(
    config: TrainerConfig, strategy, state: TrainState, iterators: dict
) -> dict[tuple[str, ...], Callable[[], dict]]:
    """{the tasks a schedule entry trains: its traced step} (schedules.TaskSchedule.tasks_at)."""
    return {
        key: tf.function(body, autograph=False)
        for key, body in step_bodies(config, strategy, state, iterators).items()
    }


class MultiStep:
    """Runs several steps in ONE traced call: `run(branch_ids)` executes step k with
    `bodies[branch_ids[k]]` (tf.switch_case inside a tf.while_loop), so the schedule's exact
    task sequence is kept while Python is entered once per loop, not once per step.

    Generic over step kinds: a body is any untraced callable returning {task: {"loss",
    "metric"}} for the tasks it trained (single-task, accumulate, or other branches' steps).
    `run` returns float32 losses and metrics [steps, len(task_names)], zero for tasks a step did
    not train. One trace serves every loop length (the ids' length is dynamic).
    """

    def __init__(self, bodies: Sequence[Callable[[], dict]], task_names: Sequence[str]):
        self.task_names = list(task_names)
        branches = [self._flat(body) for body in bodies]

        def one_step(branch_id):
            if len(branches) == 1:
                return branches[0]()
            return tf.switch_case(branch_id, branches)

        @tf.function(
            autograph=False, input_signature=[tf.TensorSpec([None], tf.int32, name="branch_ids")]
        )
        def run(branch_ids):
            n = tf.shape(branch_ids)[0]
            width = len(self.task_names)

            def loop_body(k, losses, metrics):
                loss, metric = one_step(branch_ids[k])
                return k + 1, losses.write(k, loss), metrics.write(k, metric)

            arrays = [tf.TensorArray(tf.float32, size=n, element_shape=[width]) for _ in "lm"]
            _, losses, metrics = tf.while_loop(
                lambda k, *_: k < n, loop_body, (tf.constant(0), *arrays)
            )
            return losses.stack(), metrics.stack()

        self.run = run

    def _flat(self, body: Callable[[], dict]) -> Callable[[], tuple[tf.Tensor, tf.Tensor]]:
        def branch():
            out = body()
            zero = tf.zeros([], tf.float32)
            names = self.task_names

            def column(key):
                cells = [tf.cast(out[n][key], tf.float32) if n in out else zero for n in names]
                return tf.stack(cells)

            return column("loss"), column("metric")

        return branch


def loop_chunks(start: int, total: int, training: Training) -> list[tuple[int, int]]:
    """[start, end) of each traced call: `steps_per_loop` steps, cut short at every log_every
    and checkpoint_every step (so logs and checkpoints land where they would step by step)."""
    chunks = []
    i = start
    while i < total:
        end = min(total, (i // training.steps_per_loop + 1) * training.steps_per_loop)
        for every in (training.log_every, training.checkpoint_every):
            end = min(end, (i // every + 1) * every)
        chunks.append((i, end))
        i = end
    return chunks


# ----------------------------------------------------------------------------------------------
# 4. The loop: steps, progress lines and summaries every log_every, checkpoints.


def run_loop(
    config: TrainerConfig,
    state: TrainState,
    schedule: schedules.TaskSchedule,
    bodies: Mapping[tuple[str, ...], Callable[[], dict]],
    total_steps: int,
    model_dir: str,
    chief: bool,
) -> list[dict]:
    """Trains from `state.start_step` to `total_steps` in loops of `training.steps_per_loop`
    steps (loop_chunks; MultiStep runs one); returns the log windows' rows.

    `bodies` maps the tasks of a schedule entry to its untraced step body (step_bodies)."""
    training = config.training
    tasks = {t.name: t for t in config.tasks}
    names = list(tasks)
    keys = list(bodies)
    multi = MultiStep([bodies[k] for k in keys], names)
    writer = _summary_writer(model_dir, "train", chief)
    history: list[dict] = []
    pending: dict[str, list[dict]] = {name: [] for name in tasks}
    window_start, window_time = state.start_step, time.perf_counter()
    for begin, done in loop_chunks(state.start_step, total_steps, training):
        entries = [schedule.tasks_at(i) for i in range(begin, done)]
        ids = np.array([keys.index(e) for e in entries], np.int32)
        losses, metrics_ = (a.numpy() for a in multi.run(tf.constant(ids)))
        for k, entry in enumerate(entries):
            for name in entry:
                j = names.index(name)
                pending[name].append({"loss": losses[k, j], "metric": metrics_[k, j]})
        state.step.assign(done)
        if done % training.log_every == 0 or done == total_steps:
            now = time.perf_counter()
            rate = (done - window_start) / max(now - window_time, 1e-9)
            window = _summarise(pending, done)
            history.extend(window)
            base_lr = schedules.warmup_cosine(
                done - 1, training.learning_rate, training.warmup_steps, total_steps
            )
            _write_train_summaries(writer, window, tasks, base_lr, done, rate)
            log.info(_progress_line(done, total_steps, rate, base_lr, window, tasks))
            pending = {name: [] for name in tasks}
            window_start, window_time = done, now
        if done % training.checkpoint_every == 0 or done == total_steps:
            state.manager.save(checkpoint_number=done)
    return history


# ----------------------------------------------------------------------------------------------
# 5. Final evaluation


def final_evaluation(
    model,
    config: TrainerConfig,
    eval_patterns: Mapping[str, FilePatterns],
    strategy: tf.distribute.Strategy,
    make_dataset_fn: Callable,
    model_dir: str,
    chief: bool,
    step: int,
) -> dict[str, dict]:
    """{task: evaluate_task's outcome}, logged and written to TensorBoard under `eval`."""
    outcomes = {}
    eval_writer = _summary_writer(model_dir, "eval", chief)
    for task in config.tasks:
        outcome = evaluate_task(
            model, task, config, eval_patterns[task.name], strategy, make_dataset_fn
        )
        outcomes[task.name] = outcome
        log.info(
            "eval %s: %s %.4f, loss %.4f on %d examples",
            task.name,
            outcome["metric"],
            outcome["value"],
            outcome["loss"],
            outcome["num_examples"],
        )
        with eval_writer.as_default(step=step):
            tf.summary.scalar(f"{task.name}/{outcome['metric']}", outcome["value"])
            tf.summary.scalar(f"{task.name}/loss", outcome["loss"])
    eval_writer.flush()
    return outcomes


def evaluate_task(
    model,
    task: Task,
    config: TrainerConfig,
    file_pattern: FilePatterns,
    strategy: tf.distribute.Strategy,
    make_dataset_fn: Callable,
) -> dict:
    """Headline metric (top-1 or mAP) and mean loss of `task` on its eval split.

    At most `training.eval_steps` batches (0: the whole split). Video and audio tasks are
    scored on `inputs.eval_clips` clips per example, the clips' probabilities averaged (as the
    serving signatures do). The last partial batch is evaluated except on TPU and with several
    workers, which need static, equal batches: `num_examples` says how many were seen.
    """
    training = config.training
    batch_size = training.eval_batch_size or task.batch_size
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ConfigError(
            f"training.eval_batch_size: {batch_size} (task {task.name}) is not divisible by "
            f"the {replicas} replicas"
        )
    multi_worker = strategies.num_workers(strategy) > 1
    if multi_worker and training.eval_steps <= 0:
        raise ConfigError(
            "training.eval_steps: must be positive with several workers (every worker must run "
            "the same number of evaluation steps)"
        )
    static_batches = multi_worker or isinstance(strategy, tf.distribute.TPUStrategy)
    num_clips = 1 if task.modality == "image" else config.inputs.eval_clips
    dataset = strategy.distribute_datasets_from_function(
        functools.partial(
            _eval_dataset,
            make_dataset_fn,
            file_pattern,
            task,
            config,
            batch_size=batch_size,
            num_clips=num_clips,
            repeat=multi_worker,
            drop_remainder=static_batches,
        )
    )

    def replica_logits(features):
        """float32 [B, num_clips, C]: the clips of each example run as a batch of B * clips."""
        flat = {
            k: tf.reshape(v, [-1, *v.shape[1 + (num_clips > 1) :]]) for k, v in features.items()
        }
        logits = tf.cast(model(flat, task=task.name, training=False), tf.float32)
        return tf.reshape(logits, [-1, num_clips, logits.shape[-1]])

    # One trace per task: the signature (batch dimension unknown unless batches are static)
    # also covers the last, partial batch, which would otherwise trace a second graph.
    @tf.function(autograph=False, input_signature=dataset.element_spec)
    def eval_step(features, labels):
        logits = strategy.run(replica_logits, args=(features,))
        return strategy.gather(logits, axis=0), strategy.gather(labels, axis=0)

    all_logits, all_labels = [], []
    for n, (features, labels) in enumerate(dataset):
        if training.eval_steps and n >= training.eval_steps:
            break
        logits, labels = eval_step(features, labels)
        all_logits.append(logits.numpy())
        all_labels.append(labels.numpy())
    if not all_logits:
        raise ValueError(
            f"tasks.{task.name}: the eval split {file_pattern} gave no batch of "
            f"{batch_size} examples; lower training.eval_batch_size"
        )
    logits, labels = np.concatenate(all_logits), np.concatenate(all_labels)
    scores = np.mean(_probabilities(logits, task.label_type), axis=1)
    clip_labels = np.repeat(labels, num_clips, axis=0)
    clip_logits = logits.reshape(-1, logits.shape[-1])
    loss = float(tf.reduce_mean(losses.per_example_loss(task, clip_labels, clip_logits)))
    return {
        "metric": metrics.headline_metric_name(task.label_type),
        "value": metrics.headline_metric(task.label_type, labels, scores),
        "loss": loss,
        "num_examples": int(len(labels)),
        "num_clips": num_clips,
        "label_type": task.label_type,
    }


def _probabilities(logits: np.ndarray, label_type: str) -> np.ndarray:
    if label_type == "multi":
        return 1.0 / (1.0 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def write_metrics(path: str, summary: dict) -> None:
    """The JSON the evaluation report reads (TrainResult.to_json): per-task metric, value,
    loss, num_examples under `tasks`, and the run's steps and history."""
    tf.io.gfile.makedirs(os.path.dirname(path) or ".")
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(summary, indent=2, sort_keys=True))


# ----------------------------------------------------------------------------------------------
# Small helpers (inputs, summaries, checkpoints, logging).


def _default_build_model(config: TrainerConfig):
    from trainer.model import build_model

    return build_model(config.model, config.tasks, config.inputs)


def _default_make_dataset(*args, **kwargs):
    from transforms.input_pipeline import make_dataset

    return make_dataset(*args, **kwargs)


def _check_patterns(
    config: TrainerConfig, patterns: Mapping[str, FilePatterns], split: str
) -> None:
    missing = [t.name for t in config.tasks if not patterns.get(t.name)]
    if missing:
        raise ValueError(f"train: no {split} files given for task(s) {missing}")


def _data_seed(seed: int, task_index: int, start_step: int) -> int:
    """Seed of one task's training stream: fixed for a run, new after each resume."""
    return int(np.random.SeedSequence([seed, task_index, start_step]).generate_state(1)[0])


def _train_dataset(make_dataset_fn, pattern, task, config, input_context, *, seed):
    per_replica = input_context.get_per_replica_batch_size(task.batch_size)
    return make_dataset_fn(
        pattern,
        task,
        config.inputs,
        training=True,
        batch_size=per_replica,
        seed=seed,
        input_context=input_context,
        repeat=True,
    )


def _eval_dataset(
    make_dataset_fn,
    pattern,
    task,
    config,
    input_context,
    *,
    batch_size,
    num_clips,
    repeat,
    drop_remainder,
):
    return make_dataset_fn(
        pattern,
        task,
        config.inputs,
        training=False,
        batch_size=input_context.get_per_replica_batch_size(batch_size),
        seed=config.training.seed,
        input_context=input_context,
        num_clips=num_clips,
        repeat=repeat,
        drop_remainder=drop_remainder,
    )


def _replica_metric(task: Task, labels, logits) -> tf.Tensor:
    """This replica's share of the batch metric: summed over replicas it is the global value."""
    ctx = tf.distribute.get_replica_context()
    if task.label_type == "multi":
        # mAP does not split over replicas: every replica computes it on the gathered batch.
        all_labels = ctx.all_gather(labels, axis=0)
        all_logits = ctx.all_gather(tf.cast(logits, tf.float32), axis=0)
        batch_map = metrics.batch_mean_average_precision(all_labels, all_logits)
        return batch_map / ctx.num_replicas_in_sync
    return tf.reduce_sum(metrics.batch_top1_correct(labels, logits)) / task.batch_size


def _summarise(pending: dict[str, list[dict]], step: int) -> list[dict]:
    """Mean loss and metric of each task over the steps of one log window."""
    window = []
    for name, summaries in pending.items():
        if summaries:
            window.append(
                {
                    "step": step,
                    "task": name,
                    "loss": float(np.mean([s["loss"] for s in summaries])),
                    "metric": float(np.mean([s["metric"] for s in summaries])),
                    "steps": len(summaries),
                }
            )
    return window


def _write_train_summaries(writer, window, tasks, base_lr, step, rate) -> None:
    """Scalars of one log window: per task loss, metric and learning rate; steps/s."""
    with writer.as_default(step=step):
        tf.summary.scalar("learning_rate", base_lr)
        tf.summary.scalar("steps_per_sec", rate)
        for row in window:
            task = tasks[row["task"]]
            tf.summary.scalar(f"{task.name}/loss", row["loss"])
            tf.summary.scalar(f"{task.name}/{_train_metric_name(task)}", row["metric"])
            tf.summary.scalar(f"{task.name}/learning_rate", base_lr * task.lr_multiplier)
    writer.flush()


def _train_metric_name(task: Task) -> str:
    return "batch_mAP" if task.label_type == "multi" else "top1"


def _progress_line(step, total, rate, lr, window, tasks) -> str:
    remaining = (total - step) / rate if rate > 0 else float("inf")
    parts = [
        f"step {step}/{total} ({step / total:.0%})",
        f"{rate:.2f} steps/s",
        f"ETA {_duration(remaining)}",
        f"base lr {lr:.3g}",
    ]
    for row in window:
        metric = _train_metric_name(tasks[row["task"]])
        parts.append(f"{row['task']} loss {row['loss']:.4f} {metric} {row['metric']:.3f}")
    return " | ".join(parts)


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return (
        f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"
    )


def _summary_writer(model_dir: str, name: str, chief: bool):
    if not chief:
        return tf.summary.create_noop_writer()
    return tf.summary.create_file_writer(os.path.join(model_dir, name))


def _worker_checkpoint_dir(base: str, strategy) -> str:
    """Every worker saves (saving is collective); only the chief's copy is kept."""
    if strategies.is_chief(strategy):
        return base
    resolver = strategy.cluster_resolver
    return os.path.join(base, f"tmp_{resolver.task_type}_{resolver.task_id}")
