"""Pure functions on TFDV protos: the label domain, per-task checks, anomaly messages.

One Examples artifact holds every task, so a schema alone cannot say "an image task's record
must have frames" or "an eval label must occur in the same task's train split". StatisticsGen
therefore also computes statistics per task (TFDV slices on `task/name`), and `task_problems`
checks each task's slice.

TFDV reports unexpected string values from a feature's rank histogram, so a histogram that
was cut short (more distinct values than `StatsOptions.num_rank_histogram_buckets`) would hide
labels. Both the domain and the gate therefore check that the histogram is complete.
"""

from __future__ import annotations

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from core import features
from core.schema import CURATED_SCHEMA_PATH

LABEL_DOMAIN = "train_labels"
TASK_DOMAIN = "tasks"
# TFDV's names: the unsliced dataset, and a slice on one value of a feature.
DEFAULT_SLICE = "All Examples"
# Feature lists each modality's records must hold (video's audio track is optional).
REQUIRED_LISTS = {
    "image": (features.IMAGE_ENCODED,),
    "video": (features.IMAGE_ENCODED,),
    "audio": (features.WAVEFORM,),
}


def curated_schema() -> schema_pb2.Schema:
    """The data contract, core/schema/schema.pbtxt, read from the installed package.

    Read at execution time, not copied from a path fixed when the pipeline was compiled, so the
    same pipeline runs on a laptop and in a Kubeflow container.
    """
    with open(CURATED_SCHEMA_PATH) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


class DataValidationError(RuntimeError):
    """The data breaks the schema; the message lists every anomaly by split and feature."""


def task_slice(task: str) -> str:
    """TFDV's name for the slice of records whose `task/name` is `task`."""
    return f"{features.TASK}_{task}"


def _dataset(
    stats: statistics_pb2.DatasetFeatureStatisticsList, slice_name: str = DEFAULT_SLICE
) -> statistics_pb2.DatasetFeatureStatistics | None:
    for dataset in stats.datasets:
        # Unsliced statistics have one dataset, named "" or DEFAULT_SLICE.
        if dataset.name == slice_name or (slice_name == DEFAULT_SLICE and not dataset.name):
            return dataset
    return None


def _feature_stats(
    dataset: statistics_pb2.DatasetFeatureStatistics | None, *path: str
) -> statistics_pb2.FeatureNameStatistics | None:
    for feature in dataset.features if dataset is not None else ():
        if tuple(feature.path.step) == path or (len(path) == 1 and feature.name == path[0]):
            return feature
    return None


def _common(feature: statistics_pb2.FeatureNameStatistics) -> statistics_pb2.CommonStatistics:
    kind = feature.WhichOneof("stats")
    return getattr(feature, kind).common_stats


def _labels(dataset) -> tuple[set[str], int]:
    """(label texts listed in the rank histogram, distinct label texts) of one dataset."""
    feature = _feature_stats(dataset, features.LABEL_TEXT)
    if feature is None:
        return set(), 0
    return (
        {bucket.label for bucket in feature.string_stats.rank_histogram.buckets},
        feature.string_stats.unique,
    )


def label_histogram_gap(
    stats: statistics_pb2.DatasetFeatureStatisticsList, split: str
) -> str | None:
    """A message when the label histogram of `split` misses values, else None."""
    listed, unique = _labels(_dataset(stats))
    if unique > len(listed):
        return (
            f"split {split}: {features.LABEL_TEXT} has {unique} distinct values but the "
            f"statistics list only {len(listed)} (the tasks' num_classes add up to fewer "
            "labels than the data holds)"
        )
    return None


def train_labels(stats: statistics_pb2.DatasetFeatureStatisticsList) -> list[str]:
    """Every label text seen in the train split's statistics, sorted."""
    gap = label_histogram_gap(stats, "train")
    if gap:
        raise DataValidationError(gap)
    labels, unique = _labels(_dataset(stats))
    if not unique:
        raise DataValidationError(f"split train: no statistics for {features.LABEL_TEXT}")
    return sorted(labels)


def _missing_lists(dataset, task: str, modality: str, split: str) -> list[str]:
    problems = []
    for name in REQUIRED_LISTS[modality]:
        feature = _feature_stats(dataset, "##SEQUENCE##", name)
        if feature is None:
            problems.append(f"split {split}: task {task} ({modality}): no record has {name}")
            continue
        common = _common(feature)
        # Level 0 of a feature list counts its Features: frames, or the one waveform.
        empty = common.num_missing or common.min_num_values == 0
        if empty:
            problems.append(
                f"split {split}: task {task} ({modality}): {common.num_missing} of "
                f"{dataset.num_examples} records have no {name}"
                + (" and some have an empty list" if common.min_num_values == 0 else "")
            )
    return problems


def _label_presence(dataset, task: str, split: str, labelled: bool) -> list[str]:
    """A labelled task's records all carry labels; an unlabelled task's none."""
    feature = _feature_stats(dataset, features.LABEL_TEXT)
    common = _common(feature) if feature is not None else None
    with_labels = common.num_non_missing if common is not None else 0
    if labelled and with_labels < dataset.num_examples:
        return [
            f"split {split}: task {task}: {dataset.num_examples - with_labels} of "
            f"{dataset.num_examples} records have no {features.LABEL_TEXT} (a labelled task; "
            f"set tasks.{task}.labelled: false for data without classes)"
        ]
    if not labelled and with_labels:
        return [
            f"split {split}: task {task}: {with_labels} records have {features.LABEL_TEXT}, "
            "but the task is unlabelled (labelled: false)"
        ]
    return []


def task_problems(
    split_stats: statistics_pb2.DatasetFeatureStatisticsList,
    train_stats: statistics_pb2.DatasetFeatureStatisticsList,
    split: str,
    modalities: dict[str, str],
    unlabelled: frozenset[str] | set[str] = frozenset(),
) -> list[str]:
    """Per-task checks on the task slices of one split: records, media lists, labels (none for
    the `unlabelled` tasks)."""
    problems = []
    for task, modality in sorted(modalities.items()):
        dataset = _dataset(split_stats, task_slice(task))
        if dataset is None or not dataset.num_examples:
            problems.append(f"split {split}: task {task} has no records")
            continue
        problems += _missing_lists(dataset, task, modality, split)
        problems += _label_presence(dataset, task, split, task not in unlabelled)
        if task in unlabelled:
            continue
        labels, unique = _labels(dataset)
        if unique > len(labels):
            problems.append(
                f"split {split}: task {task}: {unique} distinct labels, more than the "
                "statistics can list (check the task's num_classes)"
            )
        if split != features.TRAIN:
            train_labels_of_task, _ = _labels(_dataset(train_stats, task_slice(task)))
            unseen = sorted(labels - train_labels_of_task)
            if unseen:
                problems.append(
                    f"split {split}: task {task}: labels never seen in the task's train "
                    f"split: {unseen}"
                )
    return problems


def _set_domain(schema: schema_pb2.Schema, feature_name: str, domain: str, values) -> None:
    for existing in list(schema.string_domain):
        if existing.name == domain:
            schema.string_domain.remove(existing)
    schema.string_domain.add(name=domain, value=list(values))
    for feature in schema.feature:
        if feature.name == feature_name:
            feature.domain = domain
            return
    raise DataValidationError(f"the curated schema has no feature {feature_name!r}")


def with_domains(
    curated: schema_pb2.Schema, labels: list[str], task_names: list[str]
) -> schema_pb2.Schema:
    """The curated schema plus the train labels and the configured task names as domains.

    One artifact holds every task, so the label domain is the union over tasks: an eval label
    that only another task uses in train is not caught here.
    """
    schema = schema_pb2.Schema()
    schema.CopyFrom(curated)
    _set_domain(schema, features.LABEL_TEXT, LABEL_DOMAIN, labels)
    _set_domain(schema, features.TASK, TASK_DOMAIN, sorted(task_names))
    return schema


def describe_anomalies(split: str, anomalies: anomalies_pb2.Anomalies) -> list[str]:
    """One line per anomaly: `split eval: clip/label/text: Unexpected string values: ...`."""
    lines = []
    for key in sorted(anomalies.anomaly_info):
        info = anomalies.anomaly_info[key]
        reasons = (
            "; ".join(f"{r.short_description}: {r.description.strip()}" for r in info.reason)
            or info.description.strip()
        )
        lines.append(f"split {split}: {key}: {reasons}")
    if anomalies.HasField("dataset_anomaly_info"):
        for reason in anomalies.dataset_anomaly_info.reason:
            lines.append(f"split {split}: dataset: {reason.description.strip()}")
    return lines


def gate_message(problems: list[str]) -> str:
    return (
        "data validation failed, training will not start. Fix the data (or, if the change is "
        "intended, core/schema/schema.pbtxt):\n  " + "\n  ".join(problems)
    )
