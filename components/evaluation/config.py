"""The evaluation gate: a `tfma.EvalConfig` generated from the task config.

One model spec reads the exported model's `tfma_eval` signature (one output per task) and runs
`tfma_labels` as a preprocessing function, whose outputs give each output its labels
(`label_<task>`) and example weights (`weight_<task>`: 1 for the task's records, 0 for the
others), so every record counts for its own task only (trainer/eval_signatures.py).

Per output (task):
  single-label   top1, top5 (only when the task has more than 5 classes), a confusion matrix plot
  multi-label    mAP, auc, d_prime, a multi-label confusion matrix plot
  both           num_examples
Slices: overall and by `task/name`.
Gate on the headline metric (top1 / mAP, as the trainer reports): a value threshold
`tasks.<t>.eval.min_metric` (when > 0) and a change threshold: at most
`evaluation.max_regression` (absolute) below the baseline. The baseline is the latest blessed
model (Resolver with LatestBlessedModelStrategy); without one (the first run) TFX's Evaluator
drops change thresholds (it updates the config with rubber_stamp=True), so only value
thresholds decide.
"""

from __future__ import annotations

import json

import tensorflow_model_analysis as tfma

from core import features as keys
from core.config import Config, Task, labelled_tasks
from trainer import eval_signatures
from trainer.metrics import headline_metric_name

METRICS_MODULE = "components.evaluation.metrics"
TOP5_MIN_CLASSES = 5


def headline_metric(task: Task) -> str:
    return headline_metric_name(task.label_type)


def task_metric_names(task: Task) -> list[str]:
    """The metrics reported for a task, headline first."""
    if task.label_type == "multi":
        return ["mAP", "auc", "d_prime", "num_examples"]
    names = ["top1"]
    if task.num_classes > TOP5_MIN_CLASSES:
        names.append("top5")
    return names + ["num_examples"]


_CLASSES = {
    "top1": ("TopKAccuracy", {"k": 1}),
    "top5": ("TopKAccuracy", {"k": 5}),
    "mAP": ("MeanAveragePrecision", {}),
    "auc": ("MacroAUC", {}),
    "d_prime": ("DPrime", {}),
    "num_examples": ("NumExamples", {}),
}


def task_thresholds(task: Task, max_regression: float) -> tfma.MetricThreshold | None:
    """Value threshold from the task's min_metric, change threshold from max_regression."""
    threshold = tfma.MetricThreshold()
    if task.eval.min_metric > 0:
        threshold.value_threshold.lower_bound.value = task.eval.min_metric
    if max_regression >= 0:
        threshold.change_threshold.direction = tfma.MetricDirection.HIGHER_IS_BETTER
        threshold.change_threshold.absolute.value = -max_regression
    return threshold if threshold.ByteSize() else None


def _metric_config(name: str, threshold: tfma.MetricThreshold | None) -> tfma.MetricConfig:
    class_name, kwargs = _CLASSES[name]
    metric = tfma.MetricConfig(
        class_name=class_name, module=METRICS_MODULE, config=json.dumps({**kwargs, "name": name})
    )
    if threshold is not None:
        # Overall slice only: a plain `threshold` would also be checked on the task/name
        # slices of the OTHER tasks, where this output has no example and its value is NaN.
        metric.per_slice_thresholds.add(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)
    return metric


def _coverage_threshold() -> tfma.MetricThreshold:
    """Every task must have been evaluated on at least one example. Also makes sure the
    Evaluator always validates (it writes no blessing at all when no threshold is set, which
    a first run with every min_metric at 0 would otherwise be)."""
    threshold = tfma.MetricThreshold()
    threshold.value_threshold.lower_bound.value = 1
    return threshold


def task_metrics_spec(task: Task, max_regression: float) -> tfma.MetricsSpec:
    headline = headline_metric(task)
    thresholds = {
        headline: task_thresholds(task, max_regression),
        "num_examples": _coverage_threshold(),
    }
    metrics = [_metric_config(name, thresholds.get(name)) for name in task_metric_names(task)]
    plot = (
        "MultiLabelConfusionMatrixPlot"
        if task.label_type == "multi"
        else "MultiClassConfusionMatrixPlot"
    )
    metrics.append(tfma.MetricConfig(class_name=plot))
    return tfma.MetricsSpec(
        output_names=[task.name],
        metrics=metrics,
        example_weights=tfma.ExampleWeightOptions(weighted=True, unweighted=False),
    )


def make_eval_config(config: Config) -> tfma.EvalConfig:
    """The EvalConfig for the Evaluator (and tfma.run_model_analysis) of `config`'s model:
    its labelled tasks (an unlabelled one has no head; its records weigh 0 for every output)."""
    tasks = labelled_tasks(config.tasks)
    if config.evaluation.max_regression < 0:
        raise ValueError(
            f"evaluation.max_regression: must be >= 0, got {config.evaluation.max_regression}"
        )
    for task in tasks:
        if not 0.0 <= task.eval.min_metric <= 1.0:
            raise ValueError(
                f"tasks.{task.name}.eval.min_metric: must be in [0, 1], got {task.eval.min_metric}"
            )
    model_spec = tfma.ModelSpec(
        signature_name=eval_signatures.EVAL_SIGNATURE,
        preprocessing_function_names=[eval_signatures.LABELS_SIGNATURE],
        label_keys={t.name: eval_signatures.label_key(t.name) for t in tasks},
        example_weight_keys={t.name: eval_signatures.weight_key(t.name) for t in tasks},
        model_type=tfma.TF_GENERIC,
    )
    return tfma.EvalConfig(
        model_specs=[model_spec],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[keys.TASK])],
        metrics_specs=[task_metrics_spec(task, config.evaluation.max_regression) for task in tasks],
    )
