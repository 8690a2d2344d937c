"""The pretrained model's embedding signatures: exported, reloaded, they give the model's own
evaluation-mode embeddings, L2-normalised, and rank_captions orders captions by them."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.vatt.test_vatt_pretrain import WORDS, _config, _record
from trainer.vatt import embed_export, pretrain
from transforms import vatt_inputs


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    config = _config()
    model = pretrain.make_model(config, WORDS)
    path = embed_export.export_embeddings(model, config, WORDS, str(tmp_path_factory.mktemp("m")))
    return config, model, tf.saved_model.load(path), path


def test_export_lands_in_tf_servings_layout(exported):
    *_, path = exported
    assert path.endswith("/embeddings/1")
    assert tf.io.gfile.exists(f"{path}/saved_model.pb")


def test_example_embeddings_are_the_models_and_unit_length(exported):
    config, model, loaded, _ = exported
    records = [_record(i, "digit moves up") for i in range(3)]
    out = loaded.signatures["embed_examples"](examples=tf.constant(records))
    assert out["video_va"].shape[0] == 3
    for key in ("video_va", "video_vt", "audio"):
        assert np.allclose(np.linalg.norm(out[key].numpy(), axis=1), 1.0, atol=1e-5)
    table = vatt_inputs.captions.word_table(WORDS)
    ex = vatt_inputs.pretraining_example(
        tf.constant(records[1]),
        config.tasks[0],
        config.inputs,
        config.pretraining,
        table,
        training=False,
    )
    va, _ = model.embed_video(ex["video"][None], training=False)
    expected = tf.math.l2_normalize(va, axis=-1).numpy()[0]
    assert np.allclose(out["video_va"].numpy()[1], expected, atol=1e-5)


def test_text_embeddings_and_caption_ranking_agree(exported):
    _, model, loaded, _ = exported
    texts = ["digit moves up", "down", "zebra unknown words"]
    text = loaded.signatures["embed_text"](captions=tf.constant(texts))["text"].numpy()
    assert text.shape[0] == 3
    assert np.allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    # "digit moves up" -> ids [2, 3, 4, 0] through the model's own text path.
    direct = model.embed_text(tf.constant([[[2, 3, 4, 0]]]), training=False).numpy()[0, 0]
    assert np.allclose(text[0], direct / np.linalg.norm(direct), atol=1e-5)
    clip = tf.constant([_record(0, "")])
    ranked = loaded.signatures["rank_captions"](examples=clip, captions=tf.constant(texts))
    video = loaded.signatures["embed_examples"](examples=clip)["video_vt"].numpy()[0]
    cosine = text @ video
    assert ranked["order"].numpy().tolist() == np.argsort(-cosine).tolist()
    assert np.allclose(ranked["scores"].numpy(), np.sort(cosine)[::-1], atol=1e-5)
    assert [c.decode() for c in ranked["captions"].numpy()] == [
        texts[i] for i in np.argsort(-cosine)
    ]


def test_the_fine_tuned_export_carries_the_embedding_signatures(exported, tmp_path):
    """trainer/export.py's extra_modules: the task signatures and the pretrained model's
    embedding signatures in one SavedModel, the embeddings the same as the standalone export's."""
    import dataclasses

    from trainer.export import export_saved_model
    from trainer.model import build_model

    config, model, standalone, _ = exported
    polyvit = build_model(config.model, config.tasks, config.inputs)
    modules = {"vatt_embeddings": embed_export.EmbeddingModule(model, config, WORDS)}
    path = export_saved_model(
        polyvit, config, {"clips": ["a", "b"]}, str(tmp_path / "m"), extra_modules=modules
    )
    loaded = tf.saved_model.load(path)
    assert {"clips", "clips_raw", "clips_classify", "embed_examples", "embed_text"} <= set(
        loaded.signatures
    )
    assert "rank_captions" in loaded.signatures
    records = tf.constant([_record(i, "digit moves up") for i in range(2)])
    # serving_default stays the first task's classifier.
    assert "scores" in loaded.signatures["serving_default"](examples=records)
    texts = tf.constant(["digit moves up", "down"])
    calls = [("embed_text", {"captions": texts}), ("embed_examples", {"examples": records})]
    for name, inputs in calls:
        got, want = loaded.signatures[name](**inputs), standalone.signatures[name](**inputs)
        for key in want:
            assert np.allclose(got[key].numpy(), want[key].numpy(), atol=1e-6), (name, key)
    # A task named like an embedding signature is refused, not silently shadowed.
    clash = dataclasses.replace(
        config, tasks=[dataclasses.replace(config.tasks[0], name="embed_text")]
    )
    with pytest.raises(ValueError, match="'embed_text' collides"):
        export_saved_model(
            build_model(clash.model, clash.tasks, clash.inputs),
            clash,
            {"embed_text": ["a", "b"]},
            str(tmp_path / "clash"),
            extra_modules=modules,
        )
