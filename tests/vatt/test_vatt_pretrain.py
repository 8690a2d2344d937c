"""The pretraining loop on tiny records written in the project's layout: the records' inputs
and masks, a run that resumes from its checkpoint, and zero-shot retrieval metrics."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from core import features
from core.config import Inputs, Model, Pretraining, Task, TrainerConfig, Training
from media import dmvr
from media.decode import DecodedClip
from trainer.vatt import pretrain, retrieval
from transforms import vatt_inputs

RATE = 8000
WORDS = ["digit", "moves", "up", "down"]


def _jpeg(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(out, format="JPEG")
    return out.getvalue()


def _record(i: int, caption: str, has_audio: bool = True) -> bytes:
    clip = DecodedClip(
        start_s=0.0,
        end_s=0.5,
        frames=[_jpeg(20 * i + 5 * t) for t in range(4)],
        frame_rate=8.0,
        width=16,
        height=16,
        waveform=np.sin(np.arange(4000) * (0.01 + 0.01 * i)).astype(np.float32) * has_audio,
        sample_rate=RATE,
        has_audio=has_audio,
    )
    meta = dmvr.ClipMetadata("clips", f"c{i}.mp4", 0, 500_000, caption=caption)
    return dmvr.build_sequence_example(clip, meta).SerializeToString()


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("records")
    path = str(folder / "clips-00000-of-00001.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(6):
            caption = "" if i == 5 else "digit moves up | digit moves down" if i % 2 else "up"
            writer.write(_record(i, caption, has_audio=i != 4))
    return path


def _config(**pre) -> TrainerConfig:
    task = Task(name="clips", modality="video", num_classes=2, batch_size=4)
    return TrainerConfig(
        tasks=[task],
        model=Model(preset="tiny", overrides={"num_layers": 1}),
        inputs=Inputs(video_size=16, num_frames=4, audio_seconds=0.5, audio_sample_rate=RATE),
        training=Training(checkpoint_every=2, log_every=1),
        pretraining=Pretraining(
            enabled=True,
            task="clips",
            steps=3,
            batch_size=4,
            waveform_patch=200,
            text_length=4,
            max_captions=2,
            **pre,
        ),
    )


def test_records_give_inputs_and_masks(records):
    config = _config()
    ds = vatt_inputs.make_pretraining_dataset(
        records,
        config.tasks[0],
        config.inputs,
        config.pretraining,
        WORDS,
        training=False,
        batch_size=6,
        drop_remainder=False,
    )
    batch = next(iter(ds))
    assert batch["video"].shape == (6, 4, 16, 16, 3)
    assert batch["audio"].shape == (6, 4000, 1)
    assert batch["audio_mask"].numpy().tolist() == [1, 1, 1, 1, 0, 1]
    # "up" -> [4]; "digit moves up | digit moves down" -> two candidates; no caption -> masked.
    assert batch["text"][0].numpy().tolist() == [[4, 0, 0, 0], [0, 0, 0, 0]]
    assert batch["text"][1].numpy().tolist() == [[2, 3, 4, 0], [2, 3, 5, 0]]
    assert batch["text_mask"].numpy().tolist() == [[1, 0], [1, 1]] * 2 + [[1, 0], [0, 0]]


def test_pretraining_resumes_from_its_checkpoint(records, tmp_path):
    config = _config()
    first = pretrain.pretrain(config, str(tmp_path), records, WORDS)
    assert (first.start_step, first.step) == (0, 3)
    assert all(np.isfinite(row["loss"]) for row in first.history)
    more = dataclasses.replace(config, pretraining=dataclasses.replace(config.pretraining, steps=4))
    second = pretrain.pretrain(more, str(tmp_path), records, WORDS)
    assert (second.start_step, second.step) == (3, 4)
    # Step 3's checkpoint holds the first run's final weights, which the second run restored.
    saved = tf.train.load_variable(
        str(tmp_path / "ckpt-3"), "model/tokenizers/video/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    )
    assert np.allclose(saved, first.model.tokenizers["video"].kernel.numpy())
    fresh = pretrain.make_model(config, WORDS).tokenizers["video"].kernel.numpy()
    assert not np.allclose(saved, fresh)


def test_zero_shot_retrieval_on_an_eval_split(records, tmp_path):
    config = _config(backbone="per_modality")
    model = pretrain.make_model(config, WORDS)
    embedded = pretrain.embed_split(model, config, records, WORDS)
    metrics = pretrain.zero_shot_retrieval(embedded)
    assert metrics["video_to_audio"]["queries"] == 5  # clip 4 has no audio
    assert metrics["video_to_text"]["queries"] == 5  # clip 5 has no caption
    assert 1 <= metrics["video_to_text"]["median_rank"] <= 5


def test_ranks_and_recall_by_hand():
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    items = np.array([[1.0, 0.1], [1.0, 0.0], [0.0, 1.0]])
    # Cosines: q0 own 0.995, item1 1.0 above -> 2; q1 own 0.0, every item >= 0 -> 3;
    # q2 own 0.707, item0 0.774 above and item1 0.707 tied (ties count against) -> 3.
    assert retrieval.ranks(queries, items).tolist() == [2, 3, 3]
    sets = np.array([[[1.0, 0.0], [0.0, 5.0]], [[0.0, 1.0], [0.0, 1.0]]])
    assert retrieval.ranks(queries[:2], sets, np.array([[1, 0], [1, 1]])).tolist() == [1, 1]
    metrics = retrieval.retrieval_metrics(np.array([1, 2, 7, 20]))
    assert metrics == {
        "R@1": 0.25,
        "R@5": 0.5,
        "R@10": 0.75,
        "median_rank": 4.5,
        "chance_R@1": 0.25,
        "queries": 4.0,
    }


def test_features_constant_is_the_records_key():
    assert features.HAS_CAPTION == "caption/has_caption"


def test_linear_probe_scores_separable_features_perfectly_and_noise_near_chance():
    from trainer.vatt.probe import fit_and_score

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 30)
    centres = rng.normal(size=(4, 8)) * 5
    train = (centres[labels] + rng.normal(size=(120, 8)), labels)
    test = (centres[labels] + rng.normal(size=(120, 8)), labels)
    assert fit_and_score(train, test) == 1.0
    noise = (rng.normal(size=(120, 8)), labels)
    assert fit_and_score(noise, (rng.normal(size=(120, 8)), labels)) < 0.5
