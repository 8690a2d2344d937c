"""The Tuner's search space from the config's ranges, the config rules on `tuning`, applying
the best values over the Trainer's config (run_fn), and the trials' record and report."""

from __future__ import annotations

import json
import os
import types

import keras_tuner
import pytest

from components.model_report import tuning as report_tuning
from components.tuner import executor
from core import config as config_lib
from core.config import ConfigError
from tests.support import configs
from trainer import run_fn, tuning

TASKS = {
    "digits": configs.task("image", 10, "digits", batch_size=32, loss_weight=1.0),
    "motion": configs.task("video", 4, "motion", batch_size=16, loss_weight=2.0),
}
SEARCH = {
    "tuning.enabled": True,
    "tuning.learning_rate": {"min": 1e-4, "max": 1e-2, "log": True},
    "tuning.weight_decay": {"min": 0.0, "max": 0.1},
    "tuning.loss_weight": {"min": 0.5, "max": 4.0},
    "tuning.batch_sizes": [8, 32, 16],
}


def _config(overrides=None) -> config_lib.Config:
    return configs.tiny_config(
        TASKS, {"training.learning_rate": 0.002, **SEARCH, **(overrides or {})}
    )


def _slice(config: config_lib.Config) -> config_lib.TrainerConfig:
    return config_lib.trainer_config(config)


def test_tuning_is_off_by_default_and_its_slice_round_trips():
    plain = configs.tiny_config(TASKS)
    assert plain.tuning.enabled is False
    config = _config()
    tuner_slice = config_lib.tuner_config(_slice(config), config.tuning)
    back = config_lib.from_custom_config(
        config_lib.to_custom_config(tuner_slice), config_lib.TunerConfig, "test"
    )
    assert back == tuner_slice and back.tuning.batch_sizes == [8, 32, 16]
    # The Trainer's own slice carries no tuning section (its cache key ignores the search).
    assert not hasattr(_slice(config), "tuning")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"tuning.max_trials": 0}, "tuning.max_trials: must be positive"),
        ({"tuning.steps_per_trial": -1}, "tuning.steps_per_trial: must be positive"),
        ({"tuning.eval_steps": -1}, "tuning.eval_steps: must not be negative"),
        ({"tuning.algorithm": "grid"}, "tuning.algorithm: 'grid' is not one of"),
        (
            {"tuning.learning_rate": {"min": 0.0, "max": 0.1, "log": True}},
            "tuning.learning_rate.min: must be positive on a log scale",
        ),
        (
            {"tuning.weight_decay": {"min": 0.2, "max": 0.1}},
            "tuning.weight_decay.min: must be below max",
        ),
        ({"tuning.loss_weight": {"min": 1.0}}, "tuning.loss_weight.max: must be set"),
        ({"tuning.batch_sizes": [8, 0]}, "tuning.batch_sizes: must hold positive sizes"),
        ({"tuning.batch_sizes": [8, 8]}, "tuning.batch_sizes: must not repeat"),
        ({"tuning.tasks": ["nope"]}, "tuning.tasks: must name tasks of ['digits', 'motion']"),
        ({"tuning.rate": 1}, "tuning.rate: unknown key"),
    ],
)
def test_bad_tuning_values_fail_naming_the_key(overrides, message):
    with pytest.raises(ConfigError) as error:
        _config(overrides)
    assert message in str(error.value)


def test_enabled_tuning_needs_something_to_search():
    with pytest.raises(ConfigError, match="tuning: enabled but nothing to search"):
        configs.tiny_config(TASKS, {"tuning.enabled": True, "tuning.learning_rate": {}})


def test_search_space_holds_the_configured_ranges_per_task():
    config = _config()
    spec = {item["name"]: item for item in tuning.space_spec(config.tuning, _slice(config))}
    assert sorted(spec) == [
        "tasks.digits.batch_size",
        "tasks.digits.loss_weight",
        "tasks.motion.batch_size",
        "tasks.motion.loss_weight",
        "training.learning_rate",
        "training.weight_decay",
    ]
    # Defaults are the configured values where they are inside the range, else its minimum.
    assert spec["training.learning_rate"]["default"] == 0.002
    assert spec["tasks.motion.loss_weight"]["default"] == 2.0
    assert spec["tasks.motion.batch_size"] == {
        "name": "tasks.motion.batch_size",
        "kind": "choice",
        "values": [8, 16, 32],
        "default": 16,
    }

    hp = tuning.search_space(config.tuning, _slice(config))
    lr = hp.get_config()["space"]
    by_name = {h["config"]["name"]: h for h in lr}
    assert by_name["training.learning_rate"]["config"]["min_value"] == 1e-4
    assert by_name["training.learning_rate"]["config"]["max_value"] == 1e-2
    assert by_name["training.learning_rate"]["config"]["sampling"] == "log"
    assert by_name["tasks.digits.batch_size"]["config"]["values"] == [8, 16, 32]
    # Random samples stay inside every range.
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("objective", "max"), max_trials=5, hyperparameters=hp
    )
    for _ in range(5):
        values = oracle._random_values()
        assert 1e-4 <= values["training.learning_rate"] <= 1e-2
        assert 0.5 <= values["tasks.motion.loss_weight"] <= 4.0
        assert values["tasks.digits.batch_size"] in (8, 16, 32)


def test_only_the_listed_tasks_and_set_ranges_are_searched():
    config = _config(
        {"tuning.tasks": ["motion"], "tuning.weight_decay": {}, "tuning.batch_sizes": []}
    )
    names = [item["name"] for item in tuning.space_spec(config.tuning, _slice(config))]
    assert names == ["training.learning_rate", "tasks.motion.loss_weight"]
    # A configured value outside the range: the range's minimum is the default.
    high = _config({"training.learning_rate": 0.5})
    spec = tuning.space_spec(high.tuning, _slice(high))
    assert spec[0]["default"] == 1e-4


def test_applying_hyperparameters_replaces_those_keys_only():
    base = _slice(_config())
    values = {
        "training.learning_rate": 0.0042,
        "tasks.motion.batch_size": 8,
        "tasks.digits.loss_weight": 3.5,
    }
    tuned, applied = tuning.apply_hyperparameters(base, values)
    assert tuned.training.learning_rate == 0.0042
    assert tuned.training.weight_decay == base.training.weight_decay
    assert tuned.task("motion").batch_size == 8 and isinstance(tuned.task("motion").batch_size, int)
    assert tuned.task("digits").loss_weight == 3.5
    assert tuned.task("digits").batch_size == 32 and tuned.task("motion").loss_weight == 2.0
    assert applied["training.learning_rate"] == {"from": 0.002, "to": 0.0042}
    assert applied["tasks.motion.batch_size"] == {"from": 16, "to": 8}
    assert base.training.learning_rate == 0.002  # the input config is left alone
    assert "training.learning_rate 0.002 -> 0.0042" in tuning.describe_applied(applied)


@pytest.mark.parametrize(
    "name, message",
    [
        ("tasks.audio.loss_weight", "no task 'audio'"),
        ("training.momentum", "not a tuned key"),
        ("model.hidden_size", "not a tuned key"),
    ],
)
def test_unknown_hyperparameters_are_refused_by_name(name, message):
    with pytest.raises(ConfigError) as error:
        tuning.apply_hyperparameters(_slice(_config()), {name: 1})
    assert name in str(error.value) and message in str(error.value)


def test_run_fn_applies_the_tuner_artifact_and_records_it(tmp_path):
    hp = tuning.search_space(_config().tuning, _slice(_config()))
    hp.values["training.learning_rate"] = 0.005
    hp.values["tasks.digits.batch_size"] = 8
    artifact = json.loads(json.dumps(hp.get_config()))  # as best_hyperparameters.txt holds it
    run_dir = str(tmp_path / "model_run")
    tuned = run_fn.apply_tuned(_slice(_config()), artifact, run_dir)
    assert tuned.training.learning_rate == 0.005 and tuned.task("digits").batch_size == 8
    written = json.loads(open(os.path.join(run_dir, run_fn.HYPERPARAMETERS_FILE)).read())
    assert written["training.learning_rate"] == {"from": 0.002, "to": 0.005}
    # Without a Tuner nothing changes and nothing is written.
    assert run_fn.apply_tuned(_slice(_config()), None, str(tmp_path / "other")) == _slice(_config())
    assert not os.path.exists(tmp_path / "other")


def test_objective_is_the_mean_of_the_tasks_headline_metrics():
    evaluation = {
        "digits": {"metric": "top1", "value": 0.9},
        "tone_mix": {"metric": "mAP", "value": 0.5},
    }
    assert tuning.objective(evaluation) == pytest.approx(0.7)
    assert tuning.trial_scores(evaluation) == {
        "objective": pytest.approx(0.7),
        "task.digits": 0.9,
        "task.tone_mix": 0.5,
    }
    with pytest.raises(ValueError):
        tuning.objective({})


def _finished_oracle(tmp_path, scores: list[dict]):
    config = _config()
    hp = tuning.search_space(config.tuning, _slice(config))
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("objective", "max"),
        max_trials=len(scores),
        hyperparameters=hp,
        seed=1,
    )
    oracle._set_project_dir(str(tmp_path), "p")
    for metrics in scores:
        trial = oracle.create_trial("t0")
        if metrics:
            oracle.update_trial(trial.trial_id, metrics)
            trial.status = "COMPLETED"
        else:
            trial.status = "FAILED"
            trial.message = "Traceback...\nValueError: the trial broke"
        oracle.end_trial(trial)
    return oracle


def test_trial_rows_and_report_list_every_trial_with_its_task_scores(tmp_path):
    oracle = _finished_oracle(
        tmp_path,
        [
            {"objective": 0.55, "task.digits": 0.6, "task.motion": 0.5},
            {"objective": 0.8, "task.digits": 0.9, "task.motion": 0.7},
            {},
        ],
    )
    best = oracle.get_best_trials(1)[0].trial_id
    rows = executor.trial_rows(list(oracle.trials.values()), best)
    assert [r["objective"] for r in rows] == [0.55, 0.8, None]
    assert [r["best"] for r in rows] == [False, True, False]
    assert rows[1]["scores"] == {"digits": 0.9, "motion": 0.7}
    assert rows[2]["status"] == "FAILED" and rows[2]["message"] == ["ValueError: the trial broke"]
    assert set(rows[0]["values"]) >= {"training.learning_rate", "tasks.motion.batch_size"}

    results = tmp_path / "tuner_results"
    results.mkdir()
    (results / report_tuning.TRIALS_FILE).write_text(json.dumps(rows))
    run = tmp_path / "model_run"
    run.mkdir()
    applied = {
        "training.learning_rate": {"from": 0.002, "to": rows[1]["values"]["training.learning_rate"]}
    }
    (run / report_tuning.APPLIED_FILE).write_text(json.dumps(applied))
    loaded = report_tuning.load_tuning(str(results), str(tmp_path / "model"), str(run))
    assert loaded["best"]["trial_id"] == best and loaded["applied"] == applied
    picture = tmp_path / "trials.png"
    report_tuning.trials_png(loaded, str(picture))
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = report_tuning.section(loaded, "trials.png")
    assert page.count("<tr>") + page.count("<tr class='best'>") == 4  # header + 3 trials
    assert f"{best} (best)" in page and "0.9000" in page and "FAILED" in page
    assert "The Trainer applied: training.learning_rate 0.002 -&gt; " in page
    line = report_tuning.describe(loaded)
    assert line.startswith(f"Tuner: 3 trial(s), best trial {best} objective 0.8000.")

    with pytest.raises(FileNotFoundError, match="no trials.json"):
        report_tuning.load_tuning(str(tmp_path / "model_run"))
    assert report_tuning.load_tuning(None) is None


def test_tuner_fn_steps_follow_the_tuners_train_and_eval_args():
    config = _config()
    custom = config_lib.to_custom_config(config_lib.tuner_config(_slice(config), config.tuning))
    from trainer import tuning_fn

    args = types.SimpleNamespace(custom_config=custom, train_steps=7, eval_steps=None)
    assert tuning_fn.tuner_config(args).tuning.steps_per_trial == 7
    assert tuning_fn.tuner_config(args).tuning.eval_steps == config.tuning.eval_steps


def test_both_search_algorithms_propose_values_inside_the_space(tmp_path):
    from trainer import tuning_fn

    for algorithm, kind in (
        ("random", keras_tuner.oracles.RandomSearchOracle),
        ("bayesian", keras_tuner.oracles.BayesianOptimizationOracle),
    ):
        config = _config({"tuning.algorithm": algorithm, "tuning.max_trials": 3})
        tuner_slice = config_lib.tuner_config(_slice(config), config.tuning)
        oracle = tuning_fn.make_oracle(tuner_slice)
        assert isinstance(oracle, kind) and oracle.max_trials == 3
        assert oracle.objective.name == "objective" and oracle.objective.direction == "max"
        oracle._set_project_dir(str(tmp_path), algorithm)
        # The first trial is the configured starting point; later ones are searched.
        first = oracle.create_trial("t0")
        assert first.hyperparameters.values == {
            "training.learning_rate": 0.002,
            "training.weight_decay": config.training.weight_decay,
            "tasks.digits.loss_weight": 1.0,
            "tasks.digits.batch_size": 32,
            "tasks.motion.loss_weight": 2.0,
            "tasks.motion.batch_size": 16,
        }
        oracle.update_trial(first.trial_id, {"objective": 0.5})
        first.status = "COMPLETED"
        oracle.end_trial(first)
        values = oracle.create_trial("t0").hyperparameters.values
        assert values != first.hyperparameters.values
        assert 1e-4 <= values["training.learning_rate"] <= 1e-2
        assert values["tasks.digits.batch_size"] in (8, 16, 32)
