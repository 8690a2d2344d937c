"""`ServingValidator`: TFX's InfraValidator for machines without a TF Serving binary.

TFX's own InfraValidator starts TF Serving in Docker or on Kubernetes, neither of which exists
on a laptop or in CI. This component does the same job with the project's TF-Serving-compatible
server machinery (serving/validation.py): it copies the trained model, writes TF Serving
warm-up requests made from one real eval example per task into it, loads it and sends them.
A model with VATT's embedding signatures (`embed_examples`, `embed_text`, `rank_captions`)
is asked those too, with an eval record that has both frames and a waveform.
Its output is a standard `InfraBlessing` carrying the warmed-up model (`has_model`), so the
standard Pusher pushes exactly the model that was validated, warm-up file included, and
refuses to push a model that failed.
"""

import glob
import logging
import os
import re

import tensorflow as tf
from tensorflow.core.example import example_pb2
from tfx import v1 as tfx
from tfx.types import standard_artifacts
from tfx.utils import io_utils, path_utils

from core import features
from media import fs
from serving import layout
from serving.embeddings import EMBED_SIGNATURE, RANK_SIGNATURE, TEXT_SIGNATURE
from serving.servable import LoadError, read_signature_defs
from serving.validation import InfraValidationError, validate_model

log = logging.getLogger("polyvit.serving_validator")

BLESSED_FILE, NOT_BLESSED_FILE = "INFRA_BLESSED", "INFRA_NOT_BLESSED"
# TFX's Pusher reads the pushed model from here when the InfraBlessing says `has_model`.
STAMPED_MODEL_DIR = "stamped_model"


def first_eval_examples(examples_uri: str, tasks: list) -> dict:
    """One serialized eval record per task, read from the Examples artifact."""
    found = {}
    for task in tasks:
        for path in sorted(
            glob.glob(features.task_file_pattern(examples_uri, features.EVAL, task))
        ):
            compression = fs.record_compression(path)
            records = tf.data.TFRecordDataset(path, compression_type=compression).take(1)
            found[task] = [bytes(r.numpy()) for r in records]
            if found[task]:
                break
        if not found.get(task):
            raise InfraValidationError(f"task {task!r}: no eval example to build a request from")
    return found


def task_names(examples_uri: str) -> list[str]:
    """Tasks are the vocabularies MediaExampleGen wrote beside the records."""
    vocab_dir = os.path.dirname(features.vocabulary_path(examples_uri, "x"))
    return sorted(os.path.splitext(n)[0] for n in tf.io.gfile.listdir(vocab_dir))


# Captions for the text signatures' warm-up: any words do (unknown ones are out of vocabulary).
WARMUP_CAPTIONS = (b"a person playing music", b"a dog running")
_EVAL_FILE = re.compile(r"^(.+)-\d{5}-of-\d{5}")


def eval_task_names(examples_uri: str) -> list[str]:
    """Every task with eval records, unlabelled ones too (they have no vocabulary)."""
    names = {
        found.group(1)
        for name in tf.io.gfile.listdir(features.split_dir(examples_uri, features.EVAL))
        if (found := _EVAL_FILE.match(name))
    }
    return sorted(names)


def _has_frames_and_waveform(serialized: bytes) -> bool:
    lists = example_pb2.SequenceExample.FromString(serialized).feature_lists.feature_list
    return bool(lists[features.IMAGE_ENCODED].feature) and bool(lists[features.WAVEFORM].feature)


def embedding_requests(model_path: str, examples_uri: str, model_name: str) -> dict:
    """Warm-up requests for the embedding signatures the model has (none: {}), from the first
    eval record of any task with both frames and a waveform (the pretraining layout)."""
    try:
        signatures = read_signature_defs(model_path)
    except LoadError:
        return {}  # validate_model says why the model cannot be loaded
    wanted = [s for s in (EMBED_SIGNATURE, TEXT_SIGNATURE, RANK_SIGNATURE) if s in signatures]
    if not wanted:
        return {}
    record = None
    for task in eval_task_names(examples_uri):
        try:
            (found,) = first_eval_examples(examples_uri, [task])[task]
        except InfraValidationError:  # empty files: another task may have records
            continue
        if _has_frames_and_waveform(found):
            record = found
            break
    if record is None and wanted != [TEXT_SIGNATURE]:
        raise InfraValidationError(
            f"the model has the signatures {wanted} but no task's eval records have both "
            f"{features.IMAGE_ENCODED} and {features.WAVEFORM} to build their requests from"
        )
    clips = [record] if record is not None else []  # empty only when not needed
    captions = layout.predict_request(model_name, TEXT_SIGNATURE, WARMUP_CAPTIONS, "captions")
    requests: dict = {}
    if TEXT_SIGNATURE in wanted:
        requests[TEXT_SIGNATURE] = captions
    if EMBED_SIGNATURE in wanted:
        requests[EMBED_SIGNATURE] = clips
    if RANK_SIGNATURE in wanted:
        rank = layout.predict_request(model_name, RANK_SIGNATURE, clips)
        rank.inputs["captions"].CopyFrom(captions.inputs["captions"])
        requests[RANK_SIGNATURE] = rank
    return requests


def stamp_and_validate(
    model_path: str, examples_uri: str, stamped: str, model_name: str
) -> tuple[str | None, int]:
    """Copies the model to `stamped`, adds warm-up requests, loads and asks it.

    Returns (None, requests sent) when the model answered, else (the reason, 0).
    """
    io_utils.copy_dir(model_path, stamped)
    try:
        requests = first_eval_examples(examples_uri, task_names(examples_uri))
        requests.update(embedding_requests(stamped, examples_uri, model_name))
        layout.write_warmup_requests(stamped, requests, model_name=model_name)
        validate_model(stamped, model_name=model_name)
    except InfraValidationError as e:
        return str(e), 0
    return None, len(requests)


@tfx.dsl.components.component
def ServingValidator(
    model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
    examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
    blessing: tfx.dsl.components.OutputArtifact[standard_artifacts.InfraBlessing],
    model_name: tfx.dsl.components.Parameter[str] = "polyvit",
) -> None:
    """Blesses the model only if it loads and answers one request per task signature."""
    failure, answered = stamp_and_validate(
        path_utils.serving_model_path(model.uri),
        examples.uri,
        os.path.join(blessing.uri, STAMPED_MODEL_DIR),
        model_name,
    )
    blessing.set_int_custom_property("blessed", int(failure is None))
    blessing.set_int_custom_property("has_model", int(failure is None))
    if failure is not None:
        blessing.set_string_custom_property("reason", failure[:2000])
        io_utils.write_string_file(os.path.join(blessing.uri, NOT_BLESSED_FILE), failure)
        log.warning("ServingValidator: the model is NOT pushed: %s", failure)
        return
    io_utils.write_string_file(os.path.join(blessing.uri, BLESSED_FILE), "")
    log.info("ServingValidator: the model loaded and answered %d warm-up requests", answered)
