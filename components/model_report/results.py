"""Reading what the report shows: TFMA's metrics, plots and validation result, the trainer's
logged curves and eval numbers, and the label vocabularies. Plain dicts and arrays out, so that
the rendering (render.py) is independent of TFMA's protos.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma

from core import features

OVERALL = "overall"
CANDIDATE, BASELINE = "candidate", "baseline"
TRAINER_METRICS_FILE = "eval_metrics.json"  # trainer/train_loop.py METRICS_FILE
TRAIN_EVENTS_DIR = "train"  # trainer/train_loop.py: TensorBoard scalars of training


def slice_name(slice_key) -> str:
    """ "overall" or "task/name=digits" for a TFMA SliceKey proto."""
    parts = []
    for key in slice_key.single_slice_keys:
        value = (
            key.bytes_value.decode()
            if key.HasField("bytes_value")
            else (key.int64_value if key.HasField("int64_value") else key.float_value)
        )
        parts.append(f"{key.column}={value}")
    return ", ".join(parts) or OVERALL


def _value(metric_value) -> float | None:
    if metric_value.HasField("double_value"):
        return float(metric_value.double_value.value)
    return None


def load_metrics(evaluation_uri: str) -> dict:
    """{"candidate"|"baseline"|"diff": {slice: {task: {metric: value}}}}. A single-model
    evaluation (the first run) has "candidate" only."""
    result: dict = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        where = slice_name(metrics.slice_key)
        for item in metrics.metric_keys_and_values:
            value = _value(item.value)
            if value is None:
                continue
            key = item.key
            model = "diff" if key.is_diff else (key.model_name or CANDIDATE)
            task = result.setdefault(model, {}).setdefault(where, {})
            task.setdefault(key.output_name, {})[key.name] = value
    if not result:
        raise FileNotFoundError(f"{evaluation_uri}: no TFMA metrics found")
    return result


def _threshold_text(threshold) -> tuple[str, str]:
    """(kind, text) of a GenericValueThreshold / GenericChangeThreshold in a failure."""
    if threshold.HasField("value_threshold"):
        bounds = threshold.value_threshold
        parts = []
        if bounds.HasField("lower_bound"):
            parts.append(f">= {bounds.lower_bound.value:g}")
        if bounds.HasField("upper_bound"):
            parts.append(f"<= {bounds.upper_bound.value:g}")
        return "value", " and ".join(parts)
    change = threshold.change_threshold
    parts = []
    if change.HasField("absolute"):
        higher = change.direction == tfma.MetricDirection.HIGHER_IS_BETTER
        parts.append(f"change {'>=' if higher else '<='} {change.absolute.value:g}")
    if change.HasField("relative"):
        parts.append(f"relative change {change.relative.value:g}")
    return "change", " and ".join(parts) + " vs. baseline"


def load_validation(evaluation_uri: str) -> dict:
    """{"ok", "rubber_stamp", "failures": [{task, metric, kind, threshold, value, slice}]}."""
    validation = tfma.load_validation_result(evaluation_uri)
    failures = []
    for per_slice in validation.metric_validations_per_slice:
        where = slice_name(per_slice.slice_key)
        for failure in per_slice.failures:
            kind, text = _threshold_text(failure.metric_threshold)
            failures.append(
                {
                    "task": failure.metric_key.output_name,
                    "metric": failure.metric_key.name,
                    "kind": kind,
                    "threshold": text,
                    "value": _value(failure.metric_value),
                    "slice": where,
                    "message": failure.message.strip(),
                }
            )
    return {
        "ok": bool(validation.validation_ok),
        "rubber_stamp": bool(validation.rubber_stamp),
        "failures": failures,
    }


def load_confusion_matrices(evaluation_uri: str, num_classes: dict[str, int]) -> dict:
    """{task: int-free float [C, C]} for the candidate on the overall slice.

    Single-label: rows are the labelled class, columns the arg-max class (weighted counts).
    Multi-label: rows are a labelled class i, columns a class j scored at or above TFMA's
    threshold (0.5): the count of examples labelled i for which j was predicted (TFMA's
    true + false positives of the (i, j) entry)."""
    matrices = {}
    for plots in tfma.load_plots(evaluation_uri):
        if slice_name(plots.slice_key) != OVERALL:
            continue
        for item in plots.plot_keys_and_values:
            key = item.key
            if (key.model_name or CANDIDATE) != CANDIDATE:
                continue
            task = key.output_name
            size = num_classes.get(task)
            if size is None:
                continue
            matrix = np.zeros((size, size))
            if item.value.HasField("multi_class_confusion_matrix_at_thresholds"):
                for entry in item.value.multi_class_confusion_matrix_at_thresholds.matrices[
                    0
                ].entries:
                    if 0 <= entry.predicted_class_id < size:
                        matrix[entry.actual_class_id, entry.predicted_class_id] += (
                            entry.num_weighted_examples
                        )
            elif item.value.HasField("multi_label_confusion_matrix_at_thresholds"):
                for entry in item.value.multi_label_confusion_matrix_at_thresholds.matrices[
                    0
                ].entries:
                    matrix[entry.actual_class_id, entry.predicted_class_id] += (
                        entry.true_positives + entry.false_positives
                    )
            else:
                continue
            matrices[task] = matrix
    return matrices


def _files_named(root: str, name: str) -> list[str]:
    found = []
    for directory, _, files in tf.io.gfile.walk(root):
        if name in files:
            found.append(os.path.join(directory, name))
    return sorted(found)


def load_trainer_metrics(*roots: str) -> dict | None:
    """The trainer's eval_metrics.json (first found under the given artifact folders)."""
    for root in roots:
        if root:
            for path in _files_named(root, TRAINER_METRICS_FILE):
                with tf.io.gfile.GFile(path) as f:
                    return json.load(f)
    return None


def load_training_curves(*roots: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{task: {scalar: [(step, value)]}} from the trainer's TensorBoard events under
    <root>/**/train/ (tags `<task>/<scalar>`; global scalars go under task "")."""
    curves: dict = {}
    for root in roots:
        if not root or not tf.io.gfile.exists(root):
            continue
        for directory, _, files in tf.io.gfile.walk(root):
            if os.path.basename(directory.rstrip("/")) != TRAIN_EVENTS_DIR:
                continue
            for name in sorted(f for f in files if "tfevents" in f):
                for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
                    for value in event.summary.value:
                        number = (
                            float(tf.make_ndarray(value.tensor))
                            if value.HasField("tensor")
                            else float(value.simple_value)
                        )
                        task, _, scalar = value.tag.rpartition("/")
                        curves.setdefault(task, {}).setdefault(scalar, []).append(
                            (int(event.step), number)
                        )
        if curves:
            break
    for scalars in curves.values():
        for scalar in scalars:
            scalars[scalar] = sorted(set(scalars[scalar]))
    return curves


def load_vocabularies(examples_uri: str | None, tasks: list[str]) -> dict[str, list[str]]:
    """{task: labels in index order} from the Examples artifact's labels/<task>.txt."""
    vocabularies: dict[str, list[str]] = {}
    if not examples_uri:
        return vocabularies
    for task in tasks:
        path = features.vocabulary_path(examples_uri, task)
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                vocabularies[task] = [line.rstrip("\n") for line in f if line.strip()]
    return vocabularies
