"""The Tuner's executor: TFX's search, then every trial with its per-task scores on record.

TFX's own executor writes `best_hyperparameters.txt` (what the Trainer reads) and, in the
TunerResults artifact, the completed trials' objective only. This one writes both as TFX
does, plus `trials.json` beside tuner_results.json: every trial in the order it ran, with its
status, values, objective, per-task scores and whether it is the best (the model report
reads it, components/model_report/tuning.py).
"""

from __future__ import annotations

import json
import os
from typing import Any

from tfx.components.tuner import executor as tfx_tuner_executor
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils

from trainer import tuning

TRIALS_FILE = "trials.json"


def trial_rows(trials: list, best_id: str | None) -> list[dict[str, Any]]:
    """One row per keras-tuner Trial (ordered by its id): what the report shows of it."""
    rows = []
    for trial in sorted(trials, key=lambda t: int(t.trial_id) if t.trial_id.isdigit() else 0):
        metrics = {
            name: trial.metrics.get_best_value(name)
            for name in trial.metrics.metrics
            if trial.metrics.get_best_value(name) is not None
        }
        rows.append(
            {
                "trial_id": trial.trial_id,
                "status": str(trial.status),
                "values": dict(trial.hyperparameters.values),
                "objective": metrics.get(tuning.OBJECTIVE),
                "scores": {
                    name[len(tuning.TASK_PREFIX) :]: float(value)
                    for name, value in metrics.items()
                    if name.startswith(tuning.TASK_PREFIX)
                },
                "best": trial.trial_id == best_id,
                "message": (trial.message or "").strip().splitlines()[-1:] or [],
            }
        )
    return rows


def _best_trial_id(tuner) -> str | None:
    best = tuner.oracle.get_best_trials(1)
    return best[0].trial_id if best else None


class Executor(tfx_tuner_executor.Executor):
    """TFX's Tuner executor, plus trials.json (see the module docstring)."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        if tfx_tuner_executor.get_tune_args(exec_properties):
            raise ValueError("TuneArgs is not supported by this Tuner's Executor.")
        # No keras-tuner summaries on stdout: every trial logs its values and scores.
        tuner = tfx_tuner_executor.search(
            input_dict, exec_properties, self._get_tmp_dir(), print_tuning_summary=False
        )
        rows = trial_rows(list(tuner.oracle.trials.values()), _best_trial_id(tuner))
        if not any(row["objective"] is not None for row in rows):
            reasons = "; ".join(f"trial {r['trial_id']}: {' '.join(r['message'])}" for r in rows)
            raise RuntimeError(f"Tuner: no trial completed ({reasons or 'no trial ran'})")
        tfx_tuner_executor.write_best_hyperparameters(tuner, output_dict)
        results_uri = artifact_utils.get_single_uri(
            output_dict[standard_component_specs.TUNER_RESULTS_KEY]
        )
        io_utils.write_string_file(
            os.path.join(results_uri, TRIALS_FILE), json.dumps(rows, indent=2, sort_keys=True)
        )
