"""Embedding signatures of the pretrained VATT model, as a TF Serving SavedModel.

  embed_examples  examples string [None] (serialized DMVR SequenceExamples of the pretraining
                  task's layout: frames, waveform, optional caption/string) ->
                  video_va, audio [None, d_va]; video_vt [None, d_vt]  (L2-normalised)
  embed_text      captions string [None] -> text [None, d_vt]  (L2-normalised)
  rank_captions   examples string [None] (the clips of one video), captions string [None] ->
                  scores float32 [None] (cosine of the clips' mean video_vt, re-normalised,
                  with each caption),
                  captions string [None] (the same captions, best first), order int32 [None]

Decoding, tokenisation (the caption vocabulary as a graph constant) and the evaluation-mode
inputs run in the graph through transforms/vatt_inputs.py, as the retrieval evaluation reads
them. The signatures are exported twice: on their own from the Pretrainer's model, into
`<Pretrainer model>/Format-Serving/embeddings/<version>/`, and inside the fine-tuned model the
Pusher pushes (trainer/vatt/run_fn.py `embedding_modules`, through trainer/export.py's
`extra_modules`), beside its task signatures. Both hold the whole pretrained model (its
encoder, not the fine-tuned one: see `embedding_modules`), so they give the same vectors.
"""

from __future__ import annotations

import os

import tensorflow as tf

from core.config import TrainerConfig
from trainer.vatt.model import Vatt
from trainer.vatt.pretrain import input_shapes
from transforms import captions, vatt_inputs

EMBEDDINGS_DIR = "embeddings"
PREDICT_METHOD = "tensorflow/serving/predict"


def _unit(x: tf.Tensor) -> tf.Tensor:
    return tf.math.l2_normalize(x, axis=-1)


class EmbeddingModule(tf.Module):
    """Holds the model and the vocabulary table (so both are saved) and the signatures."""

    def __init__(self, model: Vatt, config: TrainerConfig, vocabulary: list[str]):
        super().__init__(name="vatt_embeddings")
        self.model, self._config = model, config
        self._table = captions.word_table(vocabulary)
        self._task = config.task(config.pretraining.task)

    def _examples(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        pre = self._config.pretraining

        def one(serialized):
            ex = vatt_inputs.pretraining_example(
                serialized, self._task, self._config.inputs, pre, self._table, training=False
            )
            return {"video": ex["video"], "audio": ex["audio"]}

        shapes = input_shapes(self._config)
        spec = {m: tf.TensorSpec(shapes[m], tf.float32) for m in ("video", "audio")}
        return tf.map_fn(one, examples, fn_output_signature=spec)

    def embed_examples(self, examples: tf.Tensor) -> dict[str, tf.Tensor]:
        inputs = self._examples(examples)
        video_va, video_vt = self.model.embed_video(inputs["video"], training=False)
        audio = self.model.embed_audio(inputs["audio"], training=False)
        return {"video_va": _unit(video_va), "video_vt": _unit(video_vt), "audio": _unit(audio)}

    def embed_text(self, texts: tf.Tensor) -> tf.Tensor:
        pre = self._config.pretraining
        words = captions.caption_words(texts)
        ids = tf.cast(self._table.lookup(words), tf.int32)
        dense = ids.to_tensor(default_value=captions.PAD_ID, shape=[None, pre.text_length])
        return _unit(self.model.embed_text(dense[:, None, :], training=False)[:, 0])

    def signatures(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        examples_spec = tf.TensorSpec([None], tf.string, name="examples")
        captions_spec = tf.TensorSpec([None], tf.string, name="captions")

        @tf.function(input_signature=[examples_spec])
        def embed_examples(examples):
            return self.embed_examples(examples)

        @tf.function(input_signature=[captions_spec])
        def embed_text(captions):
            return {"text": self.embed_text(captions)}

        @tf.function(input_signature=[examples_spec, captions_spec])
        def rank_captions(examples, captions):
            # The clips of one video: their mean video->text embedding, re-normalised.
            video = _unit(tf.reduce_mean(self.embed_examples(examples)["video_vt"], axis=0))
            scores = tf.linalg.matvec(self.embed_text(captions), video)
            order = tf.argsort(scores, direction="DESCENDING")
            return {
                "scores": tf.gather(scores, order),
                "captions": tf.gather(captions, order),
                "order": order,
            }

        return {
            "embed_examples": embed_examples.get_concrete_function(),
            "embed_text": embed_text.get_concrete_function(),
            "rank_captions": rank_captions.get_concrete_function(),
            "serving_default": embed_examples.get_concrete_function(),
        }


def export_embeddings(
    model: Vatt, config: TrainerConfig, vocabulary: list[str], model_dir: str, version: int = 1
) -> str:
    """Writes the SavedModel to <model_dir>/embeddings/<version>/ (TF Serving's layout, so
    `polyvit serve` can load <model_dir>/embeddings as a model base path); returns that path."""
    module = EmbeddingModule(model, config, vocabulary)
    path = os.path.join(model_dir, EMBEDDINGS_DIR, str(version))
    tf.saved_model.save(module, path, signatures=module.signatures())
    return path
