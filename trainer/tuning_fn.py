"""`tuner_fn` for the TFX Tuner: a keras-tuner search whose trials run the Trainer's own loop.

    Tuner(tuner_fn="trainer.tuning_fn.tuner_fn", examples=..., transform_graph=...,
          custom_config=core.config.to_custom_config(core.config.tuner_config(...)))

Reads from `fn_args` what run_fn reads (trainer/run_fn.py: train/eval files, the
TransformGraph's audio statistics, an optional base_model to warm-start every trial from)
plus the `tuning` section; `train_steps` (the Tuner's train_args) replaces
tuning.steps_per_trial, `eval_steps` (eval_args) tuning.eval_steps. Every trial trains a fresh
model for that many steps with train_loop.train, in `<working_dir>/<project>/trial_<id>`, and
reports the mean of the tasks' headline eval metrics (the objective) and each task's value.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from typing import Any

import keras_tuner
import tensorflow as tf
from keras_tuner.engine import base_tuner

from core import config as config_lib
from trainer import run_fn as run_fn_lib
from trainer import train_loop, tuning

log = logging.getLogger("polyvit.tuner")

PROJECT = "polyvit_tuning"


class TrainLoopTuner(base_tuner.BaseTuner):
    """A keras-tuner tuner with no Keras fit: `trial_fn(values, trial_dir)` trains and scores
    one set of hyperparameters (trainer.tuning.run_trial) and returns its metrics."""

    def __init__(self, oracle, trial_fn: Callable[[dict, str], dict], directory: str):
        super().__init__(oracle=oracle, directory=directory, project_name=PROJECT, overwrite=True)
        self._trial_fn = trial_fn

    def run_trial(self, trial, *args, **kwargs):
        trial_dir = self.get_trial_dir(trial.trial_id)
        scores = self._trial_fn(dict(trial.hyperparameters.values), trial_dir)
        # The checkpoints of a throw-away trial only cost disk.
        checkpoints = os.path.join(trial_dir, train_loop.CHECKPOINT_DIR)
        if tf.io.gfile.exists(checkpoints):
            tf.io.gfile.rmtree(checkpoints)
        return scores


class _ConfiguredFirst:
    """An oracle whose first trial is the configured values (each clamped into its range: the
    space's defaults, trainer.tuning.space_spec), so the search scores the starting point on
    the same budget and its best is never worse than it on that budget."""

    hyperparameters: Any
    trials: dict

    def populate_space(self, trial_id):
        if not self.trials:
            values = {hp.name: hp.default for hp in self.hyperparameters.space}
            return {"status": "RUNNING", "values": values}
        return super().populate_space(trial_id)


class RandomSearchOracle(_ConfiguredFirst, keras_tuner.oracles.RandomSearchOracle):
    pass


class BayesianOptimizationOracle(_ConfiguredFirst, keras_tuner.oracles.BayesianOptimizationOracle):
    pass


def make_oracle(config: config_lib.TunerConfig):
    """keras-tuner's RandomSearch or BayesianOptimization oracle over the config's space,
    maximising the objective, with `tuning.max_trials` trials, the first of them the
    configured values. Bayesian: half the budget (at least 2 trials) samples at random before
    the Gaussian process proposes (keras-tuner's default, 3 per dimension, would exceed a
    small budget and never fit the process)."""
    space = tuning.search_space(config.tuning, config)
    settings: dict[str, Any] = {
        "objective": keras_tuner.Objective(tuning.OBJECTIVE, direction="max"),
        "max_trials": config.tuning.max_trials,
        "hyperparameters": space,
        "seed": config.tuning.seed,
        # A failing trial stops the search at once (its error says why), rather than the
        # search quietly going on with fewer trials.
        "max_consecutive_failed_trials": 1,
    }
    if config.tuning.algorithm == "bayesian":
        initial = max(2, config.tuning.max_trials // 2)
        return BayesianOptimizationOracle(num_initial_points=initial, **settings)
    return RandomSearchOracle(**settings)


def tuner_config(fn_args) -> config_lib.TunerConfig:
    """The Tuner's slice, with the Tuner's train_args / eval_args steps when they are set."""
    config = config_lib.from_custom_config(
        fn_args.custom_config, config_lib.TunerConfig, "tuner_fn"
    )
    settings = config.tuning
    if fn_args.train_steps:
        settings = dataclasses.replace(settings, steps_per_trial=int(fn_args.train_steps))
    if fn_args.eval_steps:
        settings = dataclasses.replace(settings, eval_steps=int(fn_args.eval_steps))
    return dataclasses.replace(config, tuning=settings)


def tuner_fn(fn_args):
    """The TFX Tuner's entry point: returns TunerFnResult(tuner, fit_kwargs), the kwargs only
    keras-tuner's `verbose=0` (its per-trial tables go to stdout; each trial logs a line)."""
    from tfx.components.tuner.component import TunerFnResult

    config = tuner_config(fn_args)
    trainer_slice = config_lib.TrainerConfig(
        **{f.name: getattr(config, f.name) for f in dataclasses.fields(config_lib.TrainerConfig)}
    )
    train = run_fn_lib.task_patterns(fn_args.train_files, trainer_slice, "train")
    evaluate = run_fn_lib.task_patterns(fn_args.eval_files, trainer_slice, "eval")
    stats = run_fn_lib.transform_statistics(getattr(fn_args, "transform_output", None))
    base_model = getattr(fn_args, "base_model", None)
    vocabularies = {}
    if base_model:
        examples_uri, _ = run_fn_lib.split_of(fn_args.train_files[0])
        vocabularies = run_fn_lib.read_vocabularies(
            examples_uri, trainer_slice, stats["vocabularies"]
        )

    def trial_fn(values: dict, trial_dir: str) -> dict:
        return tuning.run_trial(
            trainer_slice,
            config.tuning,
            values,
            trial_dir,
            train,
            evaluate,
            audio_mean=stats["audio_mean"],
            audio_std=stats["audio_std"],
            build_model_fn=run_fn_lib.warm_start_builder(base_model, vocabularies, []),
        )

    log.info(
        "Tuning: %s search, %d trials of %d steps, over %s",
        config.tuning.algorithm,
        config.tuning.max_trials,
        config.tuning.steps_per_trial,
        ", ".join(item["name"] for item in tuning.space_spec(config.tuning, trainer_slice)),
    )
    tuner = TrainLoopTuner(make_oracle(config), trial_fn, fn_args.working_dir)
    return TunerFnResult(tuner=tuner, fit_kwargs={"verbose": 0})
