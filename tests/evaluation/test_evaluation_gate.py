"""The evaluation gate through TFX's real Evaluator executor on a tiny exported model and mixed
records: per-task metrics agree with scikit-learn on the same predictions, value thresholds
decide the first run (change thresholds are skipped without a baseline), a failing value or
change threshold gives NOT_BLESSED naming the task."""

from __future__ import annotations

import math

import evaluation_records as records
import evaluation_runs as runs
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from sklearn import metrics as skm

from components.evaluation import config as evaluation
from components.evaluation import metrics as eval_metrics
from components.model_report import results

pytestmark = pytest.mark.e2e


def reference_metrics(serving_dir: str, written: dict) -> dict:
    """{task: {metric: value}} computed outside TFMA from the model's own signatures."""
    loaded = tf.saved_model.load(serving_dir)
    serialized = [r for task in records.VOCABULARIES for r in written["eval"][task]]
    scores = loaded.signatures["tfma_eval"](examples=tf.constant(serialized))
    labels = loaded.signatures["tfma_labels"](examples=tf.constant(serialized))
    expected = {}
    for task in records.tiny_config().tasks:
        mine = labels[f"weight_{task.name}"].numpy() == 1.0
        y = labels[f"label_{task.name}"].numpy()[mine]
        p = scores[task.name].numpy()[mine]
        if task.label_type == "single":
            truth = y.argmax(-1)
            values = {"top1": float(np.mean(p.argmax(-1) == truth))}
            if task.num_classes > 5:
                values["top5"] = skm.top_k_accuracy_score(
                    truth, p, k=5, labels=range(task.num_classes)
                )
        else:
            has_pos = y.sum(0) > 0
            values = {"mAP": skm.average_precision_score(y[:, has_pos], p[:, has_pos])}
            both = has_pos & (y.sum(0) < len(y))
            auc = skm.roc_auc_score(y[:, both], p[:, both], average="macro")
            values.update(auc=auc, d_prime=math.sqrt(2) * stats.norm.ppf(auc))
        values["num_examples"] = float(mine.sum())
        expected[task.name] = values
    return expected


def test_eval_config_per_task_metrics_thresholds_and_slices():
    config = records.tiny_config(
        **{"tasks.motion.eval.min_metric": 0.6, "evaluation.max_regression": 0.03}
    )
    eval_config = evaluation.make_eval_config(config)
    (spec,) = eval_config.model_specs
    assert spec.signature_name == "tfma_eval"
    assert list(spec.preprocessing_function_names) == ["tfma_labels"]
    assert dict(spec.label_keys) == {t: f"label_{t}" for t in records.VOCABULARIES}
    assert dict(spec.example_weight_keys) == {t: f"weight_{t}" for t in records.VOCABULARIES}
    assert [list(s.feature_keys) for s in eval_config.slicing_specs] == [[], ["task/name"]]
    by_task = {s.output_names[0]: s for s in eval_config.metrics_specs}
    names = {t: [m.config for m in s.metrics if m.module] for t, s in by_task.items()}
    assert [n for n in names["digits"] if "top5" in n] and not [
        n for n in names["motion"] if "top5" in n
    ]  # top-5 only where there are more than 5 classes
    assert sorted(evaluation.task_metric_names(config.task("tone_mix"))) == sorted(
        ["mAP", "auc", "d_prime", "num_examples"]
    )
    motion_top1 = next(m for m in by_task["motion"].metrics if '"top1"' in m.config)
    (per_slice,) = motion_top1.per_slice_thresholds
    assert [list(s.feature_keys) for s in per_slice.slicing_specs] == [[]]  # overall only
    assert per_slice.threshold.value_threshold.lower_bound.value == pytest.approx(0.6)
    assert per_slice.threshold.change_threshold.absolute.value == pytest.approx(-0.03)
    with pytest.raises(ValueError, match="tasks.dtmf.eval.min_metric"):
        evaluation.make_eval_config(records.tiny_config(**{"tasks.dtmf.eval.min_metric": 2.0}))


def test_first_run_metrics_agree_with_sklearn_and_change_thresholds_are_skipped(
    examples, models, first_evaluation
):
    evaluation_uri, _, blessed = first_evaluation
    config = records.tiny_config()
    assert (
        evaluation.make_eval_config(config)
        .metrics_specs[0]
        .metrics[0]
        .per_slice_thresholds[0]
        .threshold.HasField("change_threshold")
    )  # configured, and ignored without a baseline
    assert blessed
    validation = results.load_validation(evaluation_uri)
    assert validation["ok"] and not validation["failures"]
    measured = results.load_metrics(evaluation_uri)
    assert set(measured) == {"candidate"}  # no baseline on the first run
    expected = reference_metrics(models["a"][1], examples[1])
    for task, values in expected.items():
        got = measured["candidate"]["overall"][task]
        assert set(got) == set(values), task
        for name, value in values.items():
            assert got[name] == pytest.approx(value, abs=1e-9), (task, name)
        # The task's slice holds the same numbers; other tasks' slices count none of its records.
        assert measured["candidate"][f"task/name={task}"][task] == pytest.approx(got)
        other = next(t for t in records.VOCABULARIES if t != task)
        assert measured["candidate"][f"task/name={other}"][task]["num_examples"] == 0


def test_a_failing_value_threshold_is_not_blessed_and_names_the_task(
    examples, models, first_evaluation, eval_workdir
):
    first = results.load_metrics(first_evaluation[0])["candidate"]["overall"]
    bar = min(1.0, first["motion"]["top1"] + 0.05)
    config = records.tiny_config(**{"tasks.motion.eval.min_metric": bar})
    evaluation_uri, _, blessed = runs.run_evaluator(
        config, examples[0], models["a"][0], str(eval_workdir / "failing")
    )
    assert not blessed
    failures = results.load_validation(evaluation_uri)["failures"]
    assert [(f["task"], f["metric"], f["kind"], f["slice"]) for f in failures] == [
        ("motion", "top1", "value", "overall")
    ]


def test_change_thresholds_against_the_baseline_decide(examples, models, eval_workdir):
    config = records.tiny_config(**{"evaluation.max_regression": 0.0})
    evaluation_uri, _, blessed = runs.run_evaluator(
        config, examples[0], models["b"][0], str(eval_workdir / "vs_a"), baseline_uri=models["a"][0]
    )
    measured = results.load_metrics(evaluation_uri)
    headline = {t.name: evaluation.headline_metric(t) for t in config.tasks}
    worse = sorted(
        task
        for task, metric in headline.items()
        if measured["candidate"]["overall"][task][metric]
        < measured["baseline"]["overall"][task][metric]
    )
    assert worse, "precondition: model b should be worse than model a on some task"
    assert not blessed
    failures = results.load_validation(evaluation_uri)["failures"]
    assert sorted(f["task"] for f in failures) == worse
    assert {f["kind"] for f in failures} == {"change"}
    for f in failures:
        overall = measured["diff"]["overall"][f["task"]][headline[f["task"]]]
        assert f["value"] == pytest.approx(overall) and overall < 0


def test_numpy_metrics_on_known_cases():
    labels = np.eye(3)[[0, 1, 2, 2]]
    scores = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3]])
    assert eval_metrics.top_k_accuracy(labels, scores, 1) == 0.5
    assert eval_metrics.top_k_accuracy(labels, scores, 2) == 1.0
    assert eval_metrics.roc_auc([1, 0, 1, 0], [0.9, 0.1, 0.5, 0.5]) == pytest.approx(0.875)
    assert math.isnan(eval_metrics.roc_auc([1, 1], [0.2, 0.3]))
    assert eval_metrics.d_prime(0.5) == pytest.approx(0.0)
    assert eval_metrics.d_prime(stats.norm.cdf(1.0)) == pytest.approx(math.sqrt(2))
