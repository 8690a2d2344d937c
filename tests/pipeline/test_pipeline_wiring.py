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
        # Local runs: it reads this run's Examples to skip the model this run would retrain.
        "latest_blessed_model_resolver": {"DataValidationGate", "MediaExampleGen"},
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


def test_a_span_window_feeds_transform_and_the_trainer_through_tfx_rolling_range():
    """continuous.span_window: 3: Transform and the Trainer read TFX's rolling_range over
    every Examples MediaExampleGen wrote (earlier runs too), not this run's output channel;
    evaluation and serving checks stay on this run's span; the report gets the window."""
    from tfx.dsl.compiler import compiler
    from tfx.dsl.input_resolution import resolver_op

    from core import config as config_lib

    data = config_lib.apply_overrides(corpus_config_dict("data", ""), ["continuous.span_window=3"])
    pipeline = create_pipeline(
        config_lib.from_dict(data),
        pipeline_root="root",
        data_root="data",
        metadata_path="root/metadata.sqlite",
    )
    nodes = {component.id: component for component in pipeline.components}
    this_run = nodes["MediaExampleGen"].outputs["examples"]
    window = nodes["Trainer"].inputs["examples"]
    assert nodes["Transform"].inputs["examples"] is window
    assert nodes["ModelReport"].inputs["training_examples"] is window
    for node in ("Evaluator", "ServingValidator"):
        assert nodes[node].inputs["examples"] is this_run
    # TFX's rolling_range: the newest version of each of the 3 newest spans (LatestSpan),
    # run with as few spans as exist (SkipIfLessThanNSpans n=1).
    assert "LatestSpan(" in repr(window.output_node) and "n=3" in repr(window.output_node)
    assert isinstance(window.output_node, resolver_op.OpNode)
    (producer_channel,) = [n.wrapped for n in resolver_op.get_input_nodes(window.output_node)]
    assert producer_channel.producer_component_id == "MediaExampleGen"
    assert "MediaExampleGen" not in {n.id for n in nodes["Transform"].upstream_nodes}
    # The IR the local runner executes holds the rolling range as an input graph.
    ir = compiler.Compiler().compile(pipeline)
    trainer = next(n.pipeline_node for n in ir.nodes if n.pipeline_node.node_info.id == "Trainer")
    assert trainer.inputs.input_graphs


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
