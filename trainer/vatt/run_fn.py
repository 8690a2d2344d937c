"""The pretraining Trainer's entry point (`trainer.vatt.run_fn.run_fn`) and the hook by which
the co-training Trainer starts from its output (`base_model`).

Pretraining stage: reads the `pretraining.task` records of the train split, the caption
vocabulary Transform computed (asset `caption_vocabulary`), trains (checkpoints in the
model_run_dir: a retried execution resumes), then writes to its `model` output
(serving_model_dir) the final checkpoint, the vocabulary, the embedding SavedModel
(trainer/vatt/embed_export.py, in `embeddings/1/`) and `retrieval.json`: zero-shot
video->audio and video->text retrieval on the eval split.
"""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

from core import config as config_lib
from core import features
from trainer import strategies
from trainer.vatt import pretrain, transfer
from transforms import captions

log = logging.getLogger("polyvit.vatt")

RETRIEVAL_FILE = "retrieval.json"


def _task_pattern(files: list[str], task: str, split: str) -> str:
    examples_uri = os.path.dirname(os.path.normpath(files[0].rstrip("*")))
    return features.task_file_pattern(examples_uri, split, task)


def caption_vocabulary(transform_output: str | None) -> list[str]:
    if not transform_output:
        raise ValueError("pretraining: the Trainer needs Transform's graph (caption vocabulary)")
    from transforms.preprocessing import read_transform_stats

    path = read_transform_stats(transform_output)["caption_vocabulary"]
    if not path:
        raise FileNotFoundError(
            f"{transform_output}: no {captions.VOCABULARY_ASSET} asset; Transform computes it "
            "only when pretraining.enabled is set"
        )
    return captions.read_vocabulary(path)


def run_fn(fn_args) -> None:
    config = config_lib.from_custom_config(
        fn_args.custom_config, config_lib.TrainerConfig, "vatt run_fn"
    )
    task = config.pretraining.task
    train = _task_pattern(fn_args.train_files, task, features.TRAIN)
    evaluate = _task_pattern(fn_args.eval_files, task, features.EVAL)
    vocabulary = caption_vocabulary(getattr(fn_args, "transform_output", None))
    word_embeddings = config.pretraining.word_embeddings
    result = pretrain.pretrain(
        config,
        os.path.join(fn_args.model_run_dir, "checkpoints"),
        train,
        vocabulary,
        strategy=strategies.resolve_strategy(config.training),
        word_embeddings_path=word_embeddings,
    )
    out = fn_args.serving_model_dir
    pretrain.save_vocabulary(out, vocabulary)
    tf.train.Checkpoint(model=result.model).save(os.path.join(out, "vatt"))
    from trainer.vatt.embed_export import export_embeddings

    log.info("embedding signatures: %s", export_embeddings(result.model, config, vocabulary, out))
    metrics = pretrain.zero_shot_retrieval(
        pretrain.embed_split(result.model, config, evaluate, vocabulary)
    )
    probe_task = config.pretraining.probe_task
    if probe_task:
        from trainer.vatt.probe import linear_probe

        metrics["linear_probe"] = linear_probe(
            result.model,
            config,
            _task_pattern(fn_args.train_files, probe_task, features.TRAIN),
            _task_pattern(fn_args.eval_files, probe_task, features.EVAL),
        )
    with tf.io.gfile.GFile(os.path.join(out, RETRIEVAL_FILE), "w") as f:
        json.dump({"steps": result.step, "history": result.history, **metrics}, f, indent=1)
    log.info("pretrained %d steps; zero-shot retrieval %s", result.step, metrics)


def finetune_run_fn(fn_args) -> None:
    """The co-training Trainer's entry point when pretraining is on: trainer.run_fn.run_fn
    with the model built from the pretraining stage's output (fn_args.base_model), and the
    pretrained model's embedding signatures in the exported (pushed) model."""
    from trainer.run_fn import run_fn as cotrain_run_fn

    config = config_lib.from_custom_config(
        fn_args.custom_config, config_lib.TrainerConfig, "vatt finetune_run_fn"
    )
    if not getattr(fn_args, "base_model", None):
        raise ValueError("finetune_run_fn: no base_model (the Pretrainer's model output)")
    cotrain_run_fn(
        fn_args,
        build_model_fn=build_from_base_model(fn_args.base_model, config),
        extra_modules_fn=lambda: embedding_modules(fn_args.base_model, config),
    )


def embedding_modules(base_model: str, config: config_lib.TrainerConfig) -> dict:
    """{"vatt_embeddings": the embedding module (trainer/vatt/embed_export.py) of the whole
    pretrained model}, for the fine-tuned model's export.

    The pretrained encoder, not the fine-tuned one: the video, audio and text spaces were
    learnt together, and fine-tuning moves only the video path (with no audio or text loss to
    keep it aligned), and with `backbone: shared` the encoder that audio and text go through
    too; so the served vectors are those the Pretrainer's retrieval figures describe."""
    from trainer.vatt import pretrain
    from trainer.vatt.embed_export import EmbeddingModule

    vatt = transfer.load_pretrained(base_model, config)
    vocabulary = pretrain.read_saved_vocabulary(base_model)
    return {"vatt_embeddings": EmbeddingModule(vatt, config, vocabulary)}


def build_from_base_model(base_model: str, config: config_lib.TrainerConfig):
    """A `build_model_fn` for train_loop.train: the co-training model, then the configured
    parts of the pretrained model (trainer.vatt.transfer) copied in. A resumed run's own
    checkpoint is restored after this and so takes precedence."""

    from trainer.model import build_model

    def build(trainer_config):
        model = build_model(trainer_config.model, trainer_config.tasks, trainer_config.inputs)
        vatt = transfer.load_pretrained(base_model, config)
        transfer.carry_over(vatt, model, list(config.pretraining.carry_over))
        return model

    return build
