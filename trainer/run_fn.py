"""`run_fn` for the TFX Trainer (generic executor): co-train, evaluate, export.

    Trainer(run_fn="trainer.run_fn.run_fn", examples=..., [transform_graph=...],
            custom_config=core.config.to_custom_config(core.config.trainer_config(config)),
            train_args=..., eval_args=...)

Reads from `fn_args`:
  custom_config["config"]  the Trainer's slice of the config (core.config.TrainerConfig: tasks,
                           model, inputs, training, sample_rate), as plain data or JSON
  train_files/eval_files   TFX's `<examples_uri>/Split-<split>/*`; each task's records are
                           `Split-<split>/<task>-SSSSS-of-NNNNN*` (core.features.task_file_pattern)
  train_steps              when set (train_args.num_steps), replaces training.steps
  base_model               when set, the model to warm-start from; the run then trains
                           `continuous.warm_start_steps` when that is set (steps_to_train)
  eval_steps               when set (eval_args.num_steps), replaces training.eval_steps
  transform_output         when set, audio normalisation statistics from the TransformGraph
  hyperparameters          when set (the Tuner's best_hyperparameters), applied over the config
                           and recorded in <model_run_dir>/hyperparameters.json
  model_run_dir            TensorBoard logs, eval_metrics.json and the checkpoints, unless
                           training.checkpoint_root is set (see checkpoint_dir)
  serving_model_dir        the SavedModel (trainer/export.py), what the Pusher pushes
Label vocabularies: `<examples_uri>/labels/<task>.txt` (features.vocabulary_path), else the
TransformGraph's `labels_<task>` assets.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re

import tensorflow as tf

from core import config as config_lib
from core import features
from trainer import train_loop, tuning

log = logging.getLogger("polyvit.trainer")


def split_of(file_pattern: str) -> tuple[str, str]:
    """TFX's `<examples_uri>/Split-<split>/*` -> (examples_uri, split)."""
    split_dir = os.path.dirname(file_pattern.rstrip("/"))
    match = re.fullmatch(r"Split-(.+)", os.path.basename(split_dir))
    if not match:
        raise ValueError(f"run_fn: {file_pattern!r} is not TFX's <examples>/Split-<split>/* layout")
    return os.path.dirname(split_dir), match.group(1)


def examples_roots(files: list[str], what: str) -> list[str]:
    """The Examples URIs of the Trainer's file list: one `<examples_uri>/Split-<split>/*` per
    Examples artifact (several with `continuous.span_window` > 1), each of split `what`."""
    if not files:
        raise ValueError(f"run_fn: no {what} file pattern (no Examples artifact)")
    roots = []
    for pattern in files:
        root, split = split_of(pattern)
        if split != what:
            raise ValueError(f"run_fn: {pattern!r} is split {split!r}, expected {what!r}")
        roots.append(root)
    return roots


def task_patterns(
    files: list[str], config: config_lib.TrainerConfig, what: str
) -> dict[str, str | list[str]]:
    """{task: records pattern(s)} from the Trainer's file list: one pattern with one Examples
    artifact, else a list with one pattern per artifact (tf.io.gfile.glob takes either)."""
    roots = examples_roots(files, what)
    patterns: dict[str, str | list[str]] = {}
    for t in config.tasks:
        per_root = [features.task_file_pattern(root, what, t.name) for root in roots]
        missing = [root for root, p in zip(roots, per_root, strict=True) if not tf.io.gfile.glob(p)]
        if missing:
            raise FileNotFoundError(
                f"run_fn: no {what} records for task {t.name!r} in "
                f"{', '.join(features.split_dir(root, what) for root in missing)}"
            )
        patterns[t.name] = per_root[0] if len(per_root) == 1 else per_root
    return patterns


def _read_labels(path: str) -> list[str]:
    with tf.io.gfile.GFile(path) as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]


def read_vocabularies(
    examples_uris: str | list[str],
    config: config_lib.TrainerConfig,
    transform_vocabularies: dict[str, str],
) -> dict[str, list[str]]:
    """{task: labels in index order}: the Examples' label files when every Examples artifact
    (one per span of the window) has the same, else the TransformGraph's (sorted over the
    whole window's train split)."""
    uris = [examples_uris] if isinstance(examples_uris, str) else list(examples_uris)
    vocabularies = {}
    for task in config.tasks:
        paths = [features.vocabulary_path(uri, task.name) for uri in uris]
        found = [_read_labels(p) for p in paths if tf.io.gfile.exists(p)]
        path = paths[0]
        if len(found) == len(paths) and all(labels == found[0] for labels in found):
            labels = found[0]
        else:
            path = transform_vocabularies.get(task.name, "")
            if not path or not tf.io.gfile.exists(path):
                why = "no label vocabulary" if not found else "label vocabularies that differ"
                raise FileNotFoundError(
                    f"run_fn: {why} for task {task.name!r} in {', '.join(paths)}, and none "
                    "from Transform"
                )
            labels = _read_labels(path)
        if len(labels) != task.num_classes:
            raise ValueError(
                f"tasks.{task.name}.num_classes: {task.num_classes}, but the vocabulary {path} "
                f"has {len(labels)} labels"
            )
        vocabularies[task.name] = labels
    return vocabularies


# Training fields that do not change the trained weights: how often the run reports and saves,
# where and how many checkpoints it keeps, how the final evaluation samples, and on which
# devices the same arithmetic runs. `steps` is left out because the step count the run
# actually trains for (train_args may replace it) is part of the fingerprint itself.
NOT_FINGERPRINTED_TRAINING = (
    "steps",
    "log_every",
    "checkpoint_every",
    "checkpoints_to_keep",
    "checkpoint_root",
    "eval_steps",
    "eval_batch_size",
    "strategy",
    "tpu_address",
)


def resume_fingerprint(
    config: config_lib.TrainerConfig, examples_uri: str | list[str], steps: int
) -> str:
    """16 hex digits naming what decides the trained weights, so that only a run that would
    train the same weights resumes from another run's checkpoints.

    Covered: the training data's URI, the step count, the tasks, the model and inputs sections,
    the training fields that shape the optimisation (schedule, optimizer, learning rate,
    warm-up, decay, clipping, precision, seed...) and continuous.warm_start_steps when set.
    Excluded, as they leave the weights alone:
    - each task's `eval` thresholds (they gate blessing after training);
    - the training fields of NOT_FINGERPRINTED_TRAINING (logging, checkpointing, final
      evaluation, strategy and TPU address);
    - pipeline_name (it names the folder instead) and sample_rate (export only);
    - everything outside the Trainer's slice (serving, evaluation, kubeflow, ingestion), which
      run_fn never receives.
    """
    tasks = [
        {k: v for k, v in dataclasses.asdict(task).items() if k != "eval"} for task in config.tasks
    ]
    training = {
        k: v
        for k, v in dataclasses.asdict(config.training).items()
        if k not in NOT_FINGERPRINTED_TRAINING
    }
    identity = {
        # One URI, or the sorted URIs of a span window (the same data in any order).
        "examples": examples_uri if isinstance(examples_uri, str) else sorted(examples_uri),
        "steps": int(steps),
        "tasks": tasks,
        "model": dataclasses.asdict(config.model),
        "inputs": dataclasses.asdict(config.inputs),
        "training": training,
    }
    if config.warm_start_steps:  # unset, fingerprints stay those of earlier models
        identity["warm_start_steps"] = int(config.warm_start_steps)
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def checkpoint_dir(
    config: config_lib.TrainerConfig,
    model_run_dir: str,
    examples_uri: str | list[str],
    steps: int,
) -> str:
    """Where the Trainer's checkpoints live, so that a restarted Trainer resumes.

    Without training.checkpoint_root: `<model_run_dir>/checkpoints` (TFX gives a retried
    execution the same model_run_dir, a new execution a new one). With it:
    `<checkpoint_root>/<pipeline_name>-<resume_fingerprint>`, so a new execution on the same
    data and weight-deciding settings resumes as well, and new data starts afresh.
    """
    if not config.training.checkpoint_root:
        return os.path.join(model_run_dir, train_loop.CHECKPOINT_DIR)
    digest = resume_fingerprint(config, examples_uri, steps)
    return os.path.join(config.training.checkpoint_root, f"{config.pipeline_name}-{digest}")


def transform_statistics(transform_output: str | None) -> dict:
    """Audio mean/std (and vocabulary paths) from the TransformGraph; defaults without one."""
    if not transform_output:
        return {"audio_mean": 0.0, "audio_std": 1.0, "vocabularies": {}}
    from transforms.preprocessing import read_transform_stats

    return read_transform_stats(transform_output)


WARM_START_FILE = "warm_start.json"
IDENTITY_FILE = "polyvit_training.json"


def write_training_identity(serving_model_dir: str, fingerprint: str, examples: list[str]) -> None:
    """Beside the SavedModel (in the Model artifact, outside what the Pusher copies): what the
    model was trained from, so that a later run can tell its own model from an earlier one
    (components/continuous/model_resolver.py)."""
    path = os.path.join(os.path.dirname(serving_model_dir.rstrip("/")), IDENTITY_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps({"fingerprint": fingerprint, "examples": sorted(examples)}))


def read_training_identity(model_uri: str) -> dict:
    """What `write_training_identity` left in a Model artifact; {} for older models."""
    path = os.path.join(model_uri, IDENTITY_FILE)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def warm_start_builder(base_model: str | None, vocabularies: dict, reports: list):
    """build_model_fn for train_loop: the default model, warm-started from TFX's `base_model`
    (the latest blessed model) when there is one; heads carry over for tasks whose labels are
    unchanged. None without a base model (train_loop's default). A checkpoint of this run,
    when resuming, is restored after this and wins."""
    if not base_model:
        return None

    def build(config):
        from trainer import warm_start
        from trainer.model import build_model

        model = build_model(config.model, config.tasks, config.inputs)
        old_labels = warm_start.read_labels(base_model) or {}
        carry, _ = warm_start.heads_to_carry(old_labels, vocabularies)
        reports.append(warm_start.warm_start(model, base_model, carry_heads_for=carry))
        return model

    return build


def steps_to_train(config: config_lib.TrainerConfig, steps: int, warm_starts: bool) -> int:
    """The step count run_fn trains: `warm_start_steps` (continuous.warm_start_steps) when it
    warm-starts from a base model and that is set, at most `steps` (a fine-tune is never longer
    than a run from scratch, e.g. under `--set training.steps=100`), else `steps`. The
    schedule apportions the count over the tasks by their weights (trainer/schedules.py), so
    every task's budget scales in proportion and the learning rate decays to 0 at the end."""
    if warm_starts and config.warm_start_steps:
        return min(int(config.warm_start_steps), int(steps))
    return int(steps)


def write_warm_start_report(model_run_dir: str, reports: list, result=None) -> None:
    """What was warm-started from which model (ModelRun artifact), {} for a cold start; with
    the train_loop result, also how many steps the warm-started run trained (per task)."""
    report = reports[-1].to_dict() if reports else {}
    if report and result is not None:
        report["steps"] = int(result.total_steps)
        report["steps_per_task"] = dict(result.steps_per_task)
    path = os.path.join(model_run_dir, WARM_START_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(report, sort_keys=True))


HYPERPARAMETERS_FILE = "hyperparameters.json"


def apply_tuned(config: config_lib.TrainerConfig, hyperparameters, model_run_dir: str):
    """The config with the Tuner's best values applied (logged, and written to the ModelRun
    as {key: {"from", "to"}}); unchanged without a Tuner."""
    values = tuning.values_from_artifact(hyperparameters)
    if not values:
        return config
    config, applied = tuning.apply_hyperparameters(config, values)
    log.info("Applying the Tuner's best hyperparameters: %s", tuning.describe_applied(applied))
    tf.io.gfile.makedirs(model_run_dir)
    with tf.io.gfile.GFile(os.path.join(model_run_dir, HYPERPARAMETERS_FILE), "w") as f:
        f.write(json.dumps(applied, sort_keys=True))
    return config


def run_fn(fn_args, build_model_fn=None, extra_modules_fn=None) -> None:
    """The TFX Trainer's entry point (see the module docstring). `build_model_fn(config)`
    replaces the default model builder (trainer/vatt/run_fn.py: start from pretraining);
    without it the model warm-starts from TFX's `base_model` when there is one.
    `extra_modules_fn()`, called at export, returns modules saved into the exported model with
    their signatures (trainer/export.py's `extra_modules`: VATT's embedding signatures)."""
    config = config_lib.from_custom_config(
        fn_args.custom_config, config_lib.TrainerConfig, "run_fn"
    )
    # training.strategy arrives resolved: create_pipeline picks it from where the Trainer runs.
    training = dataclasses.replace(
        config.training, eval_steps=int(fn_args.eval_steps or config.training.eval_steps)
    )
    config = dataclasses.replace(config, training=training)
    config = apply_tuned(config, getattr(fn_args, "hyperparameters", None), fn_args.model_run_dir)
    train = task_patterns(fn_args.train_files, config, "train")
    evaluate = task_patterns(fn_args.eval_files, config, "eval")
    roots = examples_roots(fn_args.train_files, features.TRAIN)
    examples_uri: str | list[str] = roots[0] if len(roots) == 1 else roots
    stats = transform_statistics(getattr(fn_args, "transform_output", None))
    vocabularies = read_vocabularies(examples_uri, config, stats["vocabularies"])

    steps = fn_args.train_steps or config.training.steps
    warm_reports: list = []
    warm_builder = None
    if build_model_fn is None:
        warm_builder = warm_start_builder(
            getattr(fn_args, "base_model", None), vocabularies, warm_reports
        )
    trained_steps = steps_to_train(config, steps, warm_starts=warm_builder is not None)
    if trained_steps != steps:
        log.info(
            "Warm-starting: training %d steps (continuous.warm_start_steps) instead of %d",
            trained_steps,
            steps,
        )
    result = train_loop.train(
        config,
        fn_args.model_run_dir,
        train,
        evaluate,
        total_steps=trained_steps,
        audio_mean=stats["audio_mean"],
        audio_std=stats["audio_std"],
        # The steps trained decide the weights, so a fine-tune resumes only a fine-tune.
        checkpoint_dir=checkpoint_dir(config, fn_args.model_run_dir, examples_uri, trained_steps),
        build_model_fn=build_model_fn or warm_builder,
    )

    from trainer import eval_signatures
    from trainer.export import export_saved_model

    export_dir = fn_args.serving_model_dir
    if not result.is_chief:
        # Every worker saves (variables may be read collectively); only the chief's copy stays.
        export_dir = os.path.join(fn_args.model_run_dir, "tmp_export", str(os.getpid()))
    export_saved_model(
        result.model,
        config,
        vocabularies,
        export_dir,
        audio_mean=stats["audio_mean"],
        audio_std=stats["audio_std"],
        # TFMA's signatures (per-task scores and labels for mixed-task batches) live in the
        # same SavedModel, over the same variables.
        extra_signatures=eval_signatures.extra_signatures(
            result.model, config, vocabularies, stats["audio_mean"], stats["audio_std"]
        ),
        extra_modules=extra_modules_fn() if extra_modules_fn else None,
    )
    if export_dir != fn_args.serving_model_dir:
        tf.io.gfile.rmtree(export_dir)
    from trainer import warm_start

    if result.is_chief:
        warm_start.write_labels(fn_args.serving_model_dir, vocabularies)
        # The configured step count, whether or not this run warm-started: the resolver
        # computes the same before it knows whether there is a base model.
        write_training_identity(
            fn_args.serving_model_dir, resume_fingerprint(config, examples_uri, steps), roots
        )
        write_warm_start_report(fn_args.model_run_dir, warm_reports, result)
    log.info(
        "Exported the model trained for %d steps to %s; eval metrics in %s",
        result.step,
        fn_args.serving_model_dir,
        os.path.join(fn_args.model_run_dir, train_loop.METRICS_FILE),
    )
