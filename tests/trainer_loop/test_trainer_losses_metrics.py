"""Losses (label smoothing, loss weight, global-batch averaging) and the metrics."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import average_precision_score

from core.config import Task
from trainer import losses, metrics


def test_single_label_loss_is_smoothed_softmax_cross_entropy():
    task = Task(name="t", num_classes=3, label_smoothing=0.3)
    logits = np.array([[2.0, 0.0, -1.0]], np.float32)
    labels = np.array([[1.0, 0.0, 0.0]], np.float32)
    smoothed = labels * 0.7 + 0.1
    log_p = logits - np.log(np.exp(logits).sum())
    expected = -(smoothed * log_p).sum()
    assert float(losses.per_example_loss(task, labels, logits)[0]) == pytest.approx(expected)


def test_multi_label_loss_sums_binary_cross_entropy_over_classes():
    task = Task(name="t", num_classes=2, label_type="multi", label_smoothing=0.2)
    logits = np.array([[1.0, -2.0]], np.float32)
    labels = np.array([[1.0, 0.0]], np.float32)
    y = labels * 0.8 + 0.1
    p = 1 / (1 + np.exp(-logits))
    expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum()
    assert float(losses.per_example_loss(task, labels, logits)[0]) == pytest.approx(expected, 1e-5)


def test_replica_loss_is_the_weighted_share_of_the_global_mean():
    task = Task(name="t", num_classes=2, loss_weight=3.0)
    logits = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    labels = tf.constant([[1.0, 0.0], [1.0, 0.0]])
    per_example = losses.per_example_loss(task, labels, logits).numpy()
    # This replica holds 2 of a global batch of 8 examples.
    share = float(losses.replica_loss(task, labels, logits, global_batch=8))
    assert share == pytest.approx(3.0 * per_example.sum() / 8)


def test_average_precision_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(60, 5)).astype(np.float32)
    scores = np.round(rng.random((60, 5)), 1)  # many ties
    for c in range(5):
        assert metrics.average_precision(labels[:, c], scores[:, c]) == pytest.approx(
            average_precision_score(labels[:, c], scores[:, c])
        )
    labels[:, 2] = 0  # a class without positives is left out of the mean
    expected = np.mean([average_precision_score(labels[:, c], scores[:, c]) for c in (0, 1, 3, 4)])
    assert metrics.mean_average_precision(labels, scores) == pytest.approx(expected)


def test_batch_map_in_tf_matches_numpy_without_ties():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=(32, 6)).astype(np.float32)
    labels[:, 4] = 0
    scores = rng.normal(size=(32, 6)).astype(np.float32)
    got = float(metrics.batch_mean_average_precision(labels, scores))
    assert got == pytest.approx(metrics.mean_average_precision(labels, scores), rel=1e-5)


def test_top1_accuracy():
    labels = np.eye(3, dtype=np.float32)[[0, 1, 2, 2]]
    scores = np.array([[3, 1, 0], [0, 2, 1], [1, 0, 0], [0, 0, 5]], np.float32)
    assert metrics.top1_accuracy(labels, scores) == 0.75
    assert float(tf.reduce_mean(metrics.batch_top1_correct(labels, scores))) == 0.75
    with pytest.raises(ValueError, match="labels"):
        metrics.top1_accuracy(labels, scores[:, :2])
