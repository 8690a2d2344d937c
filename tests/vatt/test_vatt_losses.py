"""VATT's losses against small cases worked out by hand, their masks, and the cross-replica
gather on two logical CPU devices (a fresh process: TensorFlow fixes its devices at start)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from trainer.vatt import losses

E0, E1 = [1.0, 0.0], [0.0, 1.0]


def test_nce_two_orthogonal_pairs():
    # Each row: positive logit 1/T, one negative at 0 -> log(1 + e^(-1/T)), both directions.
    video = tf.constant([E0, E1])
    audio = tf.constant([[3.0, 0.0], [0.0, 0.5]])  # normalised to E0, E1
    for t in (1.0, 0.5):
        got = float(losses.nce_loss(video, audio, t))
        assert got == pytest.approx(math.log(1 + math.exp(-1 / t)), rel=1e-5)


def test_nce_masked_clip_is_neither_anchor_nor_negative():
    video = tf.constant([E0, E1, E0])
    audio = tf.constant([E0, E1, E1])  # clip 2 has no audio: its silence embeds like clip 1
    got = float(losses.nce_loss(video, audio, 1.0, mask=tf.constant([1, 1, 0])))
    assert got == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-5)
    # Without the mask clip 2 is a (wrong) negative of clips 0 and 1 and an anchor.
    assert float(losses.nce_loss(video, audio, 1.0)) > got + 0.1


def test_mil_nce_two_clips_two_candidates():
    # v0 = E0, captions of clip 0 both E0, of clip 1 both E1, T = 1:
    # positive 2e; denominator 2e (own) + 2 * e^0 (v0 . t1k) + 2 * e^0 (v1 . t0k).
    video = tf.constant([E0, E1])
    text = tf.constant([[E0, E0], [E1, E1]])
    got = float(losses.mil_nce_loss(video, text, 1.0))
    assert got == pytest.approx(math.log(1 + 2 / math.e), rel=1e-5)


def test_mil_nce_padded_candidate_and_missing_caption():
    video = tf.constant([E0, E1])
    text = tf.constant([[E0, E1], [E1, E1]])  # clip 0's second candidate is padding
    text_mask = tf.constant([[1, 0], [1, 1]])
    # Clip 0: positive e; denominator e + 2 (v0 . t1k) + 1 (v1 . t00) -> log(1 + 3/e).
    # Clip 1: positive 2e; denominator 2e + 1 (v1 . t00) + 2 (v0 . t1k) -> log(1 + 3/(2e)).
    expected = 0.5 * (math.log(1 + 3 / math.e) + math.log(1 + 3 / (2 * math.e)))
    assert float(losses.mil_nce_loss(video, text, 1.0, text_mask)) == pytest.approx(expected, 1e-5)
    # Clip 1 without a caption: clip 0 alone, with no negatives left -> 0.
    got = losses.mil_nce_loss(video, text, 1.0, text_mask, mask=tf.constant([1, 0]))
    assert float(got) == pytest.approx(0.0, abs=1e-6)


def test_vatt_loss_weights_from_arguments():
    video, audio = tf.constant([E0, E1]), tf.constant([E0, E1])
    text = tf.constant([[E0], [E1]])
    out = losses.vatt_loss(
        {"video_va": video, "audio": audio, "video_vt": video, "text": text},
        {},
        temperature=1.0,
        audio_weight=1.0,
        text_weight=0.5,
    )
    nce, mil = math.log(1 + math.exp(-1)), math.log(1 + 2 / math.e)
    assert float(out["nce_video_audio"]) == pytest.approx(nce, rel=1e-5)
    assert float(out["mil_nce_video_text"]) == pytest.approx(mil, rel=1e-5)
    assert float(out["loss"]) == pytest.approx(nce + 0.5 * mil, rel=1e-5)


def _global_reference(batch: dict) -> dict:
    video, audio, text = (tf.constant(batch[k]) for k in ("video", "audio", "text"))
    mask = tf.constant(batch["mask"])
    return {
        "nce": float(losses.nce_loss(video, audio, 0.1, mask)),
        "mil": float(losses.mil_nce_loss(video, text, 0.1, mask=mask)),
    }


@pytest.fixture(scope="module")
def two_replica_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    batch = {
        "video": rng.normal(size=(6, 4)).tolist(),
        "audio": rng.normal(size=(6, 4)).tolist(),
        "text": rng.normal(size=(6, 2, 4)).tolist(),
        "mask": [1.0, 1.0, 0.0, 1.0, 1.0, 1.0],
    }
    path = tmp_path_factory.mktemp("replicas") / "batch.json"
    path.write_text(json.dumps(batch))
    worker = os.path.join(os.path.dirname(__file__), "vatt_replica_worker.py")
    done = subprocess.run(
        [sys.executable, worker, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return batch, result


def test_gathered_batch_is_the_global_one(two_replica_run):
    batch, result = two_replica_run
    assert result["replicas"] == 2
    assert np.allclose(result["gathered"][0], batch["video"], atol=1e-6)
    assert np.allclose(result["gathered"][1], batch["video"], atol=1e-6)
    assert result["offsets"] == [0, 3]


def test_replica_shares_sum_to_the_single_device_loss(two_replica_run):
    batch, result = two_replica_run
    reference = _global_reference(batch)
    assert result["nce"] == pytest.approx(reference["nce"], rel=1e-5)
    assert result["mil"] == pytest.approx(reference["mil"], rel=1e-5)
