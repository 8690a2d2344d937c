"""MediaExampleGen's executor: runs the Beam ingestion and records its counts in MLMD.

The decoding itself lives in `beam_ingest.ingest` (shared with `polyvit ingest`); this module
is the TFX edge: exec properties in (the IngestConfig slice and the data root), artifact
properties out, failure when too much is bad.
"""

from __future__ import annotations

import logging
from typing import Any

from tfx import v1 as tfx
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils

from components.media_example_gen import beam_ingest, spans
from core import config as config_lib
from core import features

log = logging.getLogger("polyvit.ingest")

EXAMPLES_KEY = "examples"
QUARANTINE_KEY = "quarantine"
CONFIG_KEY = "config"
DATA_ROOT_KEY = "data_root"
# Digest of the selected span's files (spans.input_fingerprint), set by local runs so that TFX's
# cache key changes when data arrives; "" (Kubeflow) leaves the span to be resolved at run time.
FINGERPRINT_KEY = "input_fingerprint"

# Custom properties (names are read back by pipeline/local_runner.py through MLMD).
CLIPS_PER_TASK = "clips_per_task"  # JSON {task: {split: count}}
INPUTS = "inputs"  # int: source clips listed, good and bad
QUARANTINED_TOTAL = "quarantined"  # int
QUARANTINED_PER_REASON = "quarantined_per_reason"  # JSON {reason: count}
QUARANTINED_PER_TASK = "quarantined_per_task"  # JSON {task: {reason: count}}
SPAN_PROPERTY = "span"  # tfx.components.example_gen.utils.SPAN_PROPERTY_NAME
VERSION_PROPERTY = "version"
REUSED_PROPERTY = "decode_cache_reused"  # int: media files not decoded again
FIRST_BAD = "first_bad"  # JSON [[file, reason], ...]
# TFX's name for TFRecord files, gzip or not: despite the name, its readers (tfx_bsl, Beam's
# ReadFromTFRecord) pick the compression per file by the `.gz` suffix, so uncompressed
# `.tfrecord` files under this format read as such (tests/pipeline checks with StatisticsGen).
_FILE_FORMAT = "tfrecords_gzip"


class MediaQuarantine(tfx.dsl.Artifact):
    """Inputs MediaExampleGen refused: JSON lines of {file, task, split, reason, detail}."""

    # KFP v2 needs custom type names of the form `<namespace>.<Name>`.
    TYPE_NAME = "components.MediaQuarantine"  # <module>.<Class>: KFP v2 imports it by name


def clips_property_name(split: str) -> str:
    """Int property with the clips of all tasks in one split: `clips_train`, `clips_eval`."""
    return f"clips_{split}"


def config_from_properties(exec_properties: dict[str, Any]) -> config_lib.IngestConfig:
    """The IngestConfig the pipeline was built with, rebuilt strictly (a key the slice does not
    know, or a value of the wrong type, fails naming it)."""
    where = f"MediaExampleGen exec property {CONFIG_KEY!r}"
    if CONFIG_KEY not in exec_properties:
        raise config_lib.ConfigError(f"{where}: missing")
    return config_lib.slice_from_json(exec_properties[CONFIG_KEY], config_lib.IngestConfig, where)


def examples_properties(clips: dict[tuple[str, str], int]) -> tuple[dict, dict[str, int]]:
    """(clips per task and split as nested JSON, clips per split) for the Examples artifact."""
    per_task: dict[str, dict[str, int]] = {}
    per_split = {split: 0 for split in features.SPLITS}
    for (task, split), count in sorted(clips.items()):
        per_task.setdefault(task, {s: 0 for s in features.SPLITS})[split] = count
        per_split[split] = per_split.get(split, 0) + count
    return per_task, per_split


def quarantine_per_task(by_task: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """{(task, reason): n} -> {task: {reason: n}}, sorted for stable properties."""
    nested: dict[str, dict[str, int]] = {}
    for (task, reason), count in sorted(by_task.items()):
        nested.setdefault(task, {})[reason] = count
    return nested


def record_properties(examples, quarantine, summary: beam_ingest.IngestSummary) -> None:
    """Writes the summary's counts as custom properties of both output artifacts."""
    per_task, per_split = examples_properties(summary.written)
    examples.set_json_value_custom_property(CLIPS_PER_TASK, per_task)
    for split, count in per_split.items():
        examples.set_int_custom_property(clips_property_name(split), count)
    examples.set_int_custom_property(INPUTS, summary.inputs)
    quarantine.set_int_custom_property(QUARANTINED_TOTAL, summary.bad_inputs)
    quarantine.set_json_value_custom_property(
        QUARANTINED_PER_REASON, dict(sorted(summary.quarantined.items()))
    )
    quarantine.set_json_value_custom_property(
        QUARANTINED_PER_TASK, quarantine_per_task(summary.quarantined_by_task)
    )
    quarantine.set_json_value_custom_property(
        FIRST_BAD, [[file, reason] for file, reason in summary.first_bad]
    )


def decode_cache_dir(setting: str, examples_uri: str) -> str:
    """Where the decode cache is: ingestion.decode_cache, "" for `<pipeline_root>/decode_cache`
    (the Examples URI is `<pipeline_root>/<node>/examples/<execution>`), "off" for none."""
    if setting == "off":
        return ""
    if setting:
        return setting
    pipeline_root = examples_uri.rstrip("/")
    for _ in range(3):
        pipeline_root = pipeline_root.rsplit("/", 1)[0]
    return f"{pipeline_root}/decode_cache"


def set_span_properties(examples, span: int, version: int | None) -> None:
    """Span and version as TFX's ExampleGen driver writes them: the `span` and `version` custom
    properties (what SpanRangeStrategy reads) and the Examples type's own properties."""
    examples.set_int_custom_property(SPAN_PROPERTY, span)
    examples.span = span
    if version is not None:  # TFX too leaves `version` out when the pattern names none
        examples.set_int_custom_property(VERSION_PROPERTY, version)
        examples.version = version


class Executor(base_beam_executor.BaseBeamExecutor):
    """Decodes the IngestConfig's tasks with Beam into the `examples` and `quarantine`
    artifacts."""

    def Do(
        self,
        input_dict: dict[str, list],
        output_dict: dict[str, list],
        exec_properties: dict[str, Any],
    ) -> None:
        config = config_from_properties(exec_properties)
        data_root = exec_properties[DATA_ROOT_KEY]
        # Resolved here, at run time, so a scheduled run takes the newest span by itself.
        selection = spans.select(config, data_root)
        if selection.spanned:
            log.info("MediaExampleGen: span %d, version %s", selection.span, selection.version)
        examples = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        quarantine = artifact_utils.get_single_instance(output_dict[QUARANTINE_KEY])
        summary = beam_ingest.ingest(
            spans.with_roots(config, selection),
            output_dir=examples.uri,
            quarantine_dir=quarantine.uri,
            # The pipeline's (create_pipeline passes the config's beam_pipeline_args there).
            beam_pipeline_args=list(self._beam_pipeline_args),
            data_root=data_root,
            cache_dir=decode_cache_dir(config.ingestion.decode_cache, examples.uri),
        )
        examples.set_int_custom_property(REUSED_PROPERTY, summary.reused)
        set_span_properties(examples, selection.span, selection.version)
        examples.split_names = artifact_utils.encode_split_names(list(features.SPLITS))
        examples_utils.set_payload_format(
            examples, example_gen_pb2.PayloadFormat.FORMAT_TF_SEQUENCE_EXAMPLE
        )
        examples_utils.set_file_format(examples, _FILE_FORMAT)
        record_properties(examples, quarantine, summary)
        log.info("MediaExampleGen: %s", summary.describe())
        # Fails the execution (nothing is published) when the bad fraction passes
        # ingestion.max_bad_fraction; the message names the first bad files and reasons.
        summary.check()
