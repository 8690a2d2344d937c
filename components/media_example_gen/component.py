"""The MediaExampleGen TFX component: raw media of every task -> one `Examples` artifact.

Outputs:
  examples    `Examples` with splits `train` and `eval` of gzip TFRecords of DMVR-layout
              SequenceExamples (payload format FORMAT_TF_SEQUENCE_EXAMPLE, so StatisticsGen,
              Transform and the Trainer read them as such), label vocabularies under `labels/`.
  quarantine  `MediaQuarantine`: JSON lines, one per refused input, with its reason.
Counts per task and split, and per reason, are custom properties of the two artifacts.
"""

from __future__ import annotations

import json

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec

from components.media_example_gen import executor
from components.media_example_gen.executor import (
    CONFIG_KEY,
    DATA_ROOT_KEY,
    EXAMPLES_KEY,
    QUARANTINE_KEY,
    MediaQuarantine,
)
from core import config as config_lib

__all__ = ["MediaExampleGen", "MediaExampleGenSpec", "MediaQuarantine"]


class MediaExampleGenSpec(component_spec.ComponentSpec):
    PARAMETERS = {
        # JSON of core.config.to_dict: the executor rebuilds (and re-validates) the Config.
        CONFIG_KEY: component_spec.ExecutionParameter(type=str),
        # Folder (or bucket) the tasks' data paths are relative to.
        DATA_ROOT_KEY: component_spec.ExecutionParameter(type=str),
    }
    INPUTS = {}
    OUTPUTS = {
        EXAMPLES_KEY: component_spec.ChannelParameter(type=tfx.types.standard_artifacts.Examples),
        QUARANTINE_KEY: component_spec.ChannelParameter(type=MediaQuarantine),
    }


class MediaExampleGen(tfx.types.BaseBeamComponent):
    """Decodes every task of a Config into DMVR SequenceExamples, quarantining bad media.

    `beam_pipeline_args` reach the executor through the pipeline (or
    `.with_beam_pipeline_args`), so the decoding runs on any Beam runner.
    """

    SPEC_CLASS = MediaExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, config: config_lib.Config, data_root: str | None = None):
        spec = MediaExampleGenSpec(
            config=json.dumps(config_lib.to_dict(config), sort_keys=True),
            data_root=config.data_root if data_root is None else data_root,
            examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples),
            quarantine=tfx.dsl.Channel(type=MediaQuarantine),
        )
        super().__init__(spec=spec)
