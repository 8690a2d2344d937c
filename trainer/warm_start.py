"""Warm start: a new model's variables from an earlier model's SavedModel.

`warm_start(model, source_model_dir, carry_heads_for=...)` copies every variable of the shared
encoder, the modality tokenizers and modality layers whose name and shape match the source, and
the heads of the tasks named in `carry_heads_for` only; every other head keeps its fresh
initialisation. The Trainer uses it with TFX's `base_model` (the latest blessed model, resolved
by LatestBlessedModelStrategy): `heads_to_carry(old_labels, new_labels)` decides which heads
carry over, namely those of tasks whose label vocabulary is unchanged (same labels, same order),
since a head's rows are the label indices.

The label vocabularies a model was trained with are written beside its SavedModel
(`write_labels`), so the next run can compare them without parsing the serving graph.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable, Mapping

import tensorflow as tf

log = logging.getLogger("polyvit.warm_start")

LABELS_FILE = "polyvit_labels.json"
HEAD_PREFIX = "head_"


@dataclasses.dataclass
class WarmStartReport:
    """What a warm start took from which model (JSON-able, for the model report)."""

    source: str
    carried_heads: list[str]
    fresh_heads: list[str]
    variables_loaded: int
    variables_fresh: list[str]  # names of variables left as initialised (heads excluded)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def heads_to_carry(
    old_labels: Mapping[str, Iterable[str]], new_labels: Mapping[str, Iterable[str]]
) -> tuple[list[str], list[str]]:
    """Pure: (tasks whose head carries over, tasks that get a fresh head). A head carries when
    the task existed before with exactly the same label vocabulary, in the same order."""
    carried: list[str] = []
    fresh: list[str] = []
    for task, labels in new_labels.items():
        same = task in old_labels and list(old_labels[task]) == list(labels)
        (carried if same else fresh).append(task)
    return carried, fresh


def owner(variable_name: str) -> str:
    """The layer a variable belongs to: the first path part below the model's own scope
    (`encoder`, `tokenizer_image`, `layers_audio`, `head_digits`)."""
    parts = [p for p in variable_name.split(":")[0].split("/") if p]
    if parts and parts[0] == "polyvit":
        parts = parts[1:]
    return parts[0] if parts else ""


def head_task(variable_owner: str, task_names: Iterable[str]) -> str | None:
    """The task whose head owns a variable, matched against the model's head layer names."""
    from trainer.model import _layer_name

    for task in task_names:
        if variable_owner == HEAD_PREFIX + _layer_name(task):
            return task
    return None


def plan(
    target: Mapping[str, tuple[int, ...]],
    source: Mapping[str, tuple[int, ...]],
    task_names: Iterable[str],
    carry_heads_for: Iterable[str],
) -> tuple[list[str], list[str]]:
    """Pure: (target variable names to copy from the source, names left as initialised).
    A variable is copied when the source has one of the same name and shape and, for a head,
    when its task is in `carry_heads_for`."""
    tasks, carry = list(task_names), set(carry_heads_for)
    copy: list[str] = []
    keep: list[str] = []
    for name, shape in target.items():
        task = head_task(owner(name), tasks)
        wanted = task is None or task in carry
        (copy if wanted and source.get(name) == tuple(shape) else keep).append(name)
    return copy, keep


def _variables_by_name(variables) -> dict[str, tf.Variable]:
    named: dict[str, tf.Variable] = {}
    for v in variables:
        named.setdefault(v.name, v)
    return named


def warm_start(
    model: tf.keras.Model, source_model_dir: str, carry_heads_for: Iterable[str] = ()
) -> WarmStartReport:
    """Copies the source SavedModel's matching variables into `model` (built), see `plan`."""
    loaded = tf.saved_model.load(source_model_dir)
    # trainer/export.py's serving module tracks the model's variables as `model_variables`.
    source = _variables_by_name(getattr(loaded, "model_variables", None) or loaded.variables)
    target = _variables_by_name(model.variables)
    task_names = list(getattr(model, "task_names", []))
    carry = [t for t in carry_heads_for if t in task_names]
    copy, keep = plan(
        {n: tuple(v.shape) for n, v in target.items()},
        {n: tuple(v.shape) for n, v in source.items()},
        task_names,
        carry,
    )
    for name in copy:
        target[name].assign(source[name])
    carried = [t for t in task_names if t in carry]
    report = WarmStartReport(
        source=source_model_dir,
        carried_heads=carried,
        fresh_heads=[t for t in task_names if t not in carried],
        variables_loaded=len(copy),
        variables_fresh=sorted(n for n in keep if head_task(owner(n), task_names) is None),
    )
    log.info(
        "Warm start from %s: %d variables; heads carried %s, fresh %s",
        source_model_dir,
        report.variables_loaded,
        report.carried_heads,
        report.fresh_heads,
    )
    return report


def write_labels(serving_model_dir: str, vocabularies: Mapping[str, list[str]]) -> None:
    """The label vocabularies beside the SavedModel (in the Model artifact, outside the
    directory the Pusher copies)."""
    path = os.path.join(os.path.dirname(serving_model_dir.rstrip("/")), LABELS_FILE)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps({t: list(v) for t, v in vocabularies.items()}, sort_keys=True))


def read_labels(serving_model_dir: str) -> dict[str, list[str]] | None:
    """The vocabularies `write_labels` left beside a model, or None (older models)."""
    path = os.path.join(os.path.dirname(serving_model_dir.rstrip("/")), LABELS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.loads(f.read())
