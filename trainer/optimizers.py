"""The optimizer from `config.training`: SGD with momentum or AdamW, optional loss scaling.

Weight decay is decoupled in both (Keras applies `var -= lr * weight_decay * var` before the
update, so it follows the per-step learning rate, task multiplier included) and is applied only
to weight matrices: biases, normalisation scales and offsets, class tokens and positional
embeddings are not decayed (the ViT/big_vision habit).

Gradient clipping is not done here: the training loop clips the all-reduced gradient by its
global norm, so every replica clips the same gradient (Keras' `global_clipnorm` would clip each
replica's share before the sum).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence

import tensorflow as tf
import tf_keras as keras

from core.config import ConfigError, Training

# Variables whose names match are never decayed, whatever their rank.
_NO_DECAY_NAME = re.compile(r"(pos_?emb|posembed|position|cls|class_token|bias|norm|scale)", re.I)


def decays(variable_name: str, rank: int) -> bool:
    """True for the weight matrices and kernels that weight decay should shrink."""
    return rank >= 2 and not _NO_DECAY_NAME.search(variable_name)


def mixed_precision_policy(training: Training) -> str:
    if not training.mixed_precision:
        return "float32"
    return f"mixed_{training.mixed_precision_dtype}"


@contextlib.contextmanager
def precision_policy(training: Training):
    """Keras' global dtype policy for building the model; the previous one is restored after,
    so models built later in the process (tests, other tools) are not affected."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(mixed_precision_policy(training))
    try:
        yield mixed_precision_policy(training)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def build_optimizer(
    training: Training,
    learning_rate: keras.optimizers.schedules.LearningRateSchedule,
    variables: Sequence[tf.Variable],
) -> keras.optimizers.Optimizer:
    """The configured optimizer, built for `variables` (call inside `strategy.scope()`).

    Building it now creates the slot variables, so a checkpoint restores them at once.
    For float16 mixed precision it is wrapped in a dynamic LossScaleOptimizer.
    """
    weight_decay = training.weight_decay or None
    if training.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(
            learning_rate=learning_rate, momentum=training.momentum, weight_decay=weight_decay
        )
    elif training.optimizer == "adamw":
        # AdamW without decay is Adam; Keras' AdamW would still run a zero decay op per variable.
        adam = dict(
            learning_rate=learning_rate,
            beta_1=training.adam_beta1,
            beta_2=training.adam_beta2,
            epsilon=training.adam_epsilon,
        )
        if weight_decay:
            optimizer = keras.optimizers.AdamW(weight_decay=weight_decay, **adam)
        else:
            optimizer = keras.optimizers.Adam(**adam)
    else:
        raise ConfigError(f"training.optimizer: unknown optimizer {training.optimizer!r}")
    if weight_decay:
        optimizer.exclude_from_weight_decay(
            var_list=[v for v in variables if not decays(v.name, len(v.shape))]
        )
    if mixed_precision_policy(training) == "mixed_float16":
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
    optimizer.build(list(variables))
    return optimizer


def uses_loss_scaling(optimizer) -> bool:
    return isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)
