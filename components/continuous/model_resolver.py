"""The model a local run compares against and warm-starts from, such that an unchanged
re-run is served from TFX's cache.

TFX's `LatestBlessedModelStrategy` returns the newest blessed model. Once a run's model is
blessed, the next run on the same data and settings would get that very model as the
Trainer's `base_model` and the Evaluator's baseline: new inputs, so TFX's cache misses and the
run retrains the model from itself and judges it against itself. This strategy returns the
newest blessed model that is NOT the one this run's Trainer would train again: a model whose
Trainer wrote the same resume fingerprint (trainer/run_fn.py: the training data's URIs, the
step count and every weight-deciding setting) is skipped. So:
- unchanged data and settings: the same base model and baseline as the run that trained the
  cached model (TFX serves the Trainer and everything after it from its cache);
- a new span or an edited training setting: the newest blessed model, as TFX's strategy gives.

Inputs: `model`, `model_blessing` (every one in the store) and `examples` (what this run's
Trainer reads: one Examples artifact or a span window), passed through. LocalDagRunner only:
TFX's Kubeflow V2 compiler accepts no custom strategy, so compiled pipelines keep
`LatestBlessedModelStrategy`.
"""

from __future__ import annotations

from tfx import v1 as tfx

from core import config as config_lib

BLESSED = "blessed"  # the ModelBlessing custom properties TFX's Evaluator writes
CURRENT_MODEL_ID = "current_model_id"


def newest_blessed_other_model(models: list, blessings: list, is_ours) -> tuple[list, list]:
    """([model], [its blessing]) for the newest blessed model for which `is_ours(model)` is
    false, else ([], [])."""
    blessed = {
        b.get_int_custom_property(CURRENT_MODEL_ID): b
        for b in blessings
        if b.get_int_custom_property(BLESSED) == 1
    }
    for model in sorted(models, key=lambda m: m.id, reverse=True):
        if model.id in blessed and not is_ours(model):
            return [model], [blessed[model.id]]
    return [], []


class LatestBlessedOtherModelStrategy(tfx.dsl.experimental.ResolverStrategy):
    """See the module docstring. `trainer_config`: the JSON of the Trainer's slice
    (core.config.TrainerConfig); `steps`: the step count it trains for."""

    def __init__(self, trainer_config: str, steps: int):
        self._config = config_lib.from_custom_config(
            {config_lib.CUSTOM_CONFIG_KEY: trainer_config},
            config_lib.TrainerConfig,
            "LatestBlessedOtherModelStrategy",
        )
        self._steps = int(steps)

    def resolve_artifacts(self, store, input_dict):
        from trainer import run_fn

        uris = [a.uri for a in input_dict["examples"]]
        if not uris:
            return {key: [] for key in input_dict}
        ours = run_fn.resume_fingerprint(
            self._config, uris[0] if len(uris) == 1 else uris, self._steps
        )
        model, blessing = newest_blessed_other_model(
            input_dict["model"],
            input_dict["model_blessing"],
            lambda m: run_fn.read_training_identity(m.uri).get("fingerprint") == ours,
        )
        return {"model": model, "model_blessing": blessing, "examples": input_dict["examples"]}
