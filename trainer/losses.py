"""Per-example training losses of one task, from its label type and label smoothing.

single  softmax cross-entropy against the (one-hot or mixed-up) label distribution, with labels
        smoothed to (1 - s) * y + s / C
multi   sigmoid binary cross-entropy summed over the classes (big_vision's and scenic's
        `sigmoid_xent`), with labels smoothed to (1 - s) * y + s / 2
"""

from __future__ import annotations

import tensorflow as tf

from core.config import Task


def smooth_labels(labels: tf.Tensor, smoothing: float, label_type: str) -> tf.Tensor:
    if not smoothing:
        return labels
    num_classes = tf.cast(tf.shape(labels)[-1], labels.dtype)
    uniform = 0.5 if label_type == "multi" else 1.0 / num_classes
    return labels * (1.0 - smoothing) + smoothing * uniform


def per_example_loss(task: Task, labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """float32 [B] loss of each example (before the task's loss_weight)."""
    logits = tf.cast(logits, tf.float32)
    labels = smooth_labels(tf.cast(labels, tf.float32), task.label_smoothing, task.label_type)
    if task.label_type == "multi":
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
        return tf.reduce_sum(bce, axis=-1)
    return tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)


def replica_loss(task: Task, labels: tf.Tensor, logits: tf.Tensor, global_batch: int) -> tf.Tensor:
    """This replica's share of the task's weighted mean loss over the GLOBAL batch.

    Summing it over replicas gives loss_weight * mean loss of the global batch, so gradients
    summed over replicas equal the gradient of one device holding the whole batch.
    """
    losses = per_example_loss(task, labels, logits)
    return task.loss_weight * tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
