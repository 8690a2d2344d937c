"""ModelReport on a real (tiny) run: a few co-training steps with the trainer's loop, the model
exported with the eval signatures, the Evaluator against a baseline, then the ModelReport
component's executor. The HTML is parsed: every task's numbers and pictures must be there, the
PNGs must decode, and TFMA's headline numbers must equal the trainer's own evaluation."""

from __future__ import annotations

import html.parser
import os

import evaluation_records as records
import evaluation_runs as runs
import pytest
import tensorflow as tf
from tfx.types import standard_artifacts

from components.evaluation import config as evaluation
from components.model_report import component, report
from core import config as config_lib
from core import features as keys
from trainer import eval_signatures
from trainer.train_loop import train

pytestmark = pytest.mark.e2e

TRAIN_OVERRIDES = {
    "training.steps": 8,
    "training.log_every": 2,
    "training.warmup_steps": 2,
    "training.checkpoint_every": 8,
}


class Page(html.parser.HTMLParser):
    """Collects images, the text of each task section and of the whole page."""

    def __init__(self):
        super().__init__()
        self.images: dict[str, list[str]] = {}
        self.section_text: dict[str, list[str]] = {}
        self.text: list[str] = []
        self._section = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs["id"].removeprefix("task-")
            self.images[self._section], self.section_text[self._section] = [], []
        if tag == "img" and self._section:
            self.images[self._section].append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None

    def handle_data(self, data):
        self.text.append(data)
        if self._section:
            self.section_text[self._section].append(data)


@pytest.fixture(scope="module")
def trained_run(examples, models, eval_workdir):
    """(config, model_run uri, model uri, evaluation uri, blessing uri) of a trained candidate
    evaluated against model a as the baseline."""
    config = records.tiny_config(**TRAIN_OVERRIDES)
    examples_uri = examples[0]
    model_run = str(eval_workdir / "trained_run")
    patterns = {
        split: {t: keys.task_file_pattern(examples_uri, split, t) for t in records.VOCABULARIES}
        for split in keys.SPLITS
    }
    trainer_config = config_lib.trainer_config(config)
    result = train(
        trainer_config,
        model_run,
        patterns["train"],
        patterns["eval"],
        audio_mean=3.0,
        audio_std=2.0,
    )
    model_uri = str(eval_workdir / "trained_model")
    module = tf.Module()
    module.model_variables = list(result.model.variables)
    tf.saved_model.save(
        module,
        os.path.join(model_uri, runs.SERVING_FORMAT),
        signatures=eval_signatures.extra_signatures(
            result.model, trainer_config, records.VOCABULARIES, 3.0, 2.0
        ),
    )
    evaluation_uri, blessing_uri, _ = runs.run_evaluator(
        config, examples_uri, model_uri, str(eval_workdir / "trained_eval"), models["a"][0]
    )
    return config, model_run, model_uri, evaluation_uri, blessing_uri


def run_report_component(config, run, examples_uri, output_uri) -> str:
    _, model_run, model_uri, evaluation_uri, blessing_uri = run

    def artifact(cls, uri):
        item = cls()
        item.uri = uri
        return item

    output = artifact(component.ModelReportArtifact, output_uri)
    component.ModelReport.EXECUTOR_SPEC.executor_class().Do(
        {
            "evaluation": [artifact(standard_artifacts.ModelEvaluation, evaluation_uri)],
            "blessing": [artifact(standard_artifacts.ModelBlessing, blessing_uri)],
            "model": [artifact(standard_artifacts.Model, model_uri)],
            "model_run": [artifact(standard_artifacts.ModelRun, model_run)],
            "examples": [runs.examples_artifact(examples_uri)],
        },
        {"report": [output]},
        {"config_json": component.report_config_json(config)},
    )
    assert output.get_string_custom_property("decision") in ("BLESSED", "NOT_BLESSED")
    return output_uri


def test_report_shows_every_task_with_pictures_baseline_and_decision(
    trained_run, examples, eval_workdir
):
    config = trained_run[0]
    report_dir = run_report_component(
        config, trained_run, examples[0], str(eval_workdir / "report")
    )
    page = Page()
    with open(os.path.join(report_dir, report.INDEX)) as f:
        page.feed(f.read())
    summary = report.build_summary(
        report.report_config(config),
        trained_run[3],
        blessing_uri=trained_run[4],
        model_roots=trained_run[1:3],
    )
    assert sorted(page.images) == sorted(records.VOCABULARIES)
    for task in config.tasks:
        images = page.images[task.name]
        assert images == [f"{task.name}_curves.png", f"{task.name}_confusion.png"], task.name
        for image in images:
            decoded = tf.io.decode_png(tf.io.read_file(os.path.join(report_dir, image)))
            assert decoded.shape[0] > 50 and decoded.shape[1] > 50
        row = next(t for t in summary["tasks"] if t["name"] == task.name)
        headline = evaluation.headline_metric(task)
        # Candidate, baseline and trainer numbers are all in the page's metrics table.
        assert set(row["metrics"]) == set(evaluation.task_metric_names(task))
        assert row["baseline"] and row["trainer"]
        text = " ".join(page.text)
        assert f"{row['metrics'][headline]:.4f}" in text
        assert f"{row['baseline'][headline]:.4f}" in text
        # TFMA's headline metric on the eval split is the trainer's own evaluation.
        assert row["metrics"][headline] == pytest.approx(row["trainer"][headline], abs=1e-6)
    text = " ".join(page.text)
    assert f"Decision: {summary['decision']}" in text
    for failure in summary["failures"]:
        assert failure["task"] in text and failure["threshold"] in text


def test_report_names_the_failed_task_and_threshold_and_the_summary_prints_it(
    trained_run, examples, eval_workdir
):
    config, model_run, model_uri, _, _ = trained_run
    strict = records.tiny_config(**TRAIN_OVERRIDES, **{"tasks.dtmf.eval.min_metric": 1.0})
    evaluation_uri, blessing_uri, blessed = runs.run_evaluator(
        strict, examples[0], model_uri, str(eval_workdir / "strict_eval")
    )
    scores = report.build_summary(report.report_config(strict), evaluation_uri)["tasks"]
    # The eval records give one dtmf input two labels (records.AMBIGUOUS_EVAL_TASKS): no model
    # reaches 1.0 there, so the threshold fails whatever the few training steps learnt.
    assert next(t for t in scores if t["name"] == "dtmf")["metrics"]["top1"] < 1.0
    assert not blessed
    report_dir = run_report_component(
        strict,
        (strict, model_run, model_uri, evaluation_uri, blessing_uri),
        examples[0],
        str(eval_workdir / "strict_report"),
    )
    page = Page()
    with open(os.path.join(report_dir, report.INDEX)) as f:
        page.feed(f.read())
    text = " ".join(page.text)
    assert "Decision: NOT_BLESSED" in text
    assert "dtmf/top1 (value)" in text and ">= 1" in text
    printed = report.summarize_report(report_dir)
    assert printed.splitlines()[0] == f"Model report: {os.path.join(report_dir, report.INDEX)}"
    assert "NOT_BLESSED" in printed
    for task in config.tasks:
        assert any(line.strip().startswith(task.name) for line in printed.splitlines())


def test_latest_report_dir_finds_the_newest_execution(tmp_path):
    for run in ("3", "12"):
        os.makedirs(tmp_path / "ModelReport" / "report" / run)
        (tmp_path / "ModelReport" / "report" / run / report.SUMMARY).write_text("{}")
    os.makedirs(tmp_path / "ModelReport" / "report" / "20")  # an unfinished execution
    assert report.latest_report_dir(str(tmp_path)) == str(tmp_path / "ModelReport/report/12")
    assert report.latest_report_dir(str(tmp_path / "nothing")) is None


def test_the_report_names_the_spans_and_the_warm_start(tmp_path):
    import json

    from components.model_report import report as report_lib

    run_dir = tmp_path / "model_run"
    run_dir.mkdir()
    assert report_lib.load_warm_start(str(run_dir)) == {}
    cold = report_lib.describe_training_data({"spans": [], "warm_start": {}})
    assert cold == "Trained on span 0; trained from scratch (no blessed model to warm-start from)"
    warm = {"source": "/m/7/Format-Serving", "carried_heads": ["digits"], "fresh_heads": ["dtmf"]}
    (run_dir / report_lib.WARM_START_FILE).write_text(json.dumps(warm))
    loaded = report_lib.load_warm_start(str(tmp_path / "missing"), str(run_dir))
    assert report_lib.describe_training_data({"spans": [3, 2], "warm_start": loaded}) == (
        "Trained on span(s) 3, 2; warm-started from /m/7/Format-Serving: encoder and "
        "tokenizers, heads of digits; fresh heads for dtmf (labels changed)"
    )
