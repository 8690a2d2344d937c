"""`polyvit run` with tuning on, end to end under LocalDagRunner on tiny real media: the Tuner
runs its trials before the Trainer, the Trainer applies the best hyperparameters, and the
model report lists every trial with its per-task scores and a picture.

One pipeline run for the module (the tests below read its outputs)."""

from __future__ import annotations

import contextlib
import io
import json
import os

import pytest
import yaml

from components.model_report import report as report_lib
from components.model_report import tuning as report_tuning
from pipeline import cli, local_runner
from tests.pipeline.pipeline_corpus import corpus_config_dict, write_corpus

pytestmark = pytest.mark.e2e

TASKS = ("shapes", "moves")
TUNING = {
    "enabled": True,
    "algorithm": "random",
    "max_trials": 2,
    "steps_per_trial": 3,
    "eval_steps": 1,
    "seed": 1,
    "learning_rate": {"min": 1e-3, "max": 1e-2, "log": True},
    "batch_sizes": [2, 4],
    "tasks": ["shapes"],
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tuned")
    data_root, pipeline_root = str(tmp / "data"), str(tmp / "run")
    write_corpus(data_root)
    data = corpus_config_dict(data_root, pipeline_root)
    data["tasks"] = {name: body for name, body in data["tasks"].items() if name in TASKS}
    data["tasks"]["shapes"]["batch_size"] = 8  # outside batch_sizes: the Tuner's pick shows
    data["tuning"] = TUNING
    config_path = tmp / "config.yaml"
    config_path.write_text(yaml.safe_dump(data))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["run", "--config", str(config_path)])
    assert code == 0, printed.getvalue()
    metadata = os.path.join(pipeline_root, local_runner.METADATA_FILE)
    outputs = local_runner.read_run_outputs(metadata, "polyvit-test")
    return outputs, {(a.node, a.key): a for a in outputs.artifacts}, printed.getvalue()


def _read_json(path: str):
    with open(path) as f:
        return json.load(f)


def test_the_tuner_runs_before_the_trainer(run):
    outputs, produced, _ = run
    assert outputs.failed_nodes == []
    nodes = outputs.completed_nodes
    assert nodes.index("Transform") < nodes.index("Tuner") < nodes.index("Trainer")
    assert nodes[-1] == "Pusher"
    assert {("Tuner", "best_hyperparameters"), ("Tuner", "tuner_results")} <= set(produced)


def test_the_trainer_applies_the_best_hyperparameters(run):
    _, produced, _ = run
    best = _read_json(
        os.path.join(produced[("Tuner", "best_hyperparameters")].uri, "best_hyperparameters.txt")
    )["values"]
    assert set(best) == {"training.learning_rate", "tasks.shapes.batch_size"}
    assert 1e-3 <= best["training.learning_rate"] <= 1e-2
    assert best["tasks.shapes.batch_size"] in (2, 4)
    run_dir = produced[("Trainer", "model_run")].uri
    applied = _read_json(os.path.join(run_dir, "hyperparameters.json"))
    assert {key: change["to"] for key, change in applied.items()} == best
    assert applied["tasks.shapes.batch_size"]["from"] == 8


def test_the_report_lists_every_trial_with_its_task_scores(run):
    _, produced, printed = run
    report_dir = produced[("ModelReport", "report")].uri
    summary = _read_json(os.path.join(report_dir, report_lib.SUMMARY))
    trials = summary["tuning"]["trials"]
    assert len(trials) == TUNING["max_trials"]
    assert all(t["status"] == "COMPLETED" and set(t["scores"]) == set(TASKS) for t in trials)
    assert [t["best"] for t in trials].count(True) == 1
    best = next(t for t in trials if t["best"])
    assert best["objective"] == max(t["objective"] for t in trials)
    with open(os.path.join(report_dir, report_lib.INDEX)) as f:
        page = f.read()
    assert "id='tuning'" in page and report_tuning.PICTURE in page
    with open(os.path.join(report_dir, report_tuning.PICTURE), "rb") as f:
        assert f.read(4) == b"\x89PNG"
    assert f"Tuner: 2 trial(s), best trial {best['trial_id']} objective" in printed
