"""Custom TFMA metrics for the co-trained model: exact top-k accuracy, mAP, AUC and d-prime.

Every metric here derives from ONE shared computation per (model, output): the labels and
scores of the examples whose example weight is 1 (the output's own task, see
trainer/eval_signatures.py: `weight_<task>` is 1 for the task's records and 0 for the others).
TFMA de-duplicates identical computations, so the scores are collected once per output however
many of these metrics are configured. The numbers are computed with the trainer's own NumPy
functions (trainer/metrics.py), so TFMA's top-1 and mAP agree with the trainer's evaluation on
the same predictions.

    top1, top5     top-k accuracy (single-label; the label's class among the k highest scores,
                   ties broken by position as NumPy's argsort does)
    mAP            macro-averaged average precision over the classes with a positive example
    auc            macro-averaged ROC AUC over the classes with both positives and negatives
    d_prime        sqrt(2) * Phi^-1(auc), as the AudioSet literature reports it
    num_examples   examples counted for the output

Module path for MetricConfig: `components.evaluation.metrics`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import apache_beam as beam
import numpy as np
from scipy import stats
from tensorflow_model_analysis.metrics import metric_types, metric_util

from trainer import metrics as trainer_metrics

MODULE = __name__
_COLLECTED = "_polyvit_labels_and_scores"


# --------------------------------------------------------------------------------------------
# Pure NumPy metrics.


def top_k_accuracy(labels: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Fraction of rows whose labelled class (arg-max of the label row) is among the k best."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    if not len(labels):
        return float("nan")
    truth = np.argmax(labels, axis=-1)
    best = np.argsort(-scores, axis=-1, kind="stable")[:, :k]
    return float(np.mean(np.any(best == truth[:, None], axis=-1)))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of one class (Mann-Whitney U with tied scores counted half). NaN without both
    positives and negatives."""
    positive = np.asarray(labels) > 0.5
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(np.asarray(scores, np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def macro_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    per_class = [roc_auc(labels[:, c], scores[:, c]) for c in range(labels.shape[1])]
    valid = [a for a in per_class if not math.isnan(a)]
    return float(np.mean(valid)) if valid else float("nan")


def d_prime(auc: float) -> float:
    """d' = sqrt(2) * Phi^-1(AUC): the separation of two unit normals with that AUC."""
    if math.isnan(auc):
        return float("nan")
    return float(math.sqrt(2.0) * stats.norm.ppf(auc))


# --------------------------------------------------------------------------------------------
# The shared collecting combiner.


class _Collected:
    __slots__ = ("labels", "scores")

    def __init__(self):
        self.labels: list[np.ndarray] = []
        self.scores: list[np.ndarray] = []


class _CollectCombiner(beam.CombineFn):
    """Keeps (label row, score row) of each example with weight 1; refuses other weights."""

    def __init__(self, key: metric_types.MetricKey, eval_config, example_weighted: bool):
        self._key = key
        self._eval_config = eval_config
        self._example_weighted = example_weighted

    def create_accumulator(self) -> _Collected:
        return _Collected()

    def add_input(self, accumulator: _Collected, element) -> _Collected:
        for label, score, weight in metric_util.to_label_prediction_example_weight(
            element,
            eval_config=self._eval_config,
            model_name=self._key.model_name,
            output_name=self._key.output_name,
            example_weighted=self._example_weighted,
            flatten=False,
            squeeze=False,
            require_single_example_weight=True,
        ):
            weight = float(np.asarray(weight).reshape(-1)[0])
            if weight == 0.0:
                continue
            if weight != 1.0:
                raise ValueError(
                    f"output {self._key.output_name!r}: example weight {weight}; the eval "
                    "signatures give 1 to an output's own examples and 0 to the others"
                )
            accumulator.labels.append(np.asarray(label, np.float64).reshape(-1))
            accumulator.scores.append(np.asarray(score, np.float64).reshape(-1))
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[_Collected]) -> _Collected:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            result.labels.extend(accumulator.labels)
            result.scores.extend(accumulator.scores)
        return result

    def extract_output(self, accumulator: _Collected) -> dict:
        labels = np.stack(accumulator.labels) if accumulator.labels else np.zeros((0, 0))
        scores = np.stack(accumulator.scores) if accumulator.scores else np.zeros((0, 0))
        return {self._key: (labels, scores)}


def _derived(
    name: str,
    fn,
    *,
    eval_config=None,
    model_name: str = "",
    output_name: str = "",
    sub_key=None,
    aggregation_type=None,
    class_weights=None,
    example_weighted: bool = False,
):
    """[collect, derive]: `fn(labels, scores, **kwargs)` on the output's collected examples."""
    if sub_key is not None or aggregation_type is not None:
        raise ValueError(
            f"metric {name!r}: computed over all classes of the output; do not configure "
            "binarization or aggregation for it"
        )
    collected = metric_types.MetricKey(
        name=_COLLECTED,
        model_name=model_name,
        output_name=output_name,
        example_weighted=example_weighted,
    )
    key = metric_types.MetricKey(
        name=name,
        model_name=model_name,
        output_name=output_name,
        example_weighted=example_weighted,
    )

    def result(metrics: dict) -> dict:
        labels, scores = metrics[collected]
        return {key: fn(labels, scores)}

    return [
        metric_types.MetricComputation(
            keys=[collected],
            preprocessors=None,
            combiner=_CollectCombiner(collected, eval_config, example_weighted),
        ),
        metric_types.DerivedMetricComputation(keys=[key], result=result),
    ]


class _CollectedMetric(metric_types.Metric):
    """A metric computed by `_compute(labels, scores)` over an output's collected examples."""

    default_name = ""

    def __init__(self, name: str | None = None, **kwargs):
        name = name or self.default_name
        compute = self._compute

        # TFMA passes a creation function only the arguments its signature names.
        def create(
            name: str,
            eval_config=None,
            model_name: str = "",
            output_name: str = "",
            sub_key=None,
            aggregation_type=None,
            class_weights=None,
            example_weighted: bool = False,
        ):
            return _derived(
                name,
                compute,
                eval_config=eval_config,
                model_name=model_name,
                output_name=output_name,
                sub_key=sub_key,
                aggregation_type=aggregation_type,
                class_weights=class_weights,
                example_weighted=example_weighted,
            )

        super().__init__(metric_util.merge_per_key_computations(create), name=name, **kwargs)

    def _compute(self, labels, scores) -> float:  # overridden
        raise NotImplementedError


class TopKAccuracy(_CollectedMetric):
    """top-k accuracy; name defaults to `top<k>`."""

    def __init__(self, k: int = 1, name: str | None = None):
        self.k = int(k)
        super().__init__(name=name or f"top{self.k}")

    def _compute(self, labels, scores) -> float:
        if labels.shape[-1] and labels.shape[-1] < self.k:
            raise ValueError(f"top{self.k}: the output has only {labels.shape[-1]} classes")
        return top_k_accuracy(labels, scores, self.k)

    def get_config(self):
        return {"k": self.k, "name": self.name}


class MeanAveragePrecision(_CollectedMetric):
    default_name = "mAP"

    def _compute(self, labels, scores) -> float:
        if not len(labels):
            return float("nan")
        return trainer_metrics.mean_average_precision(labels, scores)


class MacroAUC(_CollectedMetric):
    default_name = "auc"

    def _compute(self, labels, scores) -> float:
        return macro_auc(labels, scores) if len(labels) else float("nan")


class DPrime(_CollectedMetric):
    default_name = "d_prime"

    def _compute(self, labels, scores) -> float:
        return d_prime(macro_auc(labels, scores)) if len(labels) else float("nan")


class NumExamples(_CollectedMetric):
    default_name = "num_examples"

    def _compute(self, labels, scores) -> float:
        return float(len(labels))


def metric_config_json(**kwargs) -> str:
    return json.dumps(kwargs)
