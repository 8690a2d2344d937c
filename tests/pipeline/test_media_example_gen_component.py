"""MediaExampleGen: the component spec, and the executor on a tiny real media corpus."""

from __future__ import annotations

import glob
import json
import os

import pytest
import tensorflow as tf
from pipeline_corpus import BAD_IMAGE, corpus_config, corpus_config_dict, write_corpus
from tfx import v1 as tfx
from tfx.components.util import examples_utils
from tfx.types import artifact_utils

from components.media_example_gen import executor as executor_lib
from components.media_example_gen.beam_ingest import IngestError
from components.media_example_gen.component import MediaExampleGen, MediaQuarantine
from core import config as config_lib
from core import features
from media.errors import REASONS


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("corpus"))
    return root, write_corpus(root)


def test_spec_carries_the_ingest_config_and_data_root():
    ingest = config_lib.ingest_config(corpus_config("original_root"))
    component = MediaExampleGen(ingest, data_root="run_root").with_beam_pipeline_args(
        ["--direct_num_workers=1"]
    )
    assert set(component.outputs) == {"examples", "quarantine"}
    assert component.outputs["examples"].type is tfx.types.standard_artifacts.Examples
    assert component.outputs["quarantine"].type is MediaQuarantine
    assert component.exec_properties["data_root"] == "run_root"
    assert executor_lib.config_from_properties(component.exec_properties) == ingest


def test_a_whole_config_is_refused():
    with pytest.raises(TypeError, match="ingest_config"):
        MediaExampleGen(corpus_config("x"), data_root="x")


def test_a_property_that_is_no_ingest_config_fails_naming_the_key():
    good = MediaExampleGen(config_lib.ingest_config(corpus_config("x")), "x").exec_properties
    unknown = json.loads(good["config"])
    unknown["tasks"][0]["num_classes"] = 2  # the Trainer's business, not the ingestion's
    with pytest.raises(config_lib.ConfigError, match=r"tasks\.shapes\.num_classes: unknown key"):
        executor_lib.config_from_properties({"config": json.dumps(unknown), "data_root": "x"})
    wrong = json.loads(good["config"])
    wrong["ingestion"]["fps"] = "fast"
    with pytest.raises(config_lib.ConfigError, match=r"ingestion\.fps: expected a number"):
        executor_lib.config_from_properties({"config": json.dumps(wrong), "data_root": "x"})
    with pytest.raises(config_lib.ConfigError, match="exec property 'config'"):
        executor_lib.config_from_properties({"config": "{not json", "data_root": "x"})


def _run_executor(tmp_path, config_dict: dict, data_root: str):
    examples = tfx.types.standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    quarantine = MediaQuarantine()
    quarantine.uri = str(tmp_path / "quarantine")
    config = config_lib.ingest_config(config_lib.from_dict(config_dict))
    properties = MediaExampleGen(config, data_root).exec_properties
    executor_lib.Executor().Do(
        {}, {"examples": [examples], "quarantine": [quarantine]}, dict(properties)
    )
    return examples, quarantine


def _count_records(pattern: str) -> int:
    # As DMVR's TFRecordsSource reads: no compression argument (the default is uncompressed).
    return sum(1 for _ in tf.data.TFRecordDataset(glob.glob(pattern)))


def test_executor_writes_splits_counts_and_quarantine(tmp_path, corpus):
    data_root, expected = corpus
    examples, quarantine = _run_executor(tmp_path, corpus_config_dict("unused", ""), data_root)

    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "eval"]
    assert examples_utils.get_payload_format_string(examples) == "FORMAT_TF_SEQUENCE_EXAMPLE"
    assert examples_utils.get_file_format(examples) == "tfrecords_gzip"
    written = {
        task: {
            split: _count_records(features.task_file_pattern(examples.uri, split, task))
            for split in features.SPLITS
        }
        for task in expected
    }
    # One clip per image, per 1 s video and per 1 s WAV: everything good was written.
    assert written == expected
    assert examples.get_json_value_custom_property("clips_per_task") == expected
    for split in features.SPLITS:
        total = sum(per_split[split] for per_split in expected.values())
        assert examples.get_int_custom_property(executor_lib.clips_property_name(split)) == total
    with open(features.vocabulary_path(examples.uri, "shapes")) as f:
        assert f.read().split() == ["circle", "square"]

    assert quarantine.get_int_custom_property("quarantined") == 1
    (reason,) = quarantine.get_json_value_custom_property("quarantined_per_reason")
    assert reason in REASONS
    assert quarantine.get_json_value_custom_property("quarantined_per_task") == {
        "shapes": {reason: 1}
    }
    ((file, first_reason),) = quarantine.get_json_value_custom_property("first_bad")
    assert file.endswith(os.path.basename(BAD_IMAGE)) and first_reason == reason
    lines = [
        json.loads(line)
        for path in glob.glob(os.path.join(quarantine.uri, "*.jsonl"))
        for line in open(path)
        if '"reason"' in line
    ]
    assert [(os.path.basename(line["file"]), line["reason"]) for line in lines] == [
        ("notes.png", reason)
    ]


def test_executor_fails_naming_files_above_the_bad_fraction(tmp_path, corpus):
    data_root, _ = corpus
    strict = corpus_config_dict("unused", "")
    strict["ingestion"]["max_bad_fraction"] = 0.0
    with pytest.raises(IngestError, match="notes.png"):
        _run_executor(tmp_path, strict, data_root)


@pytest.mark.parametrize("compression, suffix", [("none", ".tfrecord"), ("gzip", ".gz")])
def test_statistics_gen_reads_the_records_in_either_compression(
    tmp_path, corpus, compression, suffix
):
    """TFX's readers pick gzip by the `.gz` suffix (tfx_bsl, Beam's ReadFromTFRecord): a real
    StatisticsGen counts every clip of both kinds of Examples artifact."""
    from tensorflow_metadata.proto.v0 import statistics_pb2
    from tfx.components.statistics_gen import executor as statistics_executor

    data_root, expected = corpus
    config = corpus_config_dict("unused", "")
    config["tasks"] = {"shapes": config["tasks"]["shapes"]}
    config["ingestion"]["compression"] = compression
    examples, _ = _run_executor(tmp_path, config, data_root)
    files = glob.glob(os.path.join(examples.uri, "Split-*", "*"))
    assert files and all(f.endswith(suffix) for f in files)
    with open(files[0], "rb") as f:
        assert (f.read(2) == b"\x1f\x8b") == (compression == "gzip")

    statistics = tfx.types.standard_artifacts.ExampleStatistics()
    statistics.uri = str(tmp_path / "statistics")
    statistics_executor.Executor().Do(
        {"examples": [examples]}, {"statistics": [statistics]}, {"exclude_splits": "[]"}
    )
    for split in features.SPLITS:
        path = os.path.join(statistics.uri, f"Split-{split}", "FeatureStats.pb")
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        with open(path, "rb") as f:
            stats.ParseFromString(f.read())
        assert stats.datasets[0].num_examples == expected["shapes"][split]
