"""IV-ViT late fusion (model.video_encoding=frames): shapes, one set of weights for images and
videos (no tubelet tokenizer), the fusion itself, and the same output in training and export."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from core import config as config_lib
from tests.support.configs import FEATURE_SHAPES, four_tasks, model_overrides, tiny_config
from trainer import late_fusion
from trainer.export import export_saved_model
from trainer.model import build_model, parameter_groups
from transforms import input_pipeline

# Frames go through the image tokenizer: a video frame has the image's size.
SHAPES = {**FEATURE_SHAPES, "video": (3, *FEATURE_SHAPES["image"])}


def frames_config(fusion: str = "logits", **settings) -> config_lib.Config:
    tasks = four_tasks()
    del tasks["dtmf"], tasks["tone_mix"]
    overrides = {
        **model_overrides(num_layers=1, num_heads=2, zero_init_heads=False),
        "model.video_encoding": "frames",
        "model.late_fusion": fusion,
        **settings,
    }
    return tiny_config(tasks, overrides)


def build(fusion: str = "logits"):
    config = frames_config(fusion)
    return build_model(config.model, config.tasks, feature_shapes=SHAPES)


@pytest.fixture(scope="module")
def model():
    return build("logits")


def clip(batch: int = 2, seed: int = 0) -> tf.Tensor:
    return tf.random.stateless_normal((batch, *SHAPES["video"]), seed=[seed, 1])


def test_fold_and_mean_keep_each_clips_frames_together():
    x = tf.reshape(tf.range(2 * 3 * 2 * 2 * 1, dtype=tf.float32), (2, 3, 2, 2, 1))
    folded = late_fusion.fold_frames(x)
    assert folded.shape == (6, 2, 2, 1)
    np.testing.assert_array_equal(folded[4], x[1, 1])
    per_frame = tf.constant([[0.0], [1.0], [2.0], [10.0], [20.0], [30.0]])
    np.testing.assert_allclose(late_fusion.mean_over_frames(per_frame, 3), [[1.0], [20.0]])
    with pytest.raises(ValueError, match="expected a clip"):
        late_fusion.fold_frames(tf.zeros((2, 4, 4, 3)))


@pytest.mark.parametrize("fusion", ["logits", "features"])
def test_video_and_image_logits_have_their_tasks_shapes(fusion):
    model = build(fusion)
    video = model({"video": clip(batch=3)}, task="motion", training=False)
    image = model({"image": tf.zeros((5, *SHAPES["image"]))}, task="digits", training=False)
    assert video.shape == (3, 4) and video.dtype == tf.float32
    assert image.shape == (5, 10)


def test_no_video_tokenizer_and_every_encoder_weight_is_shared(model):
    assert list(model.tokenizers) == ["image"]
    names = [v.name for v in model.variables]
    assert not [n for n in names if "video" in n or "tubelet" in n], names
    groups = parameter_groups(model)
    assert sorted(groups) == ["modality/image", "shared", "task/digits", "task/motion"]

    def touched(task, features):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(features, task=task, training=True) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        return {
            v.ref() for v, g in zip(model.trainable_variables, grads, strict=True) if g is not None
        }

    by_video = touched("motion", {"video": clip()})
    by_image = touched("digits", {"image": tf.random.normal((2, *SHAPES["image"]))})
    head = {v.ref() for v in groups["task/motion"]}
    body = {v.ref() for g in ("shared", "modality/image") for v in groups[g]}
    # The video task trains exactly the image path's weights, plus its own head.
    assert by_video == body | head
    assert by_image - {v.ref() for v in groups["task/digits"]} == body


def test_logit_fusion_is_the_mean_of_each_frames_image_path_logits(model):
    x = clip(batch=2)
    fused = model({"video": x}, task="motion", training=False).numpy()
    for b in range(2):
        per_frame = model.heads["motion"](model.encode(x[b], "image", training=False))
        np.testing.assert_allclose(fused[b], tf.reduce_mean(per_frame, axis=0), atol=1e-5)
    # Every frame matters: changing one frame changes the clip's logits.
    changed = tf.tensor_scatter_nd_update(x, [[0, 2]], [tf.ones(SHAPES["image"])])
    assert not np.allclose(model({"video": changed}, task="motion")[0], fused[0])


def test_feature_fusion_pools_the_class_tokens_before_the_head():
    model = build("features")
    x = clip(batch=2)
    fused = model({"video": x}, task="motion", training=False)
    tokens = model.encode(late_fusion.fold_frames(x), "image", training=False)
    pooled = tf.reduce_mean(tf.reshape(tokens, (2, 3, -1)), axis=1)
    np.testing.assert_allclose(fused, model.heads["motion"](pooled), atol=1e-5)


def test_the_exported_video_signature_fuses_as_training_does(tmp_path):
    """The raw video signature of the SavedModel equals the model called in training mode
    (no dropout in the tiny preset) on the same preprocessed clip."""
    config = config_lib.trainer_config(frames_config("logits", **{"inputs.frame_stride": 1}))
    assert config.model.size().dropout == 0.0
    model = build_model(config.model, config.tasks, config.inputs)
    assert "video" not in model.tokenizers
    vocabularies = {"digits": [str(i) for i in range(10)], "motion": ["d", "l", "r", "u"]}
    path = export_saved_model(model, config, vocabularies, str(tmp_path / "1"))
    loaded = tf.saved_model.load(path)

    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (2, 6, 20, 24, 3), dtype=np.uint8)
    served = loaded.signatures["motion_raw"](video=tf.constant(raw))["scores"].numpy()
    task = config.task("motion")
    features = input_pipeline.preprocess_raw(tf.constant(raw), task, config.inputs)
    trained = tf.nn.softmax(model(features, task="motion", training=True)).numpy()
    assert served.shape == (2, 4)
    np.testing.assert_allclose(served, trained, atol=1e-5)
    assert not np.allclose(served[0], served[1])


def test_shipped_ivvit_config_builds_one_image_path_for_both_tasks():
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "configs" / "ivvit.yaml"
    config = config_lib.load(str(path))
    assert config.model.video_encoding == "frames"
    assert {t.modality for t in config.tasks} == {"image", "video"}
    built = build_model(config.model, config.tasks, config.inputs)
    assert list(built.tokenizers) == ["image"]
    video = tf.zeros((1, *input_pipeline.feature_shape(config.task("motion"), config.inputs)))
    assert built({"video": video}, task="motion").shape == (1, 4)
