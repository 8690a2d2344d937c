"""VATT pretraining: the training loop of the pretraining stage, and embedding an eval split.

`pretrain` builds the model under the strategy, feeds it per-replica batches of the
pretraining task's records (transforms.vatt_inputs), minimises the weighted NCE + MIL-NCE
(trainer.vatt.losses, negatives from the global batch) with Adam, and checkpoints every
`training.checkpoint_every` steps with the step counter, so a restarted run resumes where its
last checkpoint left off (as the co-training Trainer does).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import tensorflow as tf
import tf_keras as keras

from core.config import TrainerConfig
from trainer.vatt import losses, retrieval
from trainer.vatt.layers import read_word2vec_text
from trainer.vatt.model import Vatt, build_vatt
from transforms import vatt_inputs
from transforms.input_pipeline import feature_shape

log = logging.getLogger("polyvit.vatt")

# Beside the checkpoints: the caption vocabulary the text embedding was sized by.
VOCABULARY_FILE = "caption_vocabulary.txt"


def save_vocabulary(model_dir: str, vocabulary: list[str]) -> None:
    tf.io.gfile.makedirs(model_dir)
    with tf.io.gfile.GFile(f"{model_dir}/{VOCABULARY_FILE}", "w") as f:
        f.write("".join(f"{word}\n" for word in vocabulary))


def read_saved_vocabulary(model_dir: str) -> list[str]:
    with tf.io.gfile.GFile(f"{model_dir}/{VOCABULARY_FILE}") as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]


@dataclasses.dataclass
class PretrainResult:
    model: Vatt
    start_step: int
    step: int
    history: list[dict]


def input_shapes(config: TrainerConfig) -> dict[str, tuple[int, ...]]:
    pre = config.pretraining
    task = config.task(pre.task)
    return {
        "video": tuple(feature_shape(task, config.inputs)),
        "audio": (vatt_inputs.num_samples(config.inputs), 1),
        "text": (pre.max_captions, pre.text_length),
    }


def make_model(
    config: TrainerConfig, vocabulary: list[str], word_embeddings_path: str = ""
) -> Vatt:
    table = None
    if word_embeddings_path:
        # The file's width decides the embedding size; read its first data line for it.
        with tf.io.gfile.GFile(word_embeddings_path) as f:
            first = f.readline().split()
            dim = int(first[1]) if len(first) == 2 else len(first) - 1
        table = read_word2vec_text(word_embeddings_path, vocabulary, dim)
    pre = dataclasses.replace(config.pretraining, vocab_size=len(vocabulary))
    return build_vatt(config.model.size(), pre, input_shapes(config), table)


def _step_losses(model: Vatt, batch: dict, config: TrainerConfig, training: bool):
    pre = config.pretraining
    out = model(batch, training=training)
    return losses.vatt_loss(
        out,
        {"audio": batch["audio_mask"], "text": batch["text_mask"]},
        pre.temperature,
        pre.audio_weight,
        pre.text_weight,
    )


def pretrain(
    config: TrainerConfig,
    model_dir: str,
    train_pattern: str,
    vocabulary: list[str],
    *,
    strategy: tf.distribute.Strategy | None = None,
    word_embeddings_path: str = "",
    steps: int | None = None,
) -> PretrainResult:
    strategy = strategy or tf.distribute.get_strategy()
    pre, training = config.pretraining, config.training
    steps = pre.steps if steps is None else steps
    task = config.task(pre.task)
    with strategy.scope():
        model = make_model(config, vocabulary, word_embeddings_path)
        optimizer = keras.optimizers.Adam(pre.learning_rate, global_clipnorm=None)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step)
    manager = tf.train.CheckpointManager(
        checkpoint, model_dir, max_to_keep=training.checkpoints_to_keep
    )
    save_vocabulary(model_dir, vocabulary)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        log.info("pretraining resumes from %s at step %d", manager.latest_checkpoint, int(step))
    start = int(step)

    def dataset_fn(context):
        return vatt_inputs.make_pretraining_dataset(
            train_pattern,
            task,
            config.inputs,
            pre,
            vocabulary,
            training=True,
            batch_size=context.get_per_replica_batch_size(pre.batch_size),
            seed=training.seed + start,
            input_context=context,
        )

    iterator = iter(strategy.distribute_datasets_from_function(dataset_fn))

    @tf.function
    def train_step(batch):
        def replica(batch):
            with tf.GradientTape() as tape:
                out = _step_losses(model, batch, config, training=True)
            variables = model.trainable_variables
            grads = tape.gradient(out["loss"], variables)
            optimizer.apply_gradients(zip(grads, variables, strict=True))
            return out

        out = strategy.run(replica, args=(batch,))
        # Each replica's loss is its share of the global mean: their sum is the global loss.
        return {k: strategy.reduce("SUM", v, axis=None) for k, v in out.items()}

    history = []
    while int(step) < steps:
        out = train_step(next(iterator))
        step.assign_add(1)
        current = int(step)
        if current % max(1, training.log_every) == 0 or current == steps:
            row = {"step": current, **{k: float(v) for k, v in out.items()}}
            history.append(row)
            log.info("pretraining step %d: %s", current, row)
        if current % training.checkpoint_every == 0 or current == steps:
            manager.save(checkpoint_number=current)
    return PretrainResult(model=model, start_step=start, step=int(step), history=history)


def embed_split(
    model: Vatt,
    config: TrainerConfig,
    pattern: str,
    vocabulary: list[str],
    max_batches: int = 0,
) -> dict[str, np.ndarray]:
    """Evaluation-mode embeddings (no DropToken) and masks of every record of a split."""
    pre = config.pretraining
    ds = vatt_inputs.make_pretraining_dataset(
        pattern,
        config.task(pre.task),
        config.inputs,
        pre,
        vocabulary,
        training=False,
        batch_size=pre.batch_size,
        drop_remainder=False,
    )
    if max_batches:
        ds = ds.take(max_batches)
    parts: dict[str, list[np.ndarray]] = {}
    for batch in ds:
        out = model(batch, training=False)
        for key in ("video_va", "video_vt", "audio", "text"):
            parts.setdefault(key, []).append(out[key].numpy())
        for key in ("audio_mask", "text_mask"):
            parts.setdefault(key, []).append(batch[key].numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def zero_shot_retrieval(embedded: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Video->audio and video->text retrieval among the clips that have that modality."""
    has_audio = embedded["audio_mask"] > 0
    has_text = embedded["text_mask"].max(axis=1) > 0
    va = retrieval.ranks(embedded["video_va"][has_audio], embedded["audio"][has_audio])
    vt = retrieval.ranks(
        embedded["video_vt"][has_text],
        embedded["text"][has_text],
        embedded["text_mask"][has_text],
    )
    return {
        "video_to_audio": retrieval.retrieval_metrics(va),
        "video_to_text": retrieval.retrieval_metrics(vt),
    }
