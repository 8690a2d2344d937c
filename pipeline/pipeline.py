"""`create_pipeline`: the TFX pipeline, wiring only (the same for every orchestrator).

Each stage receives only its slice of the config (core/config.py: `ingest_config`,
`transform_config`, ...) or the plain values it uses, so that an edit to one stage's settings
(serving.port, kubeflow.image) leaves the other stages' execution properties, hence their TFX
cache keys, unchanged.

Stages, in order:
  MediaExampleGen      raw media of every task -> Examples (train/eval) + MediaQuarantine
  StatisticsGen        TFDV statistics per split, and per task (slices)
  MediaSchemaGen       the curated data contract, core/schema/schema.pbtxt, plus the train
                       labels and task names as domains (not ImportSchemaGen: it copies a path
                       fixed at compile time, which does not exist inside a Kubeflow container)
  ExampleValidator     statistics vs. schema -> ExampleAnomalies
  DataValidationGate   fails the run on any anomaly
  --- model stages, none of which starts on data that failed validation (`_after_gate`) ---
  Transform            sorted label vocabularies per task, log-mel audio mean/std (analysis
                       only: materialize=False, video is too large to copy)
  Pretrainer           optional (`pretraining.enabled`): VATT self-supervised pretraining on a
                       video task's frames, soundtrack and captions (trainer/vatt/run_fn.py);
                       its output is the Trainer's base_model
  Trainer              co-trains the one model on every task (trainer/run_fn.py), exports it
  Resolver             the latest blessed model, the baseline for change thresholds
  Evaluator            TFMA per task: value thresholds, and no worse than the baseline
  ModelReport          HTML + PNG: per-task metrics, curves, confusion matrices, the decision
  ServingValidator     the model loads in the serving machinery and answers warm-up requests
  Pusher               only a model both blessed and infra-validated reaches push_dir
"""

from __future__ import annotations

import dataclasses
import json
import os

import tensorflow_data_validation as tfdv
from tfx import v1 as tfx
from tfx_bsl.public.proto import slicing_spec_pb2

from components.data_validation.component import DataValidationGate, MediaSchemaGen
from components.evaluation.config import make_eval_config
from components.media_example_gen.component import MediaExampleGen
from components.model_report.component import ModelReport, report_config_json
from components.serving_validator.component import ServingValidator
from core import features
from core.config import (
    Config,
    ingest_config,
    to_custom_config,
    trainer_config,
    transform_config,
)
from pipeline import accelerators


def stats_options(config: Config) -> tfdv.StatsOptions:
    """TFDV options: statistics per task too, and rank histograms that hold every label.

    The gate checks each task's slice (frames, waveform, labels per task). TFDV finds
    unexpected label values (and MediaSchemaGen the train labels) in the rank histogram, so it
    must have room for every class of every task; the gate reports a split whose labels
    overflow it.
    """
    total_classes = sum(task.num_classes for task in config.tasks)
    per_task = slicing_spec_pb2.SlicingSpec(feature_keys=[features.TASK])
    return tfdv.StatsOptions(
        num_rank_histogram_buckets=total_classes,
        slicing_config=slicing_spec_pb2.SlicingConfig(slicing_specs=[per_task]),
    )


@dataclasses.dataclass
class DataStages:
    statistics_gen: tfx.components.StatisticsGen
    schema_gen: tfx.types.BaseNode
    example_validator: tfx.components.ExampleValidator
    gate: tfx.types.BaseNode

    @property
    def components(self) -> list[tfx.types.BaseNode]:
        return [
            self.statistics_gen,
            self.schema_gen,
            self.example_validator,
            self.gate,
        ]


def data_stages(examples: tfx.types.BaseChannel, config: Config) -> DataStages:
    """Statistics, schema, validation and the gate for any channel of SequenceExamples."""
    statistics_gen = tfx.components.StatisticsGen(
        examples=examples, stats_options=stats_options(config)
    )
    schema_gen = MediaSchemaGen(
        statistics=statistics_gen.outputs["statistics"],
        task_names=json.dumps([task.name for task in config.tasks]),
    )
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    gate = DataValidationGate(
        anomalies=example_validator.outputs["anomalies"],
        statistics=statistics_gen.outputs["statistics"],
        task_modalities=json.dumps({task.name: task.modality for task in config.tasks}),
        unlabelled_tasks=json.dumps([task.name for task in config.tasks if not task.labelled]),
    )
    return DataStages(statistics_gen, schema_gen, example_validator, gate)


def _after_gate(gate: tfx.types.BaseNode, stages: list) -> list:
    """Makes every stage wait for the gate, even those that read no gate output."""
    for stage in stages:
        stage.add_upstream_node(gate)
    return stages


def model_stages(
    config: Config,
    examples: tfx.types.BaseChannel,
    schema: tfx.types.BaseChannel,
    train_args=None,
) -> list[tfx.types.BaseNode]:
    """Transform -> Trainer -> Resolver -> Evaluator -> ModelReport -> ServingValidator -> Pusher.

    `train_args`: a TrainArgs proto or a runtime parameter (Kubeflow runs set the steps per run).
    """
    transform = tfx.components.Transform(
        examples=examples,
        schema=schema,
        preprocessing_fn="transforms.preprocessing.preprocessing_fn",
        custom_config=to_custom_config(transform_config(config)),
        materialize=False,
        disable_statistics=True,
        splits_config=tfx.proto.SplitsConfig(analyze=[features.TRAIN]),
    )
    # Where the Trainer runs (kubeflow.trainer_accelerator) decides the strategy when the
    # config leaves it at `default`: a TPU slice gets TPUStrategy, several GPUs MirroredStrategy.
    strategy = accelerators.strategy_for(config.kubeflow, config.training)
    # The Trainer receives its slice only, so serving, evaluation or kubeflow edits leave its
    # execution properties (and its resume fingerprint) as they are.
    trainer_slice = dataclasses.replace(
        trainer_config(config), training=dataclasses.replace(config.training, strategy=strategy)
    )
    pretrainer = _pretrainer(config, examples, schema, transform, trainer_slice)
    resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    # The Trainer's base_model: the Pretrainer's model when VATT pretraining is on (fine-tuning
    # starts from it), else the latest blessed model when warm starts are on (continuous).
    if pretrainer:
        warm = {"base_model": pretrainer.outputs["model"]}
    elif config.continuous.warm_start:
        warm = {"base_model": resolver.outputs["model"]}
    else:
        warm = {}
    trainer = accelerators.trainer_component_class(config)(
        run_fn="trainer.vatt.run_fn.finetune_run_fn" if pretrainer else "trainer.run_fn.run_fn",
        examples=examples,
        schema=schema,
        transform_graph=transform.outputs["transform_graph"],
        train_args=train_args or tfx.proto.TrainArgs(num_steps=config.training.steps),
        eval_args=tfx.proto.EvalArgs(num_steps=config.training.eval_steps),
        custom_config={
            **to_custom_config(trainer_slice),
            **accelerators.trainer_custom_config(config),
        },
        **warm,
    )
    evaluator = tfx.components.Evaluator(
        examples=examples,
        model=trainer.outputs["model"],
        baseline_model=resolver.outputs["model"],
        schema=schema,
        eval_config=make_eval_config(config),
        example_splits=[features.EVAL],
    )
    report = ModelReport(
        evaluation=evaluator.outputs["evaluation"],
        blessing=evaluator.outputs["blessing"],
        model=trainer.outputs["model"],
        model_run=trainer.outputs["model_run"],
        examples=examples,
        config_json=report_config_json(config),
        # Only with pretraining: its retrieval and linear-probe figures join the report.
        **({"pretrained_model": pretrainer.outputs["model"]} if pretrainer else {}),
    )
    serving_validator = ServingValidator(
        model=trainer.outputs["model"],
        examples=examples,
        model_name=config.serving.model_name,
    )
    # TF Serving's layout: <push_dir>/<model_name>/<integer version>/saved_model.pb. Given the
    # infra blessing and no model, the Pusher pushes the validated model with its warm-up file.
    pusher = tfx.components.Pusher(
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=serving_validator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=os.path.join(config.serving.push_dir, config.serving.model_name)
            )
        ),
    )
    stages = [transform, resolver, trainer, evaluator, report, serving_validator, pusher]
    return stages[:1] + [pretrainer] + stages[1:] if pretrainer else stages


def _pretrainer(config: Config, examples, schema, transform, trainer_slice):
    """VATT's optional pretraining Trainer (trainer/vatt/run_fn.py), or None when
    `pretraining.enabled` is off; its model output is the co-training Trainer's base_model."""
    if not config.pretraining.enabled:
        return None
    return (
        accelerators.trainer_component_class(config)(
            run_fn="trainer.vatt.run_fn.run_fn",
            examples=examples,
            schema=schema,
            transform_graph=transform.outputs["transform_graph"],
            train_args=tfx.proto.TrainArgs(num_steps=config.pretraining.steps),
            eval_args=tfx.proto.EvalArgs(num_steps=0),
            custom_config={
                **to_custom_config(trainer_slice),
                **accelerators.trainer_custom_config(config),
            },
        )
    ).with_id("Pretrainer")


def create_pipeline(
    config: Config,
    *,
    pipeline_root: str,
    data_root: str,
    metadata_path: str | None = None,
    beam_pipeline_args: list[str] | None = None,
    enable_cache: bool = False,
    runtime_parameters: dict | None = None,
    input_fingerprint: str = "",
) -> tfx.dsl.Pipeline:
    """The pipeline for `config`. `metadata_path`: a SQLite ML Metadata file (local runs).

    `input_fingerprint` (local runs, `spans.input_fingerprint`): a digest of the files of the
    span to ingest, so that with `enable_cache` new data re-runs MediaExampleGen and what
    follows, while unchanged data and settings skip every stage. Kubeflow leaves it empty: the
    span (the newest, unless ingestion.span says) is resolved when the run starts.

    `runtime_parameters` (Kubeflow): `data_root` and `train_args` RuntimeParameters that a user
    sets per run; they replace the config's values.
    """
    runtime_parameters = runtime_parameters or {}
    example_gen = MediaExampleGen(
        ingest_config(config),
        data_root=runtime_parameters.get("data_root", data_root),
        input_fingerprint=input_fingerprint,
    )
    data = data_stages(example_gen.outputs["examples"], config)
    models = model_stages(
        config,
        example_gen.outputs["examples"],
        data.schema_gen.outputs["schema"],
        train_args=runtime_parameters.get("train_args"),
    )
    components = [example_gen, *data.components, *_after_gate(data.gate, models)]
    metadata = (
        tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
        if metadata_path
        else None
    )
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata,
        beam_pipeline_args=(
            config.beam_pipeline_args if beam_pipeline_args is None else beam_pipeline_args
        ),
    )
