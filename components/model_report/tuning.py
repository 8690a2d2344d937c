"""The Tuner's part of the report: every trial with its values, objective and per-task
scores (the Tuner's `trials.json`, components/tuner/executor.py), the values the Trainer
applied (`hyperparameters.json` in its ModelRun, trainer/run_fn.py), one picture of the
objective per trial with the best marked, and the HTML section.
"""

from __future__ import annotations

import html
import json
import os

import tensorflow as tf

TRIALS_FILE = "trials.json"  # components/tuner/executor.TRIALS_FILE (no sideways import)
APPLIED_FILE = "hyperparameters.json"  # trainer/run_fn.HYPERPARAMETERS_FILE
PICTURE = "tuning_trials.png"


def load_tuning(tuner_results_uri: str | None, *model_roots: str) -> dict | None:
    """{"trials": [...], "best": the best trial, "applied": {key: {from, to}}}, or None without
    a Tuner. A TunerResults folder without trials.json is an error naming it."""
    if not tuner_results_uri:
        return None
    path = os.path.join(tuner_results_uri, TRIALS_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{tuner_results_uri}: no {TRIALS_FILE}; is it the Tuner's output?")
    with tf.io.gfile.GFile(path) as f:
        trials = json.load(f)
    if not isinstance(trials, list) or any("objective" not in t for t in trials):
        raise ValueError(f"{path}: expected a list of trials with 'objective'")
    best = next((t for t in trials if t.get("best")), None)
    applied: dict = {}
    for root in model_roots:
        applied_path = os.path.join(root, APPLIED_FILE)
        if tf.io.gfile.exists(applied_path):
            with tf.io.gfile.GFile(applied_path) as f:
                applied = json.load(f)
            break
    return {"source": tuner_results_uri, "trials": trials, "best": best, "applied": applied}


def trials_png(tuning: dict, path: str) -> None:
    """The objective of each trial in the order they ran (bars), each task's score (dots),
    the best trial's bar outlined and labelled."""
    from components.model_report.render import plt, save_figure

    trials = tuning["trials"]
    tasks = sorted({name for t in trials for name in t.get("scores", {})})
    figure, axis = plt.subplots(figsize=(max(4.0, 0.8 * len(trials) + 2.5), 3.4))
    x = list(range(len(trials)))
    objectives = [t["objective"] if t["objective"] is not None else 0.0 for t in trials]
    colours = ["#2b7bba" if t.get("best") else "#9ecae1" for t in trials]
    bars = axis.bar(x, objectives, 0.6, color=colours, label="objective (mean over tasks)")
    for k, trial in enumerate(trials):
        if trial.get("best"):
            bars[k].set_edgecolor("black")
            bars[k].set_linewidth(1.5)
            axis.annotate("best", (k, objectives[k]), ha="center", va="bottom", fontsize=8)
    for name, marker in zip(tasks, "o^sDvP*X" * 4, strict=False):
        values = [t.get("scores", {}).get(name) for t in trials]
        points = [(k, v) for k, v in enumerate(values) if v is not None]
        if points:
            axis.scatter(*zip(*points, strict=True), marker=marker, s=22, zorder=3, label=name)
    axis.set_xticks(x, [str(t["trial_id"]) for t in trials])
    axis.set_xlabel("trial")
    axis.set_ylabel("eval score")
    axis.set_ylim(0, 1.05)
    axis.grid(alpha=0.3, axis="y")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axis.set_title("Tuner: objective per trial")
    save_figure(figure, path)


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _score(value) -> str:
    return "–" if value is None else f"{float(value):.4f}"


def section(tuning: dict, picture: str | None) -> str:
    """The report page's 'Hyperparameter search' section: trials table, applied values."""
    trials = tuning["trials"]
    keys = sorted({k for t in trials for k in t.get("values", {})})
    tasks = sorted({name for t in trials for name in t.get("scores", {})})
    header = ["trial", "status", *keys, "objective", *tasks]
    rows = []
    for t in trials:
        cells = [
            html.escape(str(t["trial_id"])) + (" (best)" if t.get("best") else ""),
            html.escape(str(t.get("status", ""))),
            *[_value(t.get("values", {}).get(k, "")) for k in keys],
            _score(t["objective"]),
            *[_score(t.get("scores", {}).get(name)) for name in tasks],
        ]
        css = " class='best'" if t.get("best") else ""
        rows.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    parts = [
        "<section class='tuning' id='tuning'>",
        "<h2>Hyperparameter search (Tuner)</h2>",
        f"<p>{len(trials)} trial(s); objective: the mean over tasks of each task's headline "
        "eval metric after a short run of the training loop.</p>",
        f"<table class='trials'><thead><tr>{head}</tr></thead><tbody>",
        *rows,
        "</tbody></table>",
        f"<p id='tuning-applied'>{html.escape(describe_applied(tuning))}</p>",
    ]
    if picture:
        parts.append(f"<img src='{html.escape(picture)}' alt='tuner trials'>")
    parts.append("</section>")
    return "\n".join(parts)


def describe_applied(tuning: dict) -> str:
    applied = tuning.get("applied") or {}
    if not applied:
        return "The Trainer applied no tuned values."
    values = ", ".join(f"{k} {v['from']:g} -> {v['to']:g}" for k, v in sorted(applied.items()))
    return f"The Trainer applied: {values}."


def describe(tuning: dict) -> str:
    """One line for `polyvit run`: trials, the best objective, what the Trainer applied."""
    best = tuning.get("best") or {}
    objective = best.get("objective")
    text = f"Tuner: {len(tuning['trials'])} trial(s)"
    if objective is not None:
        text += f", best trial {best['trial_id']} objective {objective:.4f}"
    return text + ". " + describe_applied(tuning)
