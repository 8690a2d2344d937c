"""End to end under LocalDagRunner: `polyvit run` on tiny real media, and the gate stopping a
run on bad records before any later stage starts."""

# No `from __future__ import annotations`: the @component decorator below reads real annotations.
import os

import pytest
import tensorflow_data_validation as tfdv
import yaml
from pipeline_corpus import corpus_config_dict, write_corpus
from pipeline_records import good_split, records_config_dict, sequence_example, write_split
from tfx import v1 as tfx
from tfx.proto import example_gen_pb2

from components.data_validation import checks
from components.data_validation.checks import DataValidationError
from core import config as config_lib
from core import features
from pipeline import cli, local_runner
from pipeline.pipeline import _after_gate, data_stages

pytestmark = pytest.mark.e2e


def test_polyvit_run_ingests_validates_and_summarises(tmp_path, capsys):
    data_root, pipeline_root = str(tmp_path / "data"), str(tmp_path / "run")
    expected = write_corpus(data_root)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(corpus_config_dict("elsewhere", "elsewhere")))

    argv = ["run", "--config", str(config_path), "--data-root", data_root]
    roots = [f"pipeline_root={pipeline_root}", f"serving.push_dir={pipeline_root}/serving"]
    assert cli.main(argv + [x for setting in roots for x in ("--set", setting)]) == 0

    metadata = os.path.join(pipeline_root, local_runner.METADATA_FILE)
    outputs = local_runner.read_run_outputs(metadata, "polyvit-test")
    assert outputs.failed_nodes == []
    assert outputs.completed_nodes[-1] == "Pusher"
    produced = {(a.node, a.key): a for a in outputs.artifacts}
    assert {
        ("MediaExampleGen", "examples"),
        ("MediaExampleGen", "quarantine"),
        ("StatisticsGen", "statistics"),
        ("MediaSchemaGen", "schema"),
        ("ExampleValidator", "anomalies"),
        ("Trainer", "model"),
        ("Evaluator", "blessing"),
        ("Pusher", "pushed_model"),
    } <= set(produced)
    examples = produced[("MediaExampleGen", "examples")]
    assert examples.uri.startswith(pipeline_root)
    assert examples.properties["clips_per_task"] == expected
    assert examples.properties["payload_format"] == "FORMAT_TF_SEQUENCE_EXAMPLE"
    assert produced[("MediaExampleGen", "quarantine")].properties["quarantined"] == 1
    assert produced[("ExampleValidator", "anomalies")].properties["blessed"] == {
        "train": 1.0,
        "eval": 1.0,
    }
    schema = tfdv.load_schema_text(
        os.path.join(produced[("MediaSchemaGen", "schema")].uri, "schema.pbtxt")
    )
    domains = {d.name: sorted(d.value) for d in schema.string_domain}
    assert domains[checks.LABEL_DOMAIN] == sorted(
        ["circle", "square", "left", "right", "low", "high", "up", "down"]
    )
    assert domains[checks.TASK_DOMAIN] == sorted(expected)
    assert schema.tensor_representation_group[""].tensor_representation[features.WAVEFORM]
    statistics = produced[("StatisticsGen", "statistics")].uri
    for split in features.SPLITS:
        assert os.listdir(os.path.join(statistics, f"Split-{split}"))

    printed = capsys.readouterr().out
    for task, per_split in expected.items():
        counts = f"train {per_split['train']}, eval {per_split['eval']}"
        assert f"  {task}: clips {counts}; quarantined " in printed
    assert examples.uri in printed and metadata in printed
    # Last, the wall time of every stage of this run, read back from ML Metadata.
    table = printed[printed.index("wall time per stage (ML Metadata):") :].splitlines()
    rows = {line.split()[0]: line.split() for line in table[2:]}
    assert [s.node for s in outputs.stages] == list(rows)[:-1] and list(rows)[-1] == "run"
    for node in ("MediaExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"):
        assert rows[node][1] == "complete", rows[node]
        float(rows[node][-1])  # seconds


@tfx.dsl.components.component
def TrainingStandIn() -> None:
    """Stands for the model stages wired after the gate; it must never run on bad data."""


def test_gate_stops_the_run_before_training_on_bad_records(tmp_path):
    # MediaExampleGen quarantines an eval label unseen in train itself, so records from another
    # producer come in through ImportExampleGen: the data stages must catch them as well.
    records = str(tmp_path / "records")
    write_split(records, features.TRAIN, good_split(features.TRAIN))
    bad_eval = good_split(features.EVAL) + [sequence_example("digits", ["seven"], frames=1)]
    write_split(records, features.EVAL, bad_eval)
    example_gen = tfx.components.ImportExampleGen(
        input_base=records,
        input_config=example_gen_pb2.Input(
            splits=[
                example_gen_pb2.Input.Split(name=split, pattern=f"{split}/*")
                for split in features.SPLITS
            ]
        ),
        payload_format=example_gen_pb2.FORMAT_TF_SEQUENCE_EXAMPLE,
    )
    data = data_stages(example_gen.outputs["examples"], config_lib.from_dict(records_config_dict()))
    stand_in = TrainingStandIn()
    metadata = str(tmp_path / "metadata.sqlite")
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="polyvit-gate",
        pipeline_root=str(tmp_path / "run"),
        components=[example_gen, *data.components, *_after_gate(data.gate, [stand_in])],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata
        ),
    )
    with pytest.raises(DataValidationError) as failure:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    message = str(failure.value)
    assert "training will not start" in message
    assert "split eval: clip/label/text: Unexpected string values" in message and "seven" in message
    assert "task digits: labels never seen in the task's train split: ['seven']" in message

    outputs = local_runner.read_run_outputs(metadata, "polyvit-gate")
    assert outputs.failed_nodes == ["DataValidationGate"]
    assert "TrainingStandIn" not in outputs.completed_nodes
    assert "ExampleValidator" in outputs.completed_nodes
    anomalies = next(a for a in outputs.artifacts if a.type_name == "ExampleAnomalies")
    assert anomalies.properties["blessed"] == {"train": 1.0, "eval": 0.0}
