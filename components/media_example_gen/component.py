"""The MediaExampleGen TFX component: raw media of every task -> one `Examples` artifact.

Parameters: the ingestion's slice of the config (`core.config.IngestConfig`: each task's name,
modality, label type and data source, and the `ingestion` section) and the data root. Nothing
else of the config is in its execution properties, so editing training, serving or Kubeflow
settings leaves its cache key, and a cached execution, as they were.

Outputs:
  examples    `Examples` with splits `train` and `eval` of TFRecords of DMVR-layout
              SequenceExamples (payload format FORMAT_TF_SEQUENCE_EXAMPLE, so StatisticsGen,
              Transform and the Trainer read them as such), uncompressed `.tfrecord` files by
              default or gzip `.gz` ones (`ingestion.compression`), label vocabularies under
              `labels/`.
  quarantine  `MediaQuarantine`: JSON lines, one per refused input, with its reason.
Counts per task and split, and per reason, are custom properties of the two artifacts.
"""

from __future__ import annotations

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec

from components.media_example_gen import executor
from components.media_example_gen.executor import (
    CONFIG_KEY,
    DATA_ROOT_KEY,
    EXAMPLES_KEY,
    FINGERPRINT_KEY,
    QUARANTINE_KEY,
    MediaQuarantine,
)
from core import config as config_lib

__all__ = ["MediaExampleGen", "MediaExampleGenSpec", "MediaQuarantine"]


class MediaExampleGenSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        # JSON of the IngestConfig (core.config.slice_to_json, sorted keys); the executor
        # rebuilds it strictly.
        CONFIG_KEY: component_spec.ExecutionParameter(type=str),
        # Folder (or bucket) the tasks' data paths are relative to.
        DATA_ROOT_KEY: component_spec.ExecutionParameter(type=str),
        # Only in the cache key: a digest of the input files (spans.input_fingerprint).
        FINGERPRINT_KEY: component_spec.ExecutionParameter(type=str, optional=True),
    }
    INPUTS: dict[str, component_spec.ChannelParameter] = {}
    OUTPUTS = {
        EXAMPLES_KEY: component_spec.ChannelParameter(type=tfx.types.standard_artifacts.Examples),
        QUARANTINE_KEY: component_spec.ChannelParameter(type=MediaQuarantine),
    }


class MediaExampleGen(tfx.types.BaseBeamComponent):
    """Decodes every task of an IngestConfig into DMVR SequenceExamples, quarantining bad media.

    `config`: `core.config.ingest_config(config)`; `data_root`: the folder (or bucket, or a
    Kubeflow RuntimeParameter) the tasks' data paths are relative to; `input_fingerprint`:
    `spans.input_fingerprint(config, data_root)` where the pipeline is built next to the data
    (local runs), so new files or spans change the cache key; the span itself is chosen at run
    time (`ingestion.span`, else the newest).

    `beam_pipeline_args` reach the executor through the pipeline (or
    `.with_beam_pipeline_args`), so the decoding runs on any Beam runner.
    """

    SPEC_CLASS = MediaExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self, config: config_lib.IngestConfig, data_root: str, input_fingerprint: str = ""
    ):
        if not isinstance(config, config_lib.IngestConfig):
            raise TypeError(
                "MediaExampleGen takes the ingestion's slice: "
                f"core.config.ingest_config(config), not a {type(config).__name__}"
            )
        spec = MediaExampleGenSpec(
            config=config_lib.slice_to_json(config),
            data_root=data_root,
            input_fingerprint=input_fingerprint or None,
            examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples),
            quarantine=tfx.dsl.Channel(type=MediaQuarantine),
        )
        super().__init__(spec=spec)
