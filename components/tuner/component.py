"""`Tuner`: TFX's Tuner component run by this package's executor (every trial on record).

    Tuner(tuner_fn="trainer.tuning_fn.tuner_fn", examples=..., transform_graph=...,
          custom_config=...)   # outputs: best_hyperparameters, tuner_results (+ trials.json)

The Trainer takes `outputs["best_hyperparameters"]` as its `hyperparameters` input
(fn_args.hyperparameters in run_fn); the ModelReport reads `outputs["tuner_results"]`.
"""

from __future__ import annotations

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.tuner import executor


class Tuner(tfx.components.Tuner):
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
