"""Optimizer construction: decay only on weight matrices, AdamW vs Adam, loss scaling."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
import tf_keras as keras

from core.config import Training
from trainer import optimizers, schedules


def test_decay_rules():
    assert optimizers.decays("polyvit/encoder/block_0/mlp/dense_0/kernel:0", 2)
    assert optimizers.decays("tokenizer_video/tubelet/kernel:0", 5)
    assert not optimizers.decays("encoder/block_0/mlp/dense_0/bias:0", 1)
    assert not optimizers.decays("encoder/layer_norm/gamma:0", 1)
    assert not optimizers.decays("tokenizer_image/pos_embedding:0", 3)
    assert not optimizers.decays("tokenizer_image/cls:0", 3)


def _step(training: Training, kernel_value=1.0, grad=0.0):
    kernel = tf.Variable(np.full((2, 2), kernel_value, np.float32), name="dense/kernel")
    bias = tf.Variable(np.full((2,), kernel_value, np.float32), name="dense/bias")
    lr = schedules.WarmupCosine(0.1, 0, 100)
    optimizer = optimizers.build_optimizer(training, lr, [kernel, bias])
    optimizer.apply_gradients([(tf.fill([2, 2], grad), kernel), (tf.fill([2], grad), bias)])
    return optimizer, kernel.numpy(), bias.numpy()


def test_adamw_decays_kernels_but_not_biases():
    training = Training(optimizer="adamw", weight_decay=0.5)
    optimizer, kernel, bias = _step(training)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    # Zero gradient: only the decoupled decay moves the kernel, by lr * wd * value.
    np.testing.assert_allclose(kernel, 1.0 - 0.1 * 0.5, rtol=1e-6)
    np.testing.assert_allclose(bias, 1.0, rtol=1e-6)


def test_adamw_without_decay_is_adam_and_sgd_has_momentum():
    optimizer, _, _ = _step(Training(optimizer="adamw", weight_decay=0.0))
    assert type(optimizer) is keras.optimizers.Adam
    sgd, kernel, _ = _step(Training(optimizer="sgd", momentum=0.9, weight_decay=0.0), grad=1.0)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9
    np.testing.assert_allclose(kernel, 1.0 - 0.1, rtol=1e-6)


def test_float16_gets_loss_scaling_and_bfloat16_does_not():
    fp16 = dataclasses.replace(Training(), mixed_precision=True, mixed_precision_dtype="float16")
    assert optimizers.mixed_precision_policy(fp16) == "mixed_float16"
    optimizer, _, _ = _step(fp16)
    assert optimizers.uses_loss_scaling(optimizer)
    bf16 = dataclasses.replace(fp16, mixed_precision_dtype="bfloat16")
    assert optimizers.mixed_precision_policy(bf16) == "mixed_bfloat16"
    assert not optimizers.uses_loss_scaling(_step(bf16)[0])
    assert optimizers.mixed_precision_policy(Training()) == "float32"
