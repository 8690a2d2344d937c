"""The pretrained (VATT) model's part of the report: zero-shot retrieval and the linear probe
from the Pretrainer's `retrieval.json` (trainer/vatt/run_fn.py), one bar chart of R@K against
chance per retrieval pair, and the HTML section.

The Pretrainer writes into its serving_model_dir, `<model uri>/Format-Serving/`, as TFX's
Trainer does; a folder holding retrieval.json directly is read too.
"""

from __future__ import annotations

import html
import json
import os

import tensorflow as tf

RETRIEVAL_FILE = "retrieval.json"  # trainer/vatt/run_fn.RETRIEVAL_FILE (no upward import)
PICTURE = "pretraining_retrieval.png"
PAIRS = (("video_to_audio", "video -> audio"), ("video_to_text", "video -> text"))
KS = (1, 5, 10)


def _retrieval_path(model_uri: str) -> str | None:
    for folder in (os.path.join(model_uri, "Format-Serving"), model_uri):
        path = os.path.join(folder, RETRIEVAL_FILE)
        if tf.io.gfile.exists(path):
            return path
    return None


def load_pretraining(model_uri: str | None) -> dict | None:
    """{"steps", "retrieval": {pair: {R@k, median_rank, chance_R@k, queries}}, "linear_probe"}
    from the Pretrainer's model, or None without one. A retrieval.json that lacks a pair's
    figures is an error naming the file."""
    if not model_uri:
        return None
    path = _retrieval_path(model_uri)
    if path is None:
        raise FileNotFoundError(f"{model_uri}: no {RETRIEVAL_FILE}; is it the Pretrainer's model?")
    with tf.io.gfile.GFile(path) as f:
        raw = json.load(f)
    retrieval = {}
    for pair, _ in PAIRS:
        figures = raw.get(pair)
        needed = [f"R@{k}" for k in KS] + ["median_rank", "queries"]
        if not isinstance(figures, dict) or any(k not in figures for k in needed):
            raise ValueError(f"{path}: '{pair}' needs {', '.join(needed)}")
        n = float(figures["queries"])
        retrieval[pair] = {
            **{k: float(figures[k]) for k in needed},
            # Chance R@k is k / n (capped at 1), as trainer/vatt/retrieval.py counts it.
            **{f"chance_R@{k}": min(1.0, k / n) for k in KS},
        }
    return {
        "source": model_uri,
        "steps": raw.get("steps"),
        "retrieval": retrieval,
        "linear_probe": raw.get("linear_probe") or {},
    }


def retrieval_png(pretraining: dict, path: str) -> None:
    """Bars of R@1/5/10 per pair with chance marked beside each."""
    from components.model_report.render import plt, save_figure

    figure, axes = plt.subplots(1, len(PAIRS), figsize=(4.2 * len(PAIRS), 3.2), squeeze=False)
    for axis, (pair, title) in zip(axes[0], PAIRS, strict=True):
        figures = pretraining["retrieval"][pair]
        x = list(range(len(KS)))
        axis.bar([i - 0.2 for i in x], [figures[f"R@{k}"] for k in KS], 0.4, label="model")
        axis.bar(
            [i + 0.2 for i in x],
            [figures[f"chance_R@{k}"] for k in KS],
            0.4,
            label="chance",
            color="#bbbbbb",
        )
        axis.set_xticks(x, [f"R@{k}" for k in KS])
        axis.set_ylim(0, 1)
        axis.set_title(f"{title} ({int(figures['queries'])} queries)")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3, axis="y")
    figure.suptitle("Zero-shot retrieval, eval split", y=1.04)
    save_figure(figure, path)


def section(pretraining: dict, picture: str | None) -> str:
    """The report page's 'Pretrained model' section."""
    rows = []
    for pair, title in PAIRS:
        f = pretraining["retrieval"][pair]
        cells = [f"{f[f'R@{k}']:.3f} ({f[f'chance_R@{k}']:.3f})" for k in KS]
        rows.append(
            f"<tr><td>{title}</td>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + f"<td>{f['median_rank']:g}</td><td>{int(f['queries'])}</td></tr>"
        )
    parts = [
        "<section class='pretraining' id='pretraining'>",
        "<h2>Pretrained model (VATT)</h2>",
        f"<p>{html.escape(str(pretraining.get('steps')))} pretraining steps; zero-shot "
        "retrieval on the eval split (chance in brackets).</p>",
        "<table class='retrieval'><thead><tr><th>pair</th><th>R@1</th><th>R@5</th>"
        "<th>R@10</th><th>median rank</th><th>queries</th></tr></thead><tbody>",
        *rows,
        "</tbody></table>",
    ]
    probe = pretraining.get("linear_probe") or {}
    if probe:
        parts.append(
            f"<p id='linear-probe'>Linear probe on frozen video features: top-1 "
            f"{float(probe['task_top1']):.3f} (chance {float(probe['chance']):.3f}).</p>"
        )
    else:
        parts.append("<p id='linear-probe'>No linear probe (pretraining.probe_task unset).</p>")
    if picture:
        parts.append(f"<img src='{html.escape(picture)}' alt='pretraining retrieval'>")
    parts.append("</section>")
    return "\n".join(parts)
