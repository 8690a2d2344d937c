"""Decoding is pinned: on generated clips (with and without B-frames, a seek, a frame rate that
does not divide the source's) the picked frames' times, their pixels and the audio samples are
those recorded in data/decode_fingerprint.npz by the decoder before it was made faster.

Times and audio must match exactly; pixels are compared after JPEG decoding, within a small
tolerance, because a different (equally good) JPEG encoder and scaler output format round
differently.
Re-record (only for an intended change of output): python -m tests.ingest.test_ingest_fingerprint
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import sys
import tempfile

import numpy as np
import pytest
from PIL import Image

from core.config import Ingestion
from media import decode
from tests.support.media import write_textured_video, write_video

FINGERPRINT = os.path.join(os.path.dirname(__file__), "data", "decode_fingerprint.npz")
ING = Ingestion(fps=8, short_side=40, clip_seconds=1.0, sample_rate=16000)

# name -> (writer, iter_clips keyword arguments)
CASES = {
    "brightness_25fps": (lambda p: write_video(p, seconds=3.0, width=64, height=48), {}),
    "bframes_30fps": (lambda p: write_textured_video(p, 2, 128, 72, 30, b_frames=3), {}),
    "no_bframes_30fps": (lambda p: write_textured_video(p, 2, 128, 72, 30, b_frames=0), {}),
    "bframes_seek": (
        lambda p: write_textured_video(p, 2, 128, 72, 30, b_frames=3),
        {"start_s": 0.7, "end_s": 1.9},
    ),
}


def fingerprint(folder: str, name: str) -> dict[str, np.ndarray]:
    writer, kwargs = CASES[name]
    path = writer(os.path.join(folder, f"{name}.mp4"))
    clips = list(decode.iter_clips(path, "video", ING, **kwargs))
    pixels = [np.asarray(Image.open(io.BytesIO(f)).convert("RGB")) for c in clips for f in c.frames]
    audio = np.concatenate([c.waveform for c in clips]).astype("<f4")
    return {
        f"{name}/clips": np.array([(c.start_s, c.end_s, len(c.frames)) for c in clips]),
        f"{name}/times": np.array([t for c in clips for t in c.frame_times]),
        f"{name}/pixels": np.stack(pixels),
        f"{name}/audio_sha256": np.array(hashlib.sha256(audio.tobytes()).hexdigest()),
        f"{name}/audio_len": np.array(len(audio)),
    }


@pytest.fixture(scope="module")
def recorded():
    with np.load(FINGERPRINT) as data:
        return dict(data)


@pytest.mark.parametrize("name", sorted(CASES))
def test_decoded_clips_match_the_recorded_fingerprint(name, recorded, tmp_path):
    now = fingerprint(str(tmp_path), name)
    for key in (f"{name}/clips", f"{name}/times", f"{name}/audio_len", f"{name}/audio_sha256"):
        np.testing.assert_array_equal(now[key], recorded[key], err_msg=key)
    before, after = recorded[f"{name}/pixels"], now[f"{name}/pixels"]
    assert after.shape == before.shape
    signed = after.astype(np.int16) - before.astype(np.int16)
    # No shift of levels or colours beyond a level (a wrong range or matrix moves a channel's
    # mean by several; swscale's fixed-point range expansion of chroma, used since the scaler
    # writes full-range YUV for the encoder, moves R and B by under one) ...
    assert np.abs(signed.mean(axis=(0, 1, 2))).max() < 1.2, signed.mean(axis=(0, 1, 2))
    # ... and no more re-encoding noise than JPEG at this quality makes on a noise texture
    # (the encoder now takes 4:2:0 planes from the scaler instead of RGB: rounding moves).
    assert np.abs(signed).mean() < 2.5, np.abs(signed).mean()


def record() -> None:
    arrays: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in sorted(CASES):
            arrays.update(fingerprint(folder, name))
    os.makedirs(os.path.dirname(FINGERPRINT), exist_ok=True)
    np.savez_compressed(FINGERPRINT, **arrays)
    print(f"recorded {FINGERPRINT}", file=sys.stderr)


if __name__ == "__main__":
    record()


@pytest.mark.parametrize("name", ["bframes_30fps", "bframes_seek", "no_bframes_30fps"])
def test_skipping_nonref_frames_moves_a_pick_by_at_most_one_source_frame(name, recorded, tmp_path):
    writer, kwargs = CASES[name]
    path = writer(str(tmp_path / f"{name}.mp4"))
    skipping = dataclasses.replace(ING, skip_nonref_frames=True)  # 30 fps source, 8 fps target
    clips = list(decode.iter_clips(path, "video", skipping, **kwargs))
    exact = recorded[f"{name}/times"]
    times = np.array([t for c in clips for t in c.frame_times])
    assert times.shape == exact.shape
    assert np.abs(times - exact).max() <= 1 / 30 + 1e-6, times - exact
    assert [(c.start_s, c.end_s, len(c.frames)) for c in clips] == [
        tuple(row) for row in recorded[f"{name}/clips"]
    ]


def test_a_frame_is_needed_only_when_a_sample_time_falls_in_its_display_interval():
    sampler = decode._FrameSampler(start=0.0, fps=8.0, size=(8, 8), quality=90)
    frame = 1 / 30
    assert sampler.needs(0.0, frame)  # sample 0 at 0 s
    assert not sampler.needs(frame, frame)  # [1/30, 2/30): no multiple of 1/8
    assert sampler.needs(0.1, frame)  # 0.125 lies in [0.1, 0.1333)
    assert not sampler.needs(0.1 + frame, frame)  # [0.1333, 0.1667)
