"""The model report: `write_report` (the component's work) and `summarize_report` (for the CLI).

<report dir>/index.html          metrics table, decision, thresholds, per-task pictures
<report dir>/<task>_curves.png   training curves (loss, metric, learning rate) per task
<report dir>/<task>_confusion.png
<report dir>/summary.json        the numbers behind the page (summarize_report reads it)

The report receives only what it shows (`ReportConfig`: the pipeline's name, each task's name,
modality, labels and threshold, and the evaluation gate), so that serving, Kubeflow or training
edits do not change the ModelReport's parameters.
"""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow as tf

from components.model_report import pretraining, render, results, tuning
from core.config import (
    Config,
    Evaluation,
    LabelType,
    Modality,
    TaskThresholds,
    labelled_tasks,
    narrowed,
)
from trainer.metrics import headline_metric_name

INDEX = "index.html"
SUMMARY = "summary.json"
BLESSED_FILE, NOT_BLESSED_FILE = "BLESSED", "NOT_BLESSED"


@dataclasses.dataclass
class ReportTask:
    """What the report shows of a task."""

    name: str = ""
    modality: Modality = "image"
    label_type: LabelType = "single"
    num_classes: int = 0
    eval: TaskThresholds = dataclasses.field(default_factory=TaskThresholds)


@dataclasses.dataclass
class ReportConfig:
    """ModelReport's slice of the config."""

    pipeline_name: str = "polyvit"
    tasks: list[ReportTask] = dataclasses.field(default_factory=list)
    evaluation: Evaluation = dataclasses.field(default_factory=Evaluation)


def report_config(config: Config) -> ReportConfig:
    # An unlabelled task is neither trained nor evaluated.
    tasks = [narrowed(ReportTask, t) for t in labelled_tasks(config.tasks)]
    return ReportConfig(
        pipeline_name=config.pipeline_name, tasks=tasks, evaluation=config.evaluation
    )


def blessing_decision(blessing_uri: str | None) -> bool | None:
    """True / False from the Evaluator's ModelBlessing folder; None without one."""
    if not blessing_uri:
        return None
    if tf.io.gfile.exists(os.path.join(blessing_uri, BLESSED_FILE)):
        return True
    if tf.io.gfile.exists(os.path.join(blessing_uri, NOT_BLESSED_FILE)):
        return False
    return None


def configured_thresholds(config: ReportConfig, has_baseline: bool) -> dict[str, dict[str, str]]:
    """{task: {metric: text}}: the evaluation gate (components/evaluation), as the report says."""
    result = {}
    for task in config.tasks:
        parts = []
        if task.eval.min_metric > 0:
            parts.append(f">= {task.eval.min_metric:g}")
        if has_baseline:
            parts.append(f"change >= -{config.evaluation.max_regression:g} vs. baseline")
        else:
            parts.append("(change threshold skipped: no blessed baseline yet)")
        result[task.name] = {
            headline_metric_name(task.label_type): "; ".join(parts),
            "num_examples": ">= 1",
        }
    return result


def _decision(blessed: bool | None, validation: dict) -> tuple[str, str]:
    ok = validation["ok"] if blessed is None else blessed
    failures = validation["failures"]
    if ok:
        reason = "Every threshold passed"
        if validation["rubber_stamp"]:
            reason += " (first model: no baseline, so only value thresholds applied)"
        return "BLESSED", reason + "."
    names = sorted({f"{f['task']}/{f['metric']} ({f['kind']})" for f in failures})
    return "NOT_BLESSED", "Failed: " + ", ".join(names) + "." if names else "Not blessed."


def _overall(metrics: dict, model: str, task: str) -> dict:
    return metrics.get(model, {}).get(results.OVERALL, {}).get(task, {})


def build_summary(
    config: ReportConfig,
    evaluation_uri: str,
    *,
    blessing_uri: str | None = None,
    model_roots: tuple[str, ...] = (),
) -> dict:
    metrics = results.load_metrics(evaluation_uri)
    validation = results.load_validation(evaluation_uri)
    has_baseline = results.BASELINE in metrics
    trainer = results.load_trainer_metrics(*model_roots) or {}
    thresholds = configured_thresholds(config, has_baseline)
    decision, reason = _decision(blessing_decision(blessing_uri), validation)
    tasks = []
    for task in config.tasks:
        trained = trainer.get("tasks", {}).get(task.name)
        tasks.append(
            {
                "name": task.name,
                "modality": task.modality,
                "label_type": task.label_type,
                "num_classes": task.num_classes,
                "headline": headline_metric_name(task.label_type),
                "metrics": _overall(metrics, results.CANDIDATE, task.name),
                "baseline": _overall(metrics, results.BASELINE, task.name),
                "diff": _overall(metrics, "diff", task.name),
                "trainer": {trained["metric"]: trained["value"]} if trained else {},
                "thresholds": thresholds[task.name],
            }
        )
    return {
        "title": f"{config.pipeline_name}: model report",
        "decision": decision,
        "decision_reason": reason,
        "failures": validation["failures"],
        "has_baseline": has_baseline,
        "evaluation": evaluation_uri,
        "tasks": tasks,
    }


def write_report(
    output_dir: str,
    config: ReportConfig,
    evaluation_uri: str,
    *,
    blessing_uri: str | None = None,
    model_roots: tuple[str, ...] = (),
    examples_uri: str | None = None,
    spans: list[int] | None = None,
    pretrained_model_uri: str | None = None,
    tuner_results_uri: str | None = None,
) -> dict:
    """Writes index.html, the PNGs and summary.json into `output_dir`; returns the summary.
    `spans`: the data spans the model was trained on (the Examples artifacts' `span`);
    `pretrained_model_uri`: the Pretrainer's model (VATT), whose retrieval and probe figures
    get a section and a picture; `tuner_results_uri`: the Tuner's trials, likewise."""
    tf.io.gfile.makedirs(output_dir)
    summary = build_summary(
        config, evaluation_uri, blessing_uri=blessing_uri, model_roots=model_roots
    )
    summary["trained_on"] = {
        "spans": sorted(spans or []),
        "warm_start": load_warm_start(*model_roots),
    }
    pretrained = pretraining.load_pretraining(pretrained_model_uri)
    if pretrained is not None:
        summary["pretraining"] = pretrained
        summary["pretraining_picture"] = pretraining.PICTURE
        pretraining.retrieval_png(pretrained, os.path.join(output_dir, pretraining.PICTURE))
    tuned = tuning.load_tuning(tuner_results_uri, *model_roots)
    if tuned is not None:
        summary["tuning"], summary["tuning_picture"] = tuned, tuning.PICTURE
        tuning.trials_png(tuned, os.path.join(output_dir, tuning.PICTURE))
    names = [t.name for t in config.tasks]
    vocabularies = results.load_vocabularies(examples_uri, names)
    matrices = results.load_confusion_matrices(
        evaluation_uri, {t.name: t.num_classes for t in config.tasks}
    )
    curves = results.load_training_curves(*model_roots)
    pictures: dict[str, dict[str, str]] = {}
    for task in summary["tasks"]:
        name, missing, files = task["name"], {}, {}
        if name in matrices:
            labels = vocabularies.get(name) or [str(i) for i in range(task["num_classes"])]
            files["confusion"] = f"{name}_confusion.png"
            render.confusion_png(
                matrices[name],
                labels,
                f"{name} (eval split)",
                os.path.join(output_dir, files["confusion"]),
            )
        else:
            missing["confusion"] = "TFMA wrote no confusion-matrix plot for this task"
        if curves.get(name):
            files["curves"] = f"{name}_curves.png"
            render.curves_png(
                curves[name], f"{name}: training", os.path.join(output_dir, files["curves"])
            )
        else:
            missing["curves"] = "no TensorBoard training events found for this task"
        task["pictures"], task["missing"] = files, missing
        pictures[name] = files
    with tf.io.gfile.GFile(os.path.join(output_dir, INDEX), "w") as f:
        f.write(render.page(summary, pictures))
    with tf.io.gfile.GFile(os.path.join(output_dir, SUMMARY), "w") as f:
        f.write(json.dumps(summary, indent=2, sort_keys=True, default=float))
    return summary


WARM_START_FILE = "warm_start.json"  # written by trainer/run_fn.py into the ModelRun


def load_warm_start(*roots: str) -> dict:
    """What the Trainer warm-started from ({} for a cold start or an older model)."""
    for root in roots:
        path = os.path.join(root, WARM_START_FILE)
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                return json.load(f)
    return {}


def describe_training_data(trained_on: dict) -> str:
    """One line: the spans trained on and what was warm-started from which model."""
    spans = trained_on.get("spans") or []
    text = f"Trained on span(s) {', '.join(map(str, spans))}" if spans else "Trained on span 0"
    warm = trained_on.get("warm_start") or {}
    if warm:
        text += (
            f"; warm-started from {warm.get('source')}: encoder and tokenizers, heads of "
            f"{', '.join(warm.get('carried_heads') or []) or 'no task'}"
        )
        if warm.get("fresh_heads"):
            text += f"; fresh heads for {', '.join(warm['fresh_heads'])} (labels changed)"
        if steps := render.describe_steps(warm):
            text += f"; fine-tuned for {steps}"
    else:
        text += "; trained from scratch (no blessed model to warm-start from)"
    return text


def describe_pretraining(pretrained: dict) -> str:
    """One line: the pretrained model's R@1 against chance per pair and the linear probe."""
    parts = [
        f"{title} R@1 {pretrained['retrieval'][pair]['R@1']:.3f} "
        f"(chance {pretrained['retrieval'][pair]['chance_R@1']:.3f})"
        for pair, title in pretraining.PAIRS
    ]
    probe = pretrained.get("linear_probe") or {}
    if probe:
        parts.append(f"linear probe top-1 {probe['task_top1']:.3f} (chance {probe['chance']:.3f})")
    return "Pretrained model: " + "; ".join(parts)


def _format(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def summarize_report(report_dir: str) -> str:
    """What `polyvit run` prints at the end: the report's path, decision and per-task numbers."""
    path = os.path.join(report_dir, SUMMARY)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{report_dir}: no {SUMMARY}; is it a ModelReport artifact?")
    with tf.io.gfile.GFile(path) as f:
        summary = json.load(f)
    lines = [
        f"Model report: {os.path.join(report_dir, INDEX)}",
        f"Decision: {summary['decision']}. {summary['decision_reason']}",
    ]
    if "trained_on" in summary:
        lines.append(describe_training_data(summary["trained_on"]))
    if summary.get("pretraining"):
        lines.append(describe_pretraining(summary["pretraining"]))
    if summary.get("tuning"):
        lines.append(tuning.describe(summary["tuning"]))
    for task in summary["tasks"]:
        headline = task["headline"]
        text = f"  {task['name']:<16} {headline} {_format(task['metrics'].get(headline))}"
        if task["baseline"]:
            text += f" (baseline {_format(task['baseline'].get(headline))})"
        others = [
            f"{m} {_format(v)}"
            for m, v in task["metrics"].items()
            if m not in (headline, "num_examples")
        ]
        if others:
            text += "; " + ", ".join(others)
        count = task["metrics"].get("num_examples")
        if count is not None:
            text += f"; {int(count)} examples"
        lines.append(text)
    return "\n".join(lines)


def latest_report_dir(pipeline_root: str, component_id: str = "ModelReport") -> str | None:
    """The newest ModelReport output under a local pipeline root (TFX's layout
    <root>/<component>/<output>/<execution id>/), or None when there is none yet."""
    base = os.path.join(pipeline_root, component_id, "report")
    if not tf.io.gfile.isdir(base):
        return None
    runs = [d.rstrip("/") for d in tf.io.gfile.listdir(base) if d.rstrip("/").isdigit()]
    for run in sorted(runs, key=int, reverse=True):
        folder = os.path.join(base, run)
        if tf.io.gfile.exists(os.path.join(folder, SUMMARY)):
            return folder
    return None
