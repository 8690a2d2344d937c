"""PolyViT: per-modality tokenizers -> one shared transformer encoder -> one head per task.

    features[modality] --tokenizer[modality]--> tokens --modality layers (optional)-->
        --shared encoder--> class token --head[task]--> float32 logits [B, num_classes]

Built from its own sections only (as big_vision's `Model(**config.model)`): the model section
(`Model.size()` for widths and depths, `init_checkpoint`), the tasks for the heads (and which
modalities exist), and the example shape per modality for the token grids (by default the input
pipeline's shapes for the inputs section). Parameters are shared except tokenizers (and the
optional modality layers) and heads; `parameter_groups` shows that split.

Typical use (inside `strategy.scope()` when training under a distribution strategy):

    model = build_model(config.model, config.tasks, config.inputs)  # all variables, checkpoint
    logits = model(features, task="digits", training=True)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from core.config import Inputs, Model, ModelSize, Task
from trainer import late_fusion
from trainer.encoder import Encoder
from trainer.heads import TaskHead
from trainer.tokenizers import make_tokenizer

SHARED = "shared"


def _layer_name(name: str) -> str:
    """Task names come from the config; layer names must be valid TF name scopes."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name)


class PolyViT(keras.Model):
    """The co-trained multimodal ViT. `call(features, task)` returns float32 logits [B, C].

    `size` sets widths and depths; `tasks` the heads (name, modality, num_classes).
    `video_encoding="frames"` encodes clips as frames through the image path, fused late by
    `fusion` (trainer/late_fusion.py); there is then no video tokenizer.
    """

    def __init__(
        self,
        size: ModelSize,
        tasks: Sequence[Task],
        video_encoding: str = "tubelets",
        fusion: str = "logits",
        **kwargs,
    ):
        super().__init__(name="polyvit", **kwargs)
        self.size = size
        self.video_encoding = video_encoding
        self.fusion = fusion
        self.tasks = tuple(tasks)
        self.task_names = [t.name for t in tasks]
        self.task_modality = {t.name: t.modality for t in tasks}
        # First-seen order, so variable creation (and checkpoints) follow the config's order.
        self.modalities = list(
            dict.fromkeys(late_fusion.token_modality(t.modality, video_encoding) for t in tasks)
        )
        self.tokenizers = {
            m: make_tokenizer(m, size, name=f"tokenizer_{m}") for m in self.modalities
        }
        self.modality_encoders = {
            m: Encoder(size, size.modality_layers, final_norm=False, name=f"layers_{m}")
            for m in self.modalities
            if size.modality_layers > 0
        }
        self.encoder = Encoder(size, size.num_layers, final_norm=True, name="encoder")
        self.heads = {
            t.name: TaskHead(
                t.num_classes, size.zero_init_heads, name=f"head_{_layer_name(t.name)}"
            )
            for t in tasks
        }

    def modality_of(self, task: str) -> str:
        if task not in self.task_modality:
            raise ValueError(f"PolyViT: unknown task {task!r}; tasks are {self.task_names}")
        return self.task_modality[task]

    def encode(self, features, modality: str, training=False) -> tf.Tensor:
        """Features (dict by modality, or the modality's tensor) -> class token [B, hidden]."""
        if modality not in self.tokenizers:
            raise ValueError(
                f"PolyViT: no tokenizer for {modality!r}; have {self.modalities} "
                f"(video_encoding={self.video_encoding})"
            )
        x = features[modality] if isinstance(features, dict) else features
        tokens = self.tokenizers[modality](x, training=training)
        if modality in self.modality_encoders:
            tokens = self.modality_encoders[modality](tokens, training=training)
        tokens = self.encoder(tokens, training=training)
        return tokens[:, 0]

    def call(self, features, task: str | None = None, training=False):
        # Keras passes call's arguments by keyword; `task` has a default only for its sake.
        if task is None:
            raise ValueError(f"PolyViT: call needs task=, one of {self.task_names}")
        modality = self.modality_of(task)
        if late_fusion.token_modality(modality, self.video_encoding) != modality:
            x = features[modality] if isinstance(features, dict) else features
            return late_fusion.fused_logits(self, x, task, self.fusion, training=training)
        return self.heads[task](self.encode(features, modality, training=training))


def input_feature_shapes(tasks: Sequence[Task], inputs: Inputs) -> dict[str, tuple[int, ...]]:
    """Per-modality example shape, from the input pipeline (the one source of these shapes)."""
    from transforms import input_pipeline

    shapes: dict[str, tuple[int, ...]] = {}
    for task in tasks:
        shapes.setdefault(task.modality, tuple(input_pipeline.feature_shape(task, inputs)))
    return shapes


def build_all(model: PolyViT, feature_shapes: Mapping[str, Sequence[int]]) -> None:
    """Creates every variable: one forward pass per task on zeros (so heads exist too).

    `feature_shapes` maps modality -> example shape (see `input_feature_shapes`).
    """
    for task in model.task_names:
        modality = model.modality_of(task)
        if modality not in feature_shapes:
            raise ValueError(f"build_all: no feature shape for {modality!r} (task {task!r})")
        zeros = tf.zeros((1, *feature_shapes[modality]), tf.float32)
        model({modality: zeros}, task=task, training=False)


def build_model(
    model: Model,
    tasks: Sequence[Task],
    inputs: Inputs | None = None,
    *,
    feature_shapes: Mapping[str, Sequence[int]] | None = None,
    load_checkpoint: bool = True,
) -> PolyViT:
    """PolyViT of the model section for `tasks`, all variables created; initialised from
    `model.init_checkpoint` (a vit_jax or big_vision ViT .npz) when that is set.

    The token grids follow `feature_shapes` (modality -> example shape) when given, else the
    input pipeline's shapes for the `inputs` section.
    """
    if feature_shapes is None:
        if inputs is None:
            raise ValueError("build_model: give the inputs section or the feature shapes")
        feature_shapes = input_feature_shapes(tasks, inputs)
    polyvit = PolyViT(model.size(), tasks, model.video_encoding, model.late_fusion)
    build_all(polyvit, feature_shapes)
    if load_checkpoint and model.init_checkpoint:
        from trainer.vit_checkpoint import load_vit_npz

        load_vit_npz(polyvit, model.init_checkpoint)
    return polyvit


def parameter_groups(model: PolyViT) -> dict[str, list[tf.Variable]]:
    """Trainable variables by owner: `shared`, `modality/<m>` and `task/<t>`.

    Every trainable variable of the model is in exactly one group (checked), which is the
    claim "parameters are shared except tokenizers and heads" made testable.
    """
    groups: dict[str, list[tf.Variable]] = {SHARED: list(model.encoder.trainable_variables)}
    for m in model.modalities:
        owned = list(model.tokenizers[m].trainable_variables)
        if m in model.modality_encoders:
            owned += model.modality_encoders[m].trainable_variables
        groups[f"modality/{m}"] = owned
    for t in model.task_names:
        groups[f"task/{t}"] = list(model.heads[t].trainable_variables)
    grouped = [v.ref() for vs in groups.values() for v in vs]
    every = {v.ref() for v in model.trainable_variables}
    if len(grouped) != len(set(grouped)) or set(grouped) != every:
        raise AssertionError("parameter_groups: groups do not partition the model's variables")
    return groups


def count_parameters(variables) -> int:
    return int(sum(np.prod(v.shape) for v in variables))


def parameter_counts(model: PolyViT) -> dict[str, int]:
    """Parameter count per group of `parameter_groups`, plus `total`."""
    counts = {k: count_parameters(vs) for k, vs in parameter_groups(model).items()}
    counts["total"] = sum(counts.values())
    return counts
