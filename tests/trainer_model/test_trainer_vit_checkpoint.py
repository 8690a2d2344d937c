"""ViT .npz import: synthetic checkpoints in every layout read (vit_jax pre-Linen and Linen
numbering, big_vision's native layout with token or gap pooling, per-block or scanned blocks);
every value lands where it should, positional embeddings are resized as scipy.ndimage.zoom
(order=1) resizes them, the audio kernel has scenic PolyViT's scale, errors name the key."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

from tests.support.configs import FEATURE_SHAPES, model_config
from trainer.model import build_model
from trainer.tokenizers import patchify
from trainer.vit_checkpoint import (
    CheckpointError,
    adapt_pos_embedding,
    linen_names,
    load_vit_npz,
    resize_grid,
)

D, HEADS, MLP, P = 32, 2, 64, 4
CKPT_GRID = 8  # 8 x 8 patch positions in the file
POS = "Transformer/posembed_input/pos_embedding"
# Pre-Linen (the released vit_jax files) -> Linen names inside a block.
LINEN = {
    "MultiHeadDotProductAttention_1/": "MultiHeadDotProductAttention_0/",
    "LayerNorm_2/": "LayerNorm_1/",
    "MlpBlock_3/": "MlpBlock_0/",
}


def vit_arrays(num_blocks: int, seed: int = 0, prefix: str = "") -> dict[str, np.ndarray]:
    """A vit_jax file with token pooling and pre-Linen numbering (as the released ones)."""
    rng = np.random.default_rng(seed)
    r = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    a = {
        "embedding/kernel": r(P, P, 3, D),
        "embedding/bias": r(D),
        "cls": r(1, 1, D),
        POS: r(1, 1 + CKPT_GRID**2, D),
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


def to_linen(arrays):
    out = {}
    for key, value in arrays.items():
        for old, new in LINEN.items():
            key = key.replace(old, new)
        out[key] = value
    return out


def to_scanned(arrays, depth):
    """Per-block arrays stacked on a leading depth axis under Transformer/encoderblock/."""
    first = "Transformer/encoderblock_0/"
    out = {k: v for k, v in arrays.items() if not k.startswith("Transformer/encoderblock_")}
    for key in (k for k in arrays if k.startswith(first)):
        rest = key[len(first) :]
        stacked = [arrays[f"Transformer/encoderblock_{i}/{rest}"] for i in range(depth)]
        out["Transformer/encoderblock/" + rest] = np.stack(stacked)
    return out


def to_big_vision(arrays, pooling):
    """big_vision's native layout: top-level pos_embedding without a class position; with gap
    pooling no class token (and a MAP head with map pooling)."""
    out = {k: v for k, v in arrays.items() if k not in (POS, "cls")}
    out["pos_embedding"] = arrays[POS][:, 1:]
    if pooling == "tok":
        out["cls"] = arrays["cls"]
    if pooling == "map":
        out["MAPHead_0/probe"] = np.ones((1, 1, D), np.float32)
    return out


def write_npz(tmp_path, arrays, name="vit.npz") -> str:
    path = str(tmp_path / name)
    np.savez(path, **arrays)
    return path


def fresh_model(**fields):
    config = model_config(**fields)  # D=32, 2 layers, 2 heads, mlp 64, patch 4
    return build_model(
        config.model, config.tasks, feature_shapes=FEATURE_SHAPES, load_checkpoint=False
    )


def attention_var(block, part, kind):
    return next(v for v in block.attention.weights if v.name.endswith(f"/{part}/{kind}:0"))


def check_block(block, arrays, i):
    """Every weight of our block against encoder block i of a pre-Linen per-block file."""
    b = f"Transformer/encoderblock_{i}/"
    mha = f"{b}MultiHeadDotProductAttention_1/"
    pairs = [
        (block.norm_0.gamma, f"{b}LayerNorm_0/scale"),
        (block.norm_0.beta, f"{b}LayerNorm_0/bias"),
        (block.norm_1.gamma, f"{b}LayerNorm_2/scale"),
        (block.norm_1.beta, f"{b}LayerNorm_2/bias"),
        (attention_var(block, "attention_output", "kernel"), mha + "out/kernel"),
        (attention_var(block, "attention_output", "bias"), mha + "out/bias"),
        (block.mlp.dense_0.kernel, f"{b}MlpBlock_3/Dense_0/kernel"),
        (block.mlp.dense_0.bias, f"{b}MlpBlock_3/Dense_0/bias"),
        (block.mlp.dense_1.kernel, f"{b}MlpBlock_3/Dense_1/kernel"),
        (block.mlp.dense_1.bias, f"{b}MlpBlock_3/Dense_1/bias"),
    ]
    for part in ("query", "key", "value"):
        for kind in ("kernel", "bias"):
            pairs.append((attention_var(block, part, kind), f"{mha}{part}/{kind}"))
    for variable, key in pairs:
        np.testing.assert_array_equal(variable, arrays[key], err_msg=key)


def check_encoder(model, arrays):
    for i, block in enumerate(model.encoder.blocks):
        check_block(block, arrays, i)
    final = model.encoder.final_norm
    np.testing.assert_array_equal(final.gamma, arrays["Transformer/encoder_norm/scale"])
    np.testing.assert_array_equal(final.beta, arrays["Transformer/encoder_norm/bias"])


def zoomed_patches(arrays, shape):
    """The file's 8 x 8 patch positions resized as the references resize them."""
    grid = arrays[POS][0, 1:].reshape(CKPT_GRID, CKPT_GRID, D)
    factors = (shape[0] / CKPT_GRID, shape[1] / CKPT_GRID, 1)
    return scipy.ndimage.zoom(grid, factors, order=1).reshape(-1, D)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    arrays = vit_arrays(2)
    path = write_npz(tmp_path_factory.mktemp("ckpt"), arrays)
    model = fresh_model()
    report = load_vit_npz(model, path)
    return model, arrays, report


def test_encoder_weights_land_in_the_shared_encoder(loaded):
    model, arrays, report = loaded
    check_encoder(model, arrays)
    assert report["ignored"] == ["head/bias", "head/kernel"]
    assert report["fresh"] == []
    assert report["layout"] == {
        "prefix": "",
        "renumbered_to_linen": True,
        "blocks": "per-block",
        "pooling": "tok",
        "pos_embedding": POS,
    }


def test_patch_kernels_per_modality(loaded):
    model, arrays, _ = loaded
    kernel = arrays["embedding/kernel"]
    np.testing.assert_array_equal(model.tokenizers["image"].kernel, kernel)
    video = model.tokenizers["video"].kernel.numpy()
    assert video.shape == (2, P, P, 3, D)
    np.testing.assert_array_equal(video[1], kernel)  # central frame of 2 is index 1
    assert not video[0].any()
    for tokenizer in model.tokenizers.values():
        np.testing.assert_array_equal(tokenizer.cls, arrays["cls"])
        np.testing.assert_array_equal(tokenizer.bias, arrays["embedding/bias"])


def test_audio_kernel_embeds_like_the_rgb_kernel_on_a_tiled_spectrogram(loaded):
    """Scenic's PolyViT feeds the spectrogram tiled to 3 channels through the RGB kernel: our
    one-channel kernel gives the same embedding, three times what a channel mean would."""
    model, arrays, _ = loaded
    kernel = arrays["embedding/kernel"]
    audio = model.tokenizers["audio"]
    np.testing.assert_allclose(audio.kernel, 3 * kernel.mean(axis=2, keepdims=True), rtol=1e-5)
    spectrogram = tf.random.stateless_normal((2, 21, 12, 1), seed=(1, 2))
    tiled = tf.tile(audio.pad(spectrogram), [1, 1, 1, 3])
    scenic = patchify(tiled, (P, P)) @ kernel.reshape(-1, D) + arrays["embedding/bias"]
    np.testing.assert_allclose(audio.embed_patches(spectrogram), scenic, atol=1e-4)


def test_positional_embeddings_are_zoomed_and_tiled(loaded):
    model, arrays, _ = loaded
    pos = arrays[POS]
    # Image: 16 / 4 = 4 x 4.
    image = model.tokenizers["image"].pos_embedding.numpy()[0]
    np.testing.assert_array_equal(image[0], pos[0, 0])  # class position kept
    np.testing.assert_allclose(image[1:], zoomed_patches(arrays, (4, 4)), atol=1e-6)
    # zoom keeps the corner positions (TF's half-pixel bilinear resize would not)
    np.testing.assert_allclose(image[1], pos[0, 1], atol=1e-6)
    np.testing.assert_allclose(image[-1], pos[0, -1], atol=1e-6)
    # Video: (4 frames / 2) x 4 x 4, each time step the image's spatial embedding.
    video = model.tokenizers["video"].pos_embedding.numpy()[0]
    np.testing.assert_array_equal(video[0], pos[0, 0])
    for step in video[1:].reshape(2, 16, D):
        np.testing.assert_allclose(step, zoomed_patches(arrays, (4, 4)), atol=1e-6)
    # Audio: (21, 12) padded to (24, 12) -> a 6 x 3 grid, square to non-square.
    audio = model.tokenizers["audio"].pos_embedding.numpy()[0]
    np.testing.assert_array_equal(audio[0], pos[0, 0])
    np.testing.assert_allclose(audio[1:], zoomed_patches(arrays, (6, 3)), atol=1e-6)


@pytest.mark.parametrize("with_class", [True, False])
def test_pos_embedding_resize_equals_scipy_zoom_from_non_square_to_square(with_class):
    rng = np.random.default_rng(3)
    source = rng.normal(size=(6, 10, D)).astype(np.float32)
    class_position = rng.normal(size=(1, 1, D)).astype(np.float32)
    flat = source.reshape(1, 60, D)
    pos = np.concatenate([class_position, flat], axis=1) if with_class else flat
    adapted = adapt_pos_embedding(pos, (8, 8), "pos", source_grid=(6, 10))
    expected = scipy.ndimage.zoom(source, (8 / 6, 8 / 10, 1), order=1).reshape(1, 64, D)
    np.testing.assert_array_equal(adapted.patches, expected)
    if with_class:
        np.testing.assert_array_equal(adapted.class_position, class_position)
    else:
        assert adapted.class_position is None
    # The reason for the change: TF's bilinear resize differs on a random field.
    tf_resized = tf.image.resize(source[None], (8, 8), method="bilinear")[0].numpy()
    assert np.abs(tf_resized.reshape(1, 64, D) - expected).max() > 0.1
    # A square file's grid is found from the count, with or without a class position.
    square = rng.normal(size=(1, 1 + 16, D)).astype(np.float32)
    found = adapt_pos_embedding(square, (8, 8), "pos")
    np.testing.assert_array_equal(found.class_position, square[:, :1])
    np.testing.assert_array_equal(
        found.patches[0], resize_grid(square[0, 1:].reshape(4, 4, D), (8, 8)).reshape(64, D)
    )
    assert adapt_pos_embedding(square[:, 1:], (8, 8), "pos").class_position is None


def test_linen_renumbering_follows_flax():
    keys = [
        "Transformer/encoderblock_0/LayerNorm_0/scale",
        "Transformer/encoderblock_0/MultiHeadDotProductAttention_1/query/kernel",
        "Transformer/encoderblock_0/LayerNorm_2/scale",
        "Transformer/encoderblock_0/MlpBlock_3/Dense_1/kernel",
        "Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel",
        "Transformer/encoderblock_10/LayerNorm_0/scale",  # 10 after 2 (natural order)
        "Transformer/encoderblock_2/LayerNorm_0/scale",
        "Transformer/encoder_norm/scale",
    ]
    assert linen_names(keys) == {
        keys[0]: keys[0],
        keys[1]: "Transformer/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel",
        keys[2]: "Transformer/encoderblock_0/LayerNorm_1/scale",
        keys[3]: "Transformer/encoderblock_0/MlpBlock_0/Dense_1/kernel",
        keys[4]: "Transformer/encoderblock_0/MlpBlock_0/Dense_0/kernel",
        keys[5]: "Transformer/encoderblock_2/LayerNorm_0/scale",
        keys[6]: "Transformer/encoderblock_1/LayerNorm_0/scale",
        keys[7]: keys[7],
    }


def test_linen_numbered_file_loads_the_same_weights(tmp_path):
    arrays = vit_arrays(2, seed=4)
    model = fresh_model()
    report = load_vit_npz(model, write_npz(tmp_path, to_linen(arrays)))
    check_encoder(model, arrays)
    assert report["layout"]["renumbered_to_linen"] is False
    assert "Transformer/encoderblock_1/MlpBlock_0/Dense_1/kernel" in report["loaded"]


@pytest.mark.parametrize("pooling", ["gap", "map"])
def test_big_vision_scanned_file_without_class_token(tmp_path, pooling):
    arrays = vit_arrays(2, seed=5)
    native = to_scanned(to_big_vision(to_linen(arrays), pooling), depth=2)
    assert native["Transformer/encoderblock/LayerNorm_0/scale"].shape == (2, D)
    model = fresh_model()
    before = {
        m: (t.cls.numpy(), t.pos_embedding.numpy()[0, 0]) for m, t in model.tokenizers.items()
    }
    report = load_vit_npz(model, write_npz(tmp_path, native))
    check_encoder(model, arrays)
    for modality, tokenizer in model.tokenizers.items():
        cls, class_position = before[modality]
        np.testing.assert_array_equal(tokenizer.cls, cls)  # starts fresh
        np.testing.assert_array_equal(tokenizer.pos_embedding.numpy()[0, 0], class_position)
    image = model.tokenizers["image"].pos_embedding.numpy()[0, 1:]
    np.testing.assert_allclose(image, zoomed_patches(arrays, (4, 4)), atol=1e-6)
    np.testing.assert_array_equal(model.tokenizers["image"].kernel, arrays["embedding/kernel"])
    assert report["layout"]["blocks"] == "scanned"
    assert report["layout"]["pooling"] == pooling
    assert report["layout"]["pos_embedding"] == "pos_embedding"
    assert sorted(report["fresh"]) == sorted(
        f"{t.name}/{v}"
        for t in model.tokenizers.values()
        for v in ("cls", "pos_embedding[0] (class position)")
    )
    assert "Transformer/encoderblock/MlpBlock_0/Dense_0/kernel" in report["loaded"]
    assert report["ignored"] == (["MAPHead_0/probe"] if pooling == "map" else []) + [
        "head/bias",
        "head/kernel",
    ]


def test_big_vision_token_pooling_file_gets_a_zero_class_position(tmp_path):
    arrays = vit_arrays(2, seed=6)
    model = fresh_model()
    report = load_vit_npz(model, write_npz(tmp_path, to_big_vision(to_linen(arrays), "tok")))
    check_encoder(model, arrays)
    for tokenizer in model.tokenizers.values():
        np.testing.assert_array_equal(tokenizer.cls, arrays["cls"])
        pos = tokenizer.pos_embedding.numpy()[0]
        assert not pos[0].any()  # big_vision adds no position to its class token
    image = model.tokenizers["image"].pos_embedding.numpy()[0, 1:]
    np.testing.assert_allclose(image, zoomed_patches(arrays, (4, 4)), atol=1e-6)
    assert report["fresh"] == []
    assert report["layout"]["blocks"] == "per-block"


def test_modality_layers_take_the_first_blocks_and_the_prefix_is_accepted(tmp_path):
    arrays = vit_arrays(2, seed=1, prefix="opt/target/")
    model = fresh_model(modality_layers=1, num_layers=1)
    load_vit_npz(model, write_npz(tmp_path, arrays))
    plain = {k.removeprefix("opt/target/"): v for k, v in arrays.items()}
    for modality_layers in model.modality_encoders.values():
        check_block(modality_layers.blocks[0], plain, 0)
    check_block(model.encoder.blocks[0], plain, 1)


def test_params_prefix_and_bfloat16_arrays(tmp_path):
    arrays = vit_arrays(2, seed=7)
    kernel = arrays["embedding/kernel"]
    # bfloat16 as np.save writes it: the upper 16 bits of each float32, as 2-byte void
    bits = (kernel.view(np.uint32) >> 16).astype(np.uint16)
    arrays["embedding/kernel"] = bits.view(np.dtype("V2"))
    model = fresh_model()
    load_vit_npz(model, write_npz(tmp_path, {f"params/{k}": v for k, v in arrays.items()}))
    truncated = (bits.astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(model.tokenizers["image"].kernel, truncated)
    np.testing.assert_allclose(truncated, kernel, rtol=1e-2)
    check_block(model.encoder.blocks[1], arrays, 1)


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


def test_scanned_errors_name_the_files_key(tmp_path, loaded):
    model, _, _ = loaded
    scanned = to_scanned(to_linen(vit_arrays(2)), depth=2)
    del scanned["Transformer/encoderblock/MultiHeadDotProductAttention_0/out/bias"]
    with pytest.raises(
        CheckpointError,
        match="missing key 'Transformer/encoderblock/MultiHeadDotProductAttention_0/out/bias'",
    ):
        load_vit_npz(model, write_npz(tmp_path, scanned, "a.npz"))
    ragged = to_scanned(to_linen(vit_arrays(2)), depth=2)
    ragged["Transformer/encoderblock/LayerNorm_1/bias"] = np.ones((3, D), np.float32)
    with pytest.raises(CheckpointError, match="'Transformer/encoderblock/LayerNorm_1/bias' has"):
        load_vit_npz(model, write_npz(tmp_path, ragged, "b.npz"))
    wrong = to_scanned(vit_arrays(2), depth=2)
    wrong["Transformer/encoderblock/LayerNorm_0/scale"] = np.ones((2, 48), np.float32)
    with pytest.raises(
        CheckpointError, match=r"'Transformer/encoderblock/LayerNorm_0/scale\[0\]' has shape"
    ):
        load_vit_npz(model, write_npz(tmp_path, wrong, "c.npz"))


def test_a_file_of_neither_layout_is_refused_naming_the_key(tmp_path, loaded):
    model, _, _ = loaded
    arrays = vit_arrays(2)
    not_vit = {"encoder/kernel": arrays["embedding/kernel"]}
    with pytest.raises(CheckpointError, match="no 'embedding/kernel' key"):
        load_vit_npz(model, write_npz(tmp_path, not_vit, "a.npz"))
    no_pos = {k: v for k, v in arrays.items() if k != POS}
    with pytest.raises(CheckpointError, match="no positional embedding.*'pos_embedding'"):
        load_vit_npz(model, write_npz(tmp_path, no_pos, "b.npz"))
    no_blocks = {k: v for k, v in arrays.items() if "encoderblock" not in k}
    with pytest.raises(CheckpointError, match="no encoder blocks.*'Transformer/encoderblock/'"):
        load_vit_npz(model, write_npz(tmp_path, no_blocks, "c.npz"))
    both = {**arrays, **to_scanned(arrays, depth=2)}
    with pytest.raises(CheckpointError, match="both scanned blocks"):
        load_vit_npz(model, write_npz(tmp_path, both, "d.npz"))
    odd = {**arrays, POS: arrays[POS][:, :-3]}  # 62 positions: no square grid
    with pytest.raises(CheckpointError, match=f"'{POS}': 62 positions"):
        load_vit_npz(model, write_npz(tmp_path, odd, "e.npz"))
    ints = {**arrays, "cls": np.ones((1, 1, D), np.int32)}
    with pytest.raises(CheckpointError, match="'cls' has dtype int32"):
        load_vit_npz(model, write_npz(tmp_path, ints, "f.npz"))
