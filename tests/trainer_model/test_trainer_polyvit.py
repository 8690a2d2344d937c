"""PolyViT: logits per task, shared vs per-modality vs per-task parameters, counts by formula,
modality layers, mixed precision."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from tests.support.configs import FEATURE_SHAPES, model_config
from trainer.model import build_model, parameter_counts, parameter_groups


def block_params(d: int, mlp: int) -> int:
    layer_norms = 2 * 2 * d
    attention = 3 * (d * d + d) + d * d + d  # q, k, v (D x H x D/H + bias) and output
    return layer_norms + attention + (d * mlp + mlp) + (mlp * d + d)


def features(modality: str, batch: int = 2) -> dict:
    return {modality: tf.random.normal((batch, *FEATURE_SHAPES[modality]))}


@pytest.fixture(scope="module")
def model():
    config = model_config()
    return build_model(config.model, config.tasks, feature_shapes=FEATURE_SHAPES)


def test_every_task_returns_float32_logits_of_its_class_count(model):
    assert model.tasks == tuple(model_config().tasks)
    for task in model.tasks:
        logits = model(features(task.modality, 3), task=task.name)
        assert logits.shape == (3, task.num_classes)
        assert logits.dtype == tf.float32
    assert model.task_names == ["digits", "motion", "dtmf", "tone_mix"]
    assert model.encode(features("video"), "video").shape == (2, 32)


def test_zero_initialised_heads_start_at_zero_logits(model):
    np.testing.assert_array_equal(model(features("image"), task="digits"), np.zeros((2, 10)))


def test_unknown_task_is_a_clear_error(model):
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        model(features("image"), task="nope")


def test_parameters_are_shared_except_tokenizers_and_heads(model):
    groups = parameter_groups(model)
    assert sorted(groups) == [
        "modality/audio",
        "modality/image",
        "modality/video",
        "shared",
        "task/digits",
        "task/dtmf",
        "task/motion",
        "task/tone_mix",
    ]
    # The two audio tasks share the audio tokenizer: only their heads differ.
    names = {k: {v.name for v in vs} for k, vs in groups.items()}
    assert all("tokenizer_audio" in n for n in names["modality/audio"])
    assert all("head_dtmf" in n for n in names["task/dtmf"])
    assert all("/encoder/" in n for n in names["shared"])

    d, mlp, p = 32, 64, 4
    counts = parameter_counts(model)
    assert counts["shared"] == 2 * block_params(d, mlp) + 2 * d  # + final LayerNorm
    grid_image = (16 // p) ** 2
    grid_video = (4 // 2) * (16 // p) ** 2
    grid_audio = math.ceil(21 / p) * math.ceil(12 / p)
    assert counts["modality/image"] == p * p * 3 * d + 2 * d + (1 + grid_image) * d
    assert counts["modality/video"] == 2 * p * p * 3 * d + 2 * d + (1 + grid_video) * d
    assert counts["modality/audio"] == p * p * 1 * d + 2 * d + (1 + grid_audio) * d
    assert counts["task/tone_mix"] == d * 6 + 6
    assert counts["total"] == model.count_params()


def test_gradients_of_one_task_touch_only_its_modality_shared_and_head(model):
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(features("audio"), task="dtmf", training=True) ** 2)
        # Zero heads give zero gradients upstream; a non-zero target gives real ones.
        loss += tf.reduce_sum(model(features("audio"), task="dtmf", training=True))
    groups = parameter_groups(model)
    grads = tape.gradient(loss, model.trainable_variables)
    touched = {
        v.ref() for v, g in zip(model.trainable_variables, grads, strict=True) if g is not None
    }
    for name, variables in groups.items():
        used = {v.ref() for v in variables} & touched
        if name in ("shared", "modality/audio", "task/dtmf"):
            assert used == {v.ref() for v in variables}, name
        else:
            assert not used, name


def test_modality_layers_are_owned_by_their_modality():
    config = model_config(modality_layers=1, num_layers=1)
    model = build_model(config.model, config.tasks, feature_shapes=FEATURE_SHAPES)
    counts = parameter_counts(model)
    assert counts["shared"] == block_params(32, 64) + 2 * 32
    grid_image = (16 // 4) ** 2
    tokenizer = 4 * 4 * 3 * 32 + 2 * 32 + (1 + grid_image) * 32
    assert counts["modality/image"] == tokenizer + block_params(32, 64)
    assert model(features("image"), task="digits").shape == (2, 10)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_returns_float32_logits(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        config = model_config(zero_init_heads=False)
        model = build_model(config.model, config.tasks, feature_shapes=FEATURE_SHAPES)
        assert model.encoder.blocks[0].attention.compute_dtype == policy.split("_")[1]
        for task in config.tasks:
            logits = model(features(task.modality), task=task.name, training=True)
            assert logits.dtype == tf.float32
            assert np.isfinite(logits.numpy()).all()
            assert np.abs(logits.numpy()).sum() > 0
        assert all(v.dtype == tf.float32 for v in model.trainable_variables)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_checkpoint_round_trip_before_training(tmp_path):
    """build_model creates every variable, so a checkpoint holds the whole model at step 0."""
    config = model_config(zero_init_heads=False)
    source = build_model(config.model, config.tasks, feature_shapes=FEATURE_SHAPES)
    path = tf.train.Checkpoint(model=source).write(str(tmp_path / "ckpt"))
    target = build_model(config.model, config.tasks, feature_shapes=FEATURE_SHAPES)
    tf.train.Checkpoint(model=target).read(path).assert_existing_objects_matched()
    for task in config.tasks:
        x = features(task.modality)
        np.testing.assert_allclose(target(x, task=task.name), source(x, task=task.name))
