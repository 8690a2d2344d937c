"""PyAV decoding: frame counts and sizes, audio sample counts and range, clip cutting, errors."""

from __future__ import annotations

import io
import os

import av
import numpy as np
import pytest
import simplejpeg
from PIL import Image

from core.config import Ingestion
from media import decode, errors
from media.errors import MediaError
from tests.support.media import (
    sine,
    write_bytes,
    write_float_wav,
    write_huge_png_header,
    write_png,
    write_textured_video,
    write_video,
    write_wav,
)

ING = Ingestion(fps=8, short_side=36, clip_seconds=2.0, sample_rate=16000)


def jpeg_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def test_video_frames_sizes_and_audio(sample_video):
    clips = decode.decode_file(sample_video, "video", ING)
    assert len(clips) == 1
    clip = clips[0]
    assert (clip.start_s, clip.end_s) == (0.0, 2.0)
    assert len(clip.frames) == 16  # 8 fps x 2 s
    assert {jpeg_size(f) for f in clip.frames} == {(48, 36)}  # 64x48 -> short side 36
    assert (clip.width, clip.height, clip.frame_rate) == (48, 36, 8.0)
    assert clip.waveform.dtype == np.float32 and clip.waveform.shape == (32000,)
    # A 0.5-amplitude sine on both channels: mono stays 0.5 (channels averaged, not summed).
    assert 0.45 < np.abs(clip.waveform[1000:-1000]).max() < 0.55
    # Frame i of the source has brightness 7*i: sample j at 8 fps is source frame 25*j/8.
    brightness = [np.asarray(Image.open(io.BytesIO(f))).mean() for f in clip.frames]
    expected = [(7 * int(j * 25 / 8)) % 256 for j in range(16)]
    assert np.allclose(brightness, expected, atol=3)  # neighbours differ by 7


def test_long_video_is_cut_into_clips_and_time_range_is_honoured(tmp_path):
    path = write_video(str(tmp_path / "long.mp4"), seconds=5.0, width=48, height=64)
    clips = decode.decode_file(path, "video", ING)
    assert [(c.start_s, c.end_s, len(c.frames)) for c in clips] == [
        (0.0, 2.0, 16),
        (2.0, 4.0, 16),
        (4.0, 5.0, 8),  # a tail of at least half a clip is kept
    ]
    assert [len(c.waveform) for c in clips] == [32000, 32000, 16000]
    assert {jpeg_size(f) for c in clips for f in c.frames} == {(36, 48)}  # portrait
    ranged = list(decode.iter_clips(path, "video", ING, start_s=1.0, end_s=2.5))
    assert [(c.start_s, c.end_s, len(c.frames), len(c.waveform)) for c in ranged] == [
        (1.0, 2.5, 12, 24000)
    ]


def test_tail_shorter_than_half_a_clip_is_not_a_clip():
    assert decode.clip_windows(0.0, 2.9, 2.0) == [(0.0, 2.0)]
    assert decode.clip_windows(0.0, 3.1, 2.0) == [(0.0, 2.0), (2.0, 3.1)]
    assert decode.clip_windows(0.0, 0.4, 2.0) == [(0.0, 0.4)]


@pytest.mark.parametrize("sample_width", [2, 4])
def test_wav_int16_and_int32_are_scaled_to_unit_range(tmp_path, sample_width):
    # DMVR's generator reads 32-bit PCM bytes as float32; here int32 must come out as 0.5 too.
    path = write_wav(str(tmp_path / "a.wav"), seconds=1.0, rate=22050, sample_width=sample_width)
    (clip,) = decode.decode_file(path, "audio", ING)
    assert clip.frames == [] and clip.sample_rate == 16000
    assert clip.waveform.shape == (16000,)
    assert 0.48 < np.abs(clip.waveform).max() <= 0.51


def test_full_scale_stereo_stays_in_range(tmp_path):
    path = write_wav(str(tmp_path / "loud.wav"), amplitude=1.0, channels=2, sample_width=4)
    (clip,) = decode.decode_file(path, "audio", ING)
    assert np.abs(clip.waveform).max() <= 1.0 and np.abs(clip.waveform).max() > 0.95


def _pyav_mono(path: str, rate: int) -> np.ndarray:
    """PyAV's own mono output of a file: its resampler asked for mono 32-bit PCM, as
    `ffmpeg -ac 1 -f s32le` (DMVR's generator) asks FFmpeg, scaled to [-1, 1)."""
    with av.open(path) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s32", layout="mono", rate=rate)
        chunks = [
            out.to_ndarray() for f in container.decode(stream) for out in resampler.resample(f)
        ]
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
    return np.concatenate(chunks, axis=1)[0] / 2**31


def test_a_5_1_soundtrack_is_downmixed_as_ffmpeg_does(tmp_path):
    rate, seconds = 16000, 1.0
    tones = [300.0, 500.0, 700.0, 60.0, 1100.0, 1300.0]  # FL FR FC LFE BL BR
    planar = np.stack([sine(hz, seconds, rate, 0.2) for hz in tones])
    path = write_float_wav(str(tmp_path / "surround.wav"), planar, rate, layout="5.1")
    (clip,) = decode.decode_file(path, "audio", Ingestion(clip_seconds=1.0, sample_rate=rate))
    np.testing.assert_allclose(clip.waveform, _pyav_mono(path, rate)[:16000], atol=1e-6)

    # FFmpeg's default matrix: centre 1, fronts 1/sqrt(2), surrounds 1/2, LFE 0, scaled to sum
    # to 1 for integer output. Averaging the six channels would give 1/6 each.
    weights = np.array([np.sqrt(0.5), np.sqrt(0.5), 1.0, 0.0, 0.5, 0.5])
    expected = weights @ planar / weights.sum()
    np.testing.assert_allclose(clip.waveform, expected, atol=2e-3)
    centre_only = np.zeros_like(planar)
    centre_only[2] = planar[2]
    path = write_float_wav(str(tmp_path / "centre.wav"), centre_only, rate, layout="5.1")
    (clip,) = decode.decode_file(path, "audio", Ingestion(clip_seconds=1.0, sample_rate=rate))
    level = np.abs(clip.waveform).max()
    assert abs(level - 0.2 / weights.sum()) < 2e-3  # 0.0586, not 0.2 / 6 = 0.0333


def test_non_finite_samples_are_refused_with_their_reason(tmp_path):
    samples = np.full((1, 16000), 0.25, np.float32)
    samples[0, 100], samples[0, 200] = np.nan, np.inf
    path = write_float_wav(str(tmp_path / "nan.wav"), samples, 16000)
    with pytest.raises(MediaError) as info:
        decode.decode_file(path, "audio", ING)
    assert info.value.reason == errors.NON_FINITE and info.value.path == path
    assert "NaN or infinite" in info.value.detail


def test_audio_track_of_a_video(sample_video):
    (clip,) = decode.decode_file(sample_video, "audio", ING)
    assert clip.frames == [] and clip.waveform.shape == (32000,)


@pytest.mark.parametrize("width, height", [(71, 40), (40, 71), (71, 41)])
def test_an_odd_sized_frame_encodes_the_same_whatever_lies_past_its_edge(width, height):
    """TurboJPEG reads the luma plane padded to even sizes, one column (row) past an odd frame's
    edge: read from whatever memory followed, it made JPEGs of the same frame differ from run to
    run, by up to 20 levels in the bottom-right block."""
    rows, cols = np.mgrid[0:height, 0:width]
    luma = (60 + rows + cols).astype(np.uint8)  # smooth: JPEG keeps it within a few levels
    chroma = np.full(((height + 1) // 2, (width + 1) // 2), 128, np.uint8)

    def encode(fill: int) -> bytes:
        memory = np.full((height + 4, width + 16), fill, np.uint8)  # a frame with row padding
        memory[:height, :width] = luma
        y = decode._even_luma(memory[:height, :width])
        return simplejpeg.encode_jpeg_yuv_planes(y, chroma, chroma.copy(), quality=90)

    assert encode(0) == encode(255)
    decoded = simplejpeg.decode_jpeg(encode(255), colorspace="GRAY")[..., 0].astype(int)
    assert decoded.shape == (height, width)
    assert np.abs(decoded[-8:, -8:] - luma[-8:, -8:]).max() <= 3


def test_decoding_a_clip_twice_gives_the_same_bytes(tmp_path):
    """Records are reproducible: the same file ingested twice gives identical JPEGs (the 16:9
    clip scales to an odd width, 71x40)."""
    path = write_textured_video(str(tmp_path / "clip.mp4"), 2, 128, 72, 30, b_frames=3)
    ingestion = Ingestion(fps=15, short_side=40, clip_seconds=2.0, sample_rate=16000)
    first, again = (decode.decode_file(path, "video", ingestion) for _ in range(2))
    assert (first[0].width, first[0].height) == (71, 40)
    assert [c.frames for c in first] == [c.frames for c in again]


def test_image_is_one_resized_frame(tmp_path):
    (clip,) = decode.decode_file(write_png(str(tmp_path / "a.png"), 40, 30), "image", ING)
    assert len(clip.frames) == 1 and jpeg_size(clip.frames[0]) == (48, 36)
    assert clip.waveform is None


def reason_of(path, modality, ingestion=ING) -> str:
    with pytest.raises(MediaError) as info:
        decode.decode_file(path, modality, ingestion)
    assert info.value.path == path  # the error names the file
    return info.value.reason


def test_bad_inputs_have_typed_reasons(tmp_path, sample_video):
    good = open(sample_video, "rb").read()
    d = str(tmp_path)
    assert reason_of(os.path.join(d, "none.mp4"), "video") == errors.MISSING_FILE
    assert reason_of(write_bytes(f"{d}/empty.mp4", b""), "video") == errors.EMPTY_FILE
    truncated = write_bytes(f"{d}/truncated.mp4", good[: len(good) // 2])
    assert reason_of(truncated, "video") == errors.CORRUPT_CONTAINER
    text = write_bytes(f"{d}/notes.mp4", b"just some text, renamed to look like a video\n" * 20)
    assert reason_of(text, "video") == errors.NOT_MEDIA
    wav = write_wav(f"{d}/a.wav")
    assert reason_of(wav, "video") == errors.NO_VIDEO_STREAM
    silent = write_video(f"{d}/silent.mp4", seconds=1.0, audio_rate=None)
    assert reason_of(silent, "audio") == errors.NO_AUDIO_STREAM
    huge = write_huge_png_header(f"{d}/huge.png")
    assert reason_of(huge, "image") == errors.RESOLUTION_TOO_LARGE
    small_limit = Ingestion(fps=8, short_side=36, max_resolution=32)
    assert reason_of(sample_video, "video", small_limit) == errors.RESOLUTION_TOO_LARGE
    assert reason_of(text.replace(".mp4", ".png"), "image") == errors.MISSING_FILE
    fake_png = write_bytes(f"{d}/fake.png", b"hello, not an image")
    assert reason_of(fake_png, "image") == errors.NOT_MEDIA
    with pytest.raises(MediaError, match=errors.BAD_TIME_RANGE):
        list(decode.iter_clips(sample_video, "video", ING, start_s=5.0, end_s=6.0))
