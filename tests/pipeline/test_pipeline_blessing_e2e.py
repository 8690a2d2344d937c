"""The whole pipeline twice on the small demo media: a good model is blessed and pushed with
its warm-up requests; a degraded candidate is not blessed, not pushed, the serving directory
still holds only the first version, and the report names the task and threshold that failed."""

import json
import os

import pytest

from demo.generate import generate
from pipeline import cli, local_runner
from serving import layout

pytestmark = pytest.mark.e2e

DEMO = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "demo.yaml")


def _run(data_root: str, root: str, push_dir: str, *overrides: str) -> local_runner.RunOutputs:
    argv = ["run", "--config", DEMO, "--data-root", data_root, "--pipeline-root", root]
    settings = [f"serving.push_dir={push_dir}", "training.log_every=50", *overrides]
    assert cli.main(argv + [x for s in settings for x in ("--set", s)]) == 0
    return local_runner.read_run_outputs(
        os.path.join(root, local_runner.METADATA_FILE), "polyvit-demo"
    )


def _produced(outputs) -> dict:
    return {(a.node, a.key): a for a in outputs.artifacts}


def _report_summary(outputs) -> dict:
    report = _produced(outputs)[("ModelReport", "report")]
    with open(os.path.join(report.uri, "summary.json")) as f:
        return json.load(f)


def test_only_a_blessed_model_reaches_the_serving_directory(tmp_path, capsys):
    data_root, root = str(tmp_path / "media"), str(tmp_path / "run")
    push_dir = str(tmp_path / "serving")
    generate(data_root, scale="small", seed=0)
    # The small demo has a handful of eval clips per task: the first run is judged on the
    # change-free gate only (every value threshold at 0), so it must be pushed.
    zero_thresholds = [
        f"tasks.{t}.eval.min_metric=0" for t in ("digits", "motion", "dtmf", "tone_mix")
    ]
    first = _run(data_root, root, push_dir, "training.steps=150", *zero_thresholds)
    assert _report_summary(first)["decision"] == "BLESSED"
    assert _report_summary(first)["trained_on"] == {"spans": [0], "warm_start": {}}
    model_dir = os.path.join(push_dir, "polyvit")
    versions = os.listdir(model_dir)
    assert len(versions) == 1 and versions[0].isdigit()
    warmup = layout.read_warmup_requests(os.path.join(model_dir, versions[0]))
    signatures = {log.predict_log.request.model_spec.signature_name for log in warmup}
    assert signatures == {"digits", "motion", "dtmf", "tone_mix"}
    assert "Pushed:" in capsys.readouterr().out

    # The degraded candidate trains for 2 steps from scratch (no warm start from the blessed
    # model, which would make it as good as the baseline), still inside the warm-up, so it
    # barely moves from its initial weights (zero-initialised heads give uniform scores) and
    # is worse than the blessed baseline on the trained tasks.
    second = _run(
        data_root,
        root,
        push_dir,
        "training.steps=2",
        "continuous.warm_start=false",
        "evaluation.max_regression=0.0",
        *zero_thresholds,
    )
    summary = _report_summary(second)
    assert summary["has_baseline"]
    assert summary["decision"] == "NOT_BLESSED"
    failed = {(f["task"], f["kind"]) for f in summary["failures"]}
    assert failed and all(kind == "change" for _, kind in failed)
    assert summary["decision_reason"].startswith("Failed: ")
    assert not _produced(second)[("Pusher", "pushed_model")].properties.get("pushed")
    assert os.listdir(model_dir) == versions
    printed = capsys.readouterr().out
    assert "Not pushed" in printed
    # The wall-time table shows the stages TFX's cache skipped (unchanged inputs) as cached.
    table = printed[printed.index("wall time per stage (ML Metadata):") :].splitlines()
    states = {line.split()[0]: line.split()[1] for line in table[2:-1]}
    assert states["MediaExampleGen"] == "cached" and states["Trainer"] == "complete"
