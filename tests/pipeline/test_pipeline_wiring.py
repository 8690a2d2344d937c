"""create_pipeline's wiring and the local runner's summary, without running anything."""

from __future__ import annotations

from pipeline_corpus import corpus_config, corpus_config_dict

from components.media_example_gen.executor import MediaQuarantine
from pipeline import local_runner
from pipeline.pipeline import create_pipeline, stats_options


def test_stages_are_wired_in_order_behind_the_gate():
    config = corpus_config("data")
    pipeline = create_pipeline(
        config,
        pipeline_root="root",
        data_root="elsewhere",
        metadata_path="root/metadata.sqlite",
        beam_pipeline_args=["--direct_num_workers=2"],
    )
    nodes = {component.id: component for component in pipeline.components}
    upstream = {id: {n.id for n in node.upstream_nodes} for id, node in nodes.items()}
    assert upstream == {
        "MediaExampleGen": set(),
        "StatisticsGen": {"MediaExampleGen"},
        "MediaSchemaGen": {"StatisticsGen"},
        "ExampleValidator": {"StatisticsGen", "MediaSchemaGen"},
        "DataValidationGate": {"ExampleValidator", "StatisticsGen"},
        # Every model stage waits for the gate, even those that read none of its outputs.
        "Transform": {"DataValidationGate", "MediaExampleGen", "MediaSchemaGen"},
        "latest_blessed_model_resolver": {"DataValidationGate"},
        # Warm start: the Trainer's base_model is the latest blessed model.
        "Trainer": {
            "DataValidationGate",
            "MediaExampleGen",
            "MediaSchemaGen",
            "Transform",
            "latest_blessed_model_resolver",
        },
        "Evaluator": {
            "DataValidationGate",
            "MediaExampleGen",
            "MediaSchemaGen",
            "Trainer",
            "latest_blessed_model_resolver",
        },
        "ModelReport": {"DataValidationGate", "Evaluator", "MediaExampleGen", "Trainer"},
        "ServingValidator": {"DataValidationGate", "MediaExampleGen", "Trainer"},
        # Only a model both blessed (Evaluator) and infra-validated reaches the Pusher.
        "Pusher": {"DataValidationGate", "Evaluator", "ServingValidator"},
    }
    assert pipeline.components[-1].id == "Pusher"
    assert pipeline.beam_pipeline_args == ["--direct_num_workers=2"]
    assert nodes["MediaExampleGen"].exec_properties["data_root"] == "elsewhere"
    assert pipeline.metadata_connection_config.sqlite.filename_uri == "root/metadata.sqlite"
    # Without explicit args the config's apply.
    default = create_pipeline(config, pipeline_root="root", data_root="data")
    assert default.beam_pipeline_args == config.beam_pipeline_args


def test_warm_start_and_input_fingerprint_are_wired():
    from core import config as config_lib

    config = corpus_config("data")
    pipeline = create_pipeline(
        config, pipeline_root="root", data_root="data", input_fingerprint="abc"
    )
    nodes = {component.id: component for component in pipeline.components}
    assert "base_model" in nodes["Trainer"].inputs
    assert nodes["MediaExampleGen"].exec_properties["input_fingerprint"] == "abc"
    cold = config_lib.apply_overrides(
        corpus_config_dict("data", ""), ["continuous.warm_start=false"]
    )
    nodes = {
        c.id: c
        for c in create_pipeline(
            config_lib.from_dict(cold), pipeline_root="root", data_root="data"
        ).components
    }
    assert "base_model" not in nodes["Trainer"].inputs
    assert nodes["MediaExampleGen"].exec_properties["input_fingerprint"] is None


def test_no_cache_flag_turns_the_configured_cache_off():
    assert local_runner.use_cache(True, False) is True
    assert local_runner.use_cache(True, True) is False
    assert local_runner.use_cache(False, False) is False


def test_statistics_hold_every_configured_label_and_slice_per_task():
    options = stats_options(corpus_config("data"))
    assert options.num_rank_histogram_buckets == 8  # 4 tasks of 2 classes
    (spec,) = options.slicing_config.slicing_specs
    assert list(spec.feature_keys) == ["task/name"]


def test_summary_lists_tasks_reasons_and_artifacts():
    outputs = local_runner.RunOutputs(
        run_id="r1",
        artifacts=[
            local_runner.OutputArtifact(
                "MediaExampleGen",
                "examples",
                "Examples",
                "/a/examples",
                {"clips_per_task": {"shapes": {"eval": 2.0, "train": 4.0}}},
            ),
            local_runner.OutputArtifact(
                "MediaExampleGen",
                "quarantine",
                MediaQuarantine.TYPE_NAME,
                "/a/quarantine",
                {"quarantined": 3, "quarantined_per_task": {"beeps": {"missing_file": 3.0}}},
            ),
        ],
        completed_nodes=["MediaExampleGen"],
        failed_nodes=["StatisticsGen"],
    )
    text = local_runner.format_summary(outputs, "/a/metadata.sqlite")
    assert "  beeps: clips train 0, eval 0; quarantined missing_file 3" in text
    assert "  shapes: clips train 4, eval 2; quarantined none" in text
    assert "quarantined inputs are listed in /a/quarantine" in text
    assert "  MediaExampleGen.examples (Examples): /a/examples" in text
    assert f"  MediaExampleGen.quarantine ({MediaQuarantine.TYPE_NAME}): /a/quarantine" in text
    assert "failed: StatisticsGen" in text


def test_run_refuses_a_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: {}\n")
    from pipeline import cli

    assert cli.main(["run", "--config", str(bad)]) == 2
    assert "tasks" in capsys.readouterr().err
