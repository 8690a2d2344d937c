"""ViT .npz import: a synthetic checkpoint in the big_vision/scenic layout; every value lands
where it should, positional embeddings are resized/tiled, errors name the key."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.configs import FEATURE_SHAPES, model_config
from trainer.model import build_model
from trainer.vit_checkpoint import CheckpointError, load_vit_npz

D, HEADS, MLP, P = 32, 2, 64, 4
CKPT_GRID = 8  # 8 x 8 patch positions: bilinear halving is then 2x2 block averaging


def vit_arrays(num_blocks: int, seed: int = 0, prefix: str = "") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    a = {
        "embedding/kernel": r(P, P, 3, D),
        "embedding/bias": r(D),
        "cls": r(1, 1, D),
        "Transformer/posembed_input/pos_embedding": r(1, 1 + CKPT_GRID**2, D),
        "Transformer/encoder_norm/scale": r(D),
        "Transformer/encoder_norm/bias": r(D),
        "head/kernel": r(D, 7),  # the checkpoint's own classifier: not loaded
        "head/bias": r(7),
    }
    for i in range(num_blocks):
        b = f"Transformer/encoderblock_{i}/"
        for ln in ("LayerNorm_0", "LayerNorm_2"):
            a[f"{b}{ln}/scale"], a[f"{b}{ln}/bias"] = r(D), r(D)
        for part in ("query", "key", "value"):
            a[f"{b}MultiHeadDotProductAttention_1/{part}/kernel"] = r(D, HEADS, D // HEADS)
            a[f"{b}MultiHeadDotProductAttention_1/{part}/bias"] = r(HEADS, D // HEADS)
        a[f"{b}MultiHeadDotProductAttention_1/out/kernel"] = r(HEADS, D // HEADS, D)
        a[f"{b}MultiHeadDotProductAttention_1/out/bias"] = r(D)
        a[f"{b}MlpBlock_3/Dense_0/kernel"], a[f"{b}MlpBlock_3/Dense_0/bias"] = r(D, MLP), r(MLP)
        a[f"{b}MlpBlock_3/Dense_1/kernel"], a[f"{b}MlpBlock_3/Dense_1/bias"] = r(MLP, D), r(D)
    return {prefix + k: v for k, v in a.items()}


def write_npz(tmp_path, arrays, name="vit.npz") -> str:
    path = str(tmp_path / name)
    np.savez(path, **arrays)
    return path


def attention_var(block, part, kind):
    return next(v for v in block.attention.weights if v.name.endswith(f"/{part}/{kind}:0"))


def check_block(block, arrays, i):
    b = f"Transformer/encoderblock_{i}/"
    np.testing.assert_array_equal(block.norm_0.gamma, arrays[f"{b}LayerNorm_0/scale"])
    np.testing.assert_array_equal(block.norm_1.beta, arrays[f"{b}LayerNorm_2/bias"])
    mha = f"{b}MultiHeadDotProductAttention_1/"
    np.testing.assert_array_equal(
        attention_var(block, "query", "kernel"), arrays[mha + "query/kernel"]
    )
    np.testing.assert_array_equal(attention_var(block, "value", "bias"), arrays[mha + "value/bias"])
    np.testing.assert_array_equal(
        attention_var(block, "attention_output", "kernel"), arrays[mha + "out/kernel"]
    )
    np.testing.assert_array_equal(block.mlp.dense_1.kernel, arrays[f"{b}MlpBlock_3/Dense_1/kernel"])


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    arrays = vit_arrays(2)
    path = write_npz(tmp_path_factory.mktemp("ckpt"), arrays)
    config = model_config()  # D=32, 2 layers, 2 heads, mlp 64, patch 4
    model = build_model(
        config.model, config.tasks, feature_shapes=FEATURE_SHAPES, load_checkpoint=False
    )
    report = load_vit_npz(model, path)
    return model, arrays, report


def test_encoder_weights_land_in_the_shared_encoder(loaded):
    model, arrays, report = loaded
    for i, block in enumerate(model.encoder.blocks):
        check_block(block, arrays, i)
    np.testing.assert_array_equal(
        model.encoder.final_norm.gamma, arrays["Transformer/encoder_norm/scale"]
    )
    assert report["ignored"] == ["head/bias", "head/kernel"]


def test_patch_kernels_per_modality(loaded):
    model, arrays, _ = loaded
    kernel = arrays["embedding/kernel"]
    np.testing.assert_array_equal(model.tokenizers["image"].kernel, kernel)
    video = model.tokenizers["video"].kernel.numpy()
    assert video.shape == (2, P, P, 3, D)
    np.testing.assert_array_equal(video[1], kernel)  # central frame of 2 is index 1
    assert not video[0].any()
    np.testing.assert_allclose(
        model.tokenizers["audio"].kernel, kernel.mean(axis=2, keepdims=True), rtol=1e-6
    )
    for tokenizer in model.tokenizers.values():
        np.testing.assert_array_equal(tokenizer.cls, arrays["cls"])
        np.testing.assert_array_equal(tokenizer.bias, arrays["embedding/bias"])


def test_positional_embeddings_are_resized_and_tiled(loaded):
    model, arrays, _ = loaded
    pos = arrays["Transformer/posembed_input/pos_embedding"]
    grid = pos[0, 1:].reshape(CKPT_GRID, CKPT_GRID, D)
    # Image: 16 / 4 = 4 x 4. Halving bilinearly (half-pixel centres) averages 2 x 2 blocks.
    expected = grid.reshape(4, 2, 4, 2, D).mean(axis=(1, 3)).reshape(16, D)
    image = model.tokenizers["image"].pos_embedding.numpy()[0]
    np.testing.assert_array_equal(image[0], pos[0, 0])  # class position kept
    np.testing.assert_allclose(image[1:], expected, atol=1e-5)
    # Video: (4 frames / 2) x 4 x 4, each time step the image's spatial embedding.
    video = model.tokenizers["video"].pos_embedding.numpy()[0]
    np.testing.assert_array_equal(video[0], pos[0, 0])
    for step in video[1:].reshape(2, 16, D):
        np.testing.assert_allclose(step, expected, atol=1e-5)
    # Audio: (21, 12) padded to (24, 12) -> a 6 x 3 grid.
    audio = model.tokenizers["audio"].pos_embedding.numpy()[0]
    assert audio.shape == (1 + 6 * 3, D)
    np.testing.assert_array_equal(audio[0], pos[0, 0])


def test_modality_layers_take_the_first_blocks_and_the_prefix_is_accepted(tmp_path):
    arrays = vit_arrays(2, seed=1, prefix="opt/target/")
    path = write_npz(tmp_path, arrays)
    config = model_config(modality_layers=1, num_layers=1)
    model = build_model(
        config.model, config.tasks, feature_shapes=FEATURE_SHAPES, load_checkpoint=False
    )
    load_vit_npz(model, path)
    plain = {k.removeprefix("opt/target/"): v for k, v in arrays.items()}
    for modality_layers in model.modality_encoders.values():
        check_block(modality_layers.blocks[0], plain, 0)
    check_block(model.encoder.blocks[0], plain, 1)


def test_build_model_loads_the_configured_checkpoint(tmp_path):
    arrays = vit_arrays(2, seed=2)
    path = write_npz(tmp_path, arrays)
    config = model_config()
    config.model.init_checkpoint = path
    model = build_model(config.model, config.tasks, feature_shapes=FEATURE_SHAPES)
    np.testing.assert_array_equal(model.tokenizers["image"].kernel, arrays["embedding/kernel"])


def test_errors_name_the_key(tmp_path, loaded):
    model, _, _ = loaded
    arrays = vit_arrays(2)
    del arrays["Transformer/encoderblock_1/MlpBlock_3/Dense_0/bias"]
    with pytest.raises(CheckpointError, match="missing key 'Transformer/encoderblock_1/MlpBlock_3"):
        load_vit_npz(model, write_npz(tmp_path, arrays, "a.npz"))
    with pytest.raises(CheckpointError, match="has 3 encoder blocks"):
        load_vit_npz(model, write_npz(tmp_path, vit_arrays(3), "b.npz"))
    wide = vit_arrays(2)
    wide["Transformer/encoder_norm/scale"] = np.ones(48, np.float32)
    with pytest.raises(CheckpointError, match="'Transformer/encoder_norm/scale' has shape"):
        load_vit_npz(model, write_npz(tmp_path, wide, "c.npz"))
    with pytest.raises(CheckpointError, match="not found"):
        load_vit_npz(model, str(tmp_path / "missing.npz"))
