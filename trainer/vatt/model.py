"""The VATT model: video tubelets, raw-waveform patches and caption words through either one
shared modality-agnostic encoder (`backbone: shared`, VATT's ut_fac) or one encoder per
modality (`per_modality`, tx_fac), class-token features, then the fine-and-coarse heads.

Layer names follow PolyViT's (`tokenizer_video`, `encoder` / `encoder_video`) so that
trainer/vatt/transfer.py can carry the video tokenizer and encoder into fine-tuning.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from core.config import ModelSize, Pretraining
from trainer.encoder import Encoder
from trainer.tokenizers import VideoTokenizer
from trainer.vatt.layers import (
    FineAndCoarseHeads,
    TextTokenizer,
    WaveformTokenizer,
    drop_tokens,
)

MODALITIES = ("video", "audio", "text")


class Vatt(keras.Model):
    """`call({"video": [B,T,S,S,3], "audio": [B,N,1], "text": [B,K,L] ids})` returns the
    embeddings the losses take: `video_va`, `audio`, `video_vt`, `text` [B, K, d]."""

    def __init__(
        self,
        size: ModelSize,
        pretraining: Pretraining,
        word_embeddings: np.ndarray | None = None,
        **kwargs,
    ):
        super().__init__(name="vatt", **kwargs)
        self.size, self.pretraining = size, pretraining
        hidden = size.hidden_size
        self.tokenizers: dict[str, keras.layers.Layer] = {
            "video": VideoTokenizer(
                hidden, size.patch_size, size.tubelet_frames, size.dropout, name="tokenizer_video"
            ),
            "audio": WaveformTokenizer(
                hidden, pretraining.waveform_patch, size.dropout, name="tokenizer_audio"
            ),
            "text": TextTokenizer(
                hidden, pretraining.vocab_size, word_embeddings, name="tokenizer_text"
            ),
        }
        if pretraining.backbone == "shared":
            shared = Encoder(size, size.num_layers, final_norm=True, name="encoder")
            self.encoders = {m: shared for m in MODALITIES}
        else:
            layers = {"video": size.num_layers, "audio": size.num_layers}
            layers["text"] = max(1, pretraining.text_layers)
            self.encoders = {
                m: Encoder(size, layers[m], final_norm=True, name=f"encoder_{m}")
                for m in MODALITIES
            }
        self.heads = FineAndCoarseHeads(
            pretraining.audio_space_dim, pretraining.text_space_dim, name="heads"
        )

    def features(self, x: tf.Tensor, modality: str, training=False) -> tf.Tensor:
        """The class-token feature [B, hidden] of one modality (DropToken for video and audio
        in training only)."""
        tokens = self.tokenizers[modality](x, training=training)
        if modality != "text":
            tokens = drop_tokens(tokens, self.pretraining.keep_tokens, training)
        return self.encoders[modality](tokens, training=training)[:, 0]

    def embed_video(self, video, training=False) -> tuple[tf.Tensor, tf.Tensor]:
        return self.heads.video(self.features(video, "video", training))

    def embed_audio(self, audio, training=False) -> tf.Tensor:
        return self.heads.audio(self.features(audio, "audio", training))

    def embed_text(self, ids, training=False) -> tf.Tensor:
        """Caption ids [B, K, L] -> [B, K, d_vt]."""
        shape = tf.shape(ids)
        flat = tf.reshape(ids, [-1, ids.shape[-1]])
        text = self.heads.text(self.features(flat, "text", training))
        return tf.reshape(text, [shape[0], shape[1], -1])

    def call(self, inputs, training=False):
        video_va, video_vt = self.embed_video(inputs["video"], training)
        return {
            "video_va": video_va,
            "video_vt": video_vt,
            "audio": self.embed_audio(inputs["audio"], training),
            "text": self.embed_text(inputs["text"], training),
        }


def build_vatt(
    size: ModelSize,
    pretraining: Pretraining,
    shapes: dict[str, tuple[int, ...]],
    word_embeddings: np.ndarray | None = None,
) -> Vatt:
    """A Vatt with every variable created from per-example input shapes by modality (video
    (T, S, S, 3), audio (N, 1), text (K, L))."""
    model = Vatt(size, pretraining, word_embeddings)
    zeros = {m: tf.zeros((1, *shapes[m]), tf.int32 if m == "text" else tf.float32) for m in shapes}
    model(zeros, training=False)
    return model
