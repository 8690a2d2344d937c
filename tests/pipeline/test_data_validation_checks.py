"""The curated schema and the gate's checks, on real TFDV statistics of hand-made records."""

from __future__ import annotations

import tempfile

import apache_beam as beam
import pytest
import tensorflow_data_validation as tfdv
from pipeline_records import MODALITIES, TASKS, good_split, records_config_dict, sequence_example
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx_bsl.coders import sequence_example_coder
from tfx_bsl.public import tfxio

from components.data_validation import checks
from core import config as config_lib
from core import features
from pipeline.pipeline import stats_options

OPTIONS = stats_options(config_lib.from_dict(records_config_dict()))
EVAL = good_split(features.EVAL)
# Every record set the tests look at; their statistics are computed in one Beam pipeline.
CASES = {
    "train": good_split(features.TRAIN),
    "eval": EVAL,
    # "1" is a digits label in train, "up" only a motion label: the schema sees the union of
    # tasks, the per-task check sees both.
    "unseen_labels": EVAL
    + [sequence_example("digits", ["7"], frames=1), sequence_example("digits", ["up"], frames=1)],
    "frameless": EVAL
    + [
        sequence_example("digits", ["0"], frames=0),  # an empty frame list
        sequence_example("motion", ["up"]),  # no frame list at all
    ],
    "silent": [r for r in EVAL if b"tone_mix" not in r]
    + [sequence_example("dtmf", ["5"], frames=1)],
    "odd_values": EVAL
    + [
        sequence_example("elsewhere", ["5"], waveform=[0.0]),
        sequence_example("dtmf", ["5"], waveform=[0.0, 3.0]),
    ],
    # `clips` is an unlabelled (pretraining) task: no labels, except one record that has some;
    # one motion record (a labelled task) lost its labels.
    "unlabelled": EVAL
    + [
        sequence_example("clips", [], frames=4),
        sequence_example("clips", [], frames=4),
        sequence_example("clips", ["up"], frames=4),
        sequence_example("motion", [], frames=4),
    ],
}
SMALL_HISTOGRAM = "train, 2 histogram buckets"


@pytest.fixture(scope="module")
def stats() -> dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
    """TFDV statistics as StatisticsGen computes them (Beam, slices per task), per case."""
    decoder = sequence_example_coder.SequenceExamplesToRecordBatchDecoder("##SEQUENCE##")
    cases = {name: (records, OPTIONS) for name, records in CASES.items()}
    cases[SMALL_HISTOGRAM] = (CASES["train"], tfdv.StatsOptions(num_rank_histogram_buckets=2))
    with tempfile.TemporaryDirectory() as folder:
        with beam.Pipeline() as root:
            for i, (name, (records, options)) in enumerate(cases.items()):
                _ = (
                    root
                    | f"Create {name}" >> beam.Create([decoder.DecodeBatch(records)])
                    | f"Stats {name}" >> tfdv.GenerateStatistics(options)
                    | f"Write {name}" >> tfdv.WriteStatisticsToBinaryFile(f"{folder}/{i}.pb")
                )
        return {name: tfdv.load_stats_binary(f"{folder}/{i}.pb") for i, name in enumerate(cases)}


def validated(eval_stats, train_stats):
    """Anomalies of eval statistics against the curated schema plus the train domains."""
    schema = checks.with_domains(checks.curated_schema(), checks.train_labels(train_stats), TASKS)
    return tfdv.validate_statistics(eval_stats, schema)


def anomaly_types(anomalies) -> dict[str, set[str]]:
    return {
        key: {anomalies_pb2.AnomalyInfo.Type.Name(r.type) for r in info.reason}
        for key, info in anomalies.anomaly_info.items()
    }


def test_demo_like_records_of_all_modalities_pass(stats):
    # Audio records have no frames and images no waveform: absent features are no anomaly.
    train = stats["train"]
    for split in features.SPLITS:
        assert anomaly_types(validated(stats[split], train)) == {}
        assert checks.task_problems(stats[split], train, split, MODALITIES) == []
        assert checks.label_histogram_gap(stats[split], split) is None


def test_eval_label_never_seen_in_train_is_named(stats):
    anomalies = validated(stats["unseen_labels"], stats["train"])
    assert anomaly_types(anomalies) == {features.LABEL_TEXT: {"ENUM_TYPE_UNEXPECTED_STRING_VALUES"}}
    message = checks.gate_message(
        checks.describe_anomalies(features.EVAL, anomalies)
        + checks.task_problems(stats["unseen_labels"], stats["train"], features.EVAL, MODALITIES)
    )
    assert "split eval: clip/label/text: Unexpected string values" in message
    assert "task digits: labels never seen in the task's train split: ['7', 'up']" in message


def test_image_and_video_records_without_frames_are_flagged(stats):
    assert anomaly_types(validated(stats["frameless"], stats["train"])) == {
        "##SEQUENCE##.image/encoded": {"FEATURE_TYPE_LOW_NUMBER_VALUES"}
    }
    problems = checks.task_problems(stats["frameless"], stats["train"], features.EVAL, MODALITIES)
    assert problems == [
        "split eval: task digits (image): 0 of 2 records have no image/encoded and some have "
        "an empty list",
        "split eval: task motion (video): 1 of 2 records have no image/encoded",
    ]


def test_audio_without_waveform_and_missing_task_are_flagged(stats):
    problems = checks.task_problems(stats["silent"], stats["train"], features.EVAL, MODALITIES)
    assert problems == [
        "split eval: task dtmf (audio): 1 of 2 records have no WAVEFORM/feature/floats",
        "split eval: task tone_mix has no records",
    ]


def test_unknown_task_and_waveform_out_of_range_are_flagged(stats):
    found = anomaly_types(validated(stats["odd_values"], stats["train"]))
    assert set(found) == {features.TASK, "##SEQUENCE##.WAVEFORM/feature/floats"}


def test_a_cut_label_histogram_is_refused(stats):
    cut = stats[SMALL_HISTOGRAM]
    with pytest.raises(checks.DataValidationError, match="distinct values but the statistics"):
        checks.train_labels(cut)
    assert "7 distinct values" in checks.label_histogram_gap(cut, features.TRAIN)
    with pytest.raises(checks.DataValidationError, match="no statistics"):
        checks.train_labels(statistics_pb2.DatasetFeatureStatisticsList())


def test_train_labels_are_the_sorted_union_over_tasks(stats):
    assert checks.train_labels(stats["train"]) == ["0", "1", "5", "a", "b", "down", "up"]
    schema = checks.with_domains(checks.curated_schema(), ["0", "1"], ["digits"])
    domains = {d.name: list(d.value) for d in schema.string_domain}
    assert domains == {checks.LABEL_DOMAIN: ["0", "1"], checks.TASK_DOMAIN: ["digits"]}


def test_curated_schema_gives_transform_its_tensors():
    # What Transform reads through TFXIO: without these representations it cannot run on
    # SequenceExamples (STACK.md).
    source = tfxio.TFSequenceExampleRecord(
        file_pattern="unused",
        telemetry_descriptors=["polyvit-test"],
        schema=checks.curated_schema(),
    )
    specs = source.TensorAdapter().TypeSpecs()
    assert type(specs[features.LABEL_TEXT]).__name__ == "SparseTensorSpec"
    assert specs[features.TASK].shape.as_list() == [None, 1]
    assert type(specs[features.WAVEFORM]).__name__ == "RaggedTensorSpec"
    assert type(specs[features.IMAGE_ENCODED]).__name__ == "RaggedTensorSpec"


def test_records_without_labels_pass_the_schema_and_the_gate_checks_them_per_task(stats):
    schema = checks.with_domains(
        checks.curated_schema(), checks.train_labels(stats["train"]), TASKS + ["clips"]
    )
    # The schema accepts records without labels (pretraining data)...
    assert anomaly_types(tfdv.validate_statistics(stats["unlabelled"], schema)) == {}
    modalities = {**MODALITIES, "clips": "video"}
    problems = checks.task_problems(
        stats["unlabelled"], stats["train"], features.EVAL, modalities, {"clips"}
    )
    # ...and the gate wants labels on every record of a labelled task, none on an unlabelled
    # task's.
    assert problems == [
        "split eval: task clips: 1 records have clip/label/text, but the task is unlabelled "
        "(labelled: false)",
        "split eval: task motion: 1 of 2 records have no clip/label/text (a labelled task; set "
        "tasks.motion.labelled: false for data without classes)",
    ]
