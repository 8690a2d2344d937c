"""Pictures (matplotlib, Agg: no display) and the self-contained HTML page of the report.

PNG files sit beside index.html and are referenced by relative paths, so the folder opens in a
browser from disk (or from a copied bucket folder) with no server.
"""

from __future__ import annotations

import html
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def save_figure(figure, path: str) -> None:
    with tf.io.gfile.GFile(path, "wb") as f:
        figure.savefig(f, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)


def confusion_png(matrix: np.ndarray, labels: list[str], title: str, path: str) -> None:
    size = matrix.shape[0]
    side = min(2.0 + 0.45 * size, 14.0)
    figure, axes = plt.subplots(figsize=(side, side))
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = range(size)
    axes.set_xticks(ticks, labels, rotation=90, fontsize=8)
    axes.set_yticks(ticks, labels, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("labelled")
    axes.set_title(title)
    if size <= 20:  # numbers stay readable up to about this size
        peak = matrix.max() or 1.0
        for i in range(size):
            for j in range(size):
                if matrix[i, j]:
                    colour = "white" if matrix[i, j] > 0.6 * peak else "black"
                    axes.text(
                        j,
                        i,
                        f"{matrix[i, j]:g}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color=colour,
                    )
    save_figure(figure, path)


def curves_png(scalars: dict[str, list[tuple[int, float]]], title: str, path: str) -> None:
    names = sorted(scalars)
    figure, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        steps, values = zip(*scalars[name], strict=True)
        axis.plot(steps, values, marker="." if len(steps) < 30 else None)
        axis.set_title(name)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
    figure.suptitle(title, y=1.04)
    save_figure(figure, path)


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return f"{int(value)}"
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def _table(header: list[str], rows: list[list], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.blessed { color: #176317; } .not-blessed { color: #a31515; }
.fail { background: #fde2e2; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.3em 0; }
section.task { border-top: 2px solid #ddd; margin-top: 2em; }
"""


def describe_steps(warm: dict) -> str:
    """A warm-started run's training steps, per task ("" for older reports without them):
    `300 steps (digits 225, dtmf 75)`."""
    if "steps" not in warm:
        return ""
    per_task = ", ".join(f"{t} {n}" for t, n in sorted((warm.get("steps_per_task") or {}).items()))
    return f"{warm['steps']} steps" + (f" ({per_task})" if per_task else "")


def training_section(trained_on: dict) -> str:
    """The data spans the model was trained on and what it was warm-started from."""
    spans = ", ".join(map(str, trained_on.get("spans") or [])) or "0 (no spans)"
    warm = trained_on.get("warm_start") or {}
    rows = [["spans", html.escape(spans)]]
    if warm:
        carried = ", ".join(warm.get("carried_heads") or []) or "none"
        fresh = ", ".join(warm.get("fresh_heads") or []) or "none"
        rows += [
            ["warm-started from", html.escape(str(warm.get("source")))],
            ["carried over", f"encoder, tokenizers; heads of {html.escape(carried)}"],
            ["fresh heads (labels changed)", html.escape(fresh)],
            ["variables loaded", str(warm.get("variables_loaded", "n/a"))],
        ]
        if steps := describe_steps(warm):
            rows.append(["trained (fine-tune)", html.escape(steps)])
    else:
        rows.append(["warm start", "none: trained from scratch (no blessed model)"])
    return "<h3 id='training-data'>Training data and warm start</h3>" + _table(
        ["", ""], rows, "training"
    )


def page(summary: dict, pictures: dict[str, dict[str, str]]) -> str:
    """The whole index.html from the report summary and {task: {kind: relative png path}}."""
    decision = summary["decision"]
    css = "blessed" if decision == "BLESSED" else "not-blessed"
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(summary['title'])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(summary['title'])}</h1>",
        f"<h2 id='decision' class='{css}'>Decision: {html.escape(decision)}</h2>",
        f"<p>{html.escape(summary['decision_reason'])}</p>",
    ]
    if summary["failures"]:
        parts.append("<h3>Failed thresholds</h3>")
        parts.append(
            _table(
                ["task", "metric", "kind", "threshold", "value", "slice"],
                [
                    [
                        html.escape(f["task"]),
                        html.escape(f["metric"]),
                        f["kind"],
                        html.escape(f["threshold"]),
                        _number(f["value"]),
                        html.escape(f["slice"]),
                    ]
                    for f in summary["failures"]
                ],
                "failures",
            )
        )
    if "trained_on" in summary:
        parts.append(training_section(summary["trained_on"]))
    parts.append("<h3>Per-task metrics (overall slice)</h3>")
    rows = []
    for task in summary["tasks"]:
        for metric, value in task["metrics"].items():
            failed = any(
                f["task"] == task["name"] and f["metric"] == metric for f in summary["failures"]
            )
            rows.append(
                [
                    html.escape(task["name"]),
                    html.escape(metric) + (" (headline)" if metric == task["headline"] else ""),
                    _number(value),
                    _number(task["baseline"].get(metric)),
                    _number(task["diff"].get(metric)),
                    _number(task["trainer"].get(metric)),
                    html.escape(task["thresholds"].get(metric, "")),
                    "FAILED" if failed else "",
                ]
            )
    parts.append(
        _table(
            ["task", "metric", "candidate", "baseline", "change", "trainer eval", "thresholds", ""],
            rows,
            "metrics",
        )
    )
    if summary.get("pretraining"):
        from components.model_report import pretraining

        picture = summary.get("pretraining_picture")
        parts.append(pretraining.section(summary["pretraining"], picture))
    if summary.get("tuning"):
        from components.model_report import tuning

        parts.append(tuning.section(summary["tuning"], summary.get("tuning_picture")))
    for task in summary["tasks"]:
        name = task["name"]
        parts.append(f"<section class='task' id='task-{html.escape(name)}'>")
        parts.append(
            f"<h2>{html.escape(name)} ({task['modality']}, {task['label_type']}-label, "
            f"{task['num_classes']} classes)</h2>"
        )
        for kind, title in (("curves", "Training curves"), ("confusion", "Confusion matrix")):
            path = pictures.get(name, {}).get(kind)
            if path:
                parts.append(
                    f"<h3>{title}</h3><img src='{html.escape(path)}' "
                    f"alt='{html.escape(name)} {kind}'>"
                )
            else:
                why = html.escape(task["missing"].get(kind, ""))
                parts.append(f"<h3>{title}</h3><p>not available: {why}</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
