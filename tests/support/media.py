"""Tiny real media files for the tests, written by the demo's writers (`demo/writers.py`: PNG,
JPEG, H.264/AAC MP4, 16-bit WAV/FLAC) from arrays made here; plus the few inputs the demo never
writes, which ingestion must still read or refuse: stereo AAC, 32-bit and stereo WAV, raw bytes,
a PNG header that declares a huge image.
"""

from __future__ import annotations

import fractions
import os
import struct
import wave
import zlib

import av
import numpy as np

from demo import writers

# Flat frames survive H.264 at this quality almost exactly (brightness within a few levels).
VIDEO_CRF = 10


def _makedirs_for(path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)


def sine(hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * hz * t)


def brightness_frames(count: int, width: int, height: int) -> np.ndarray:
    """(count, H, W, 3) uint8 frames whose grey level is 7 * index (mod 256)."""
    levels = (np.arange(count) * 7) % 256
    return np.broadcast_to(
        levels[:, None, None, None].astype(np.uint8), (count, height, width, 3)
    ).copy()


def moving_square_frames(count: int, direction: int, side: int = 32, square: int = 8):
    """A bright square moving `direction` pixels per frame along x on a black background."""
    frames = np.zeros((count, side, side, 3), np.uint8)
    top = (side - square) // 2
    for i in range(count):
        x = top + direction * i
        frames[i, top : top + square, x : x + square] = 255
    return frames


def write_frames(
    path: str, frames: np.ndarray, fps: int, audio: np.ndarray | None = None, audio_rate=16000
) -> str:
    """uint8 RGB frames (T, H, W, 3) as H.264 MP4, with an optional mono AAC track (demo writer)."""
    writers.write_video(path, frames, fps, VIDEO_CRF, audio, audio_rate)
    return path


def write_video(
    path: str,
    seconds: float = 2.0,
    width: int = 64,
    height: int = 48,
    fps: int = 25,
    audio_rate: int | None = 44100,
    tone_hz: float = 440.0,
    stereo: bool = True,
) -> str:
    """An H.264 clip whose frame brightness encodes the frame index (brightness_frames), with
    an AAC sine track (0.5 amplitude, on both channels when `stereo`) unless audio_rate is None."""
    frames = brightness_frames(round(seconds * fps), width, height)
    tone = None if not audio_rate else sine(tone_hz, seconds, audio_rate).astype(np.float32)
    if tone is not None and stereo:
        _write_video_with_stereo_audio(path, frames, fps, tone, audio_rate)
    else:
        write_frames(path, frames, fps, tone, audio_rate or 16000)
    return path


def _write_video_with_stereo_audio(path, frames, fps, tone, audio_rate) -> None:
    """The demo writes mono soundtracks only; ingestion must also average stereo ones."""
    _makedirs_for(path)
    num_frames, height, width, _ = frames.shape
    with av.open(path, "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": str(VIDEO_CRF)}
        audio = out.add_stream("aac", rate=audio_rate, layout="stereo")
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        _mux_stereo(out, audio, np.stack([tone, tone]), audio_rate)


def _mux_stereo(out, audio, planar: np.ndarray, rate: int) -> None:
    """Encodes [2, samples] float32 (fltp: one row per channel) into the stereo `audio` stream."""
    for begin in range(0, planar.shape[1], 1024):
        chunk = np.ascontiguousarray(planar[:, begin : begin + 1024])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = rate, begin
        frame.time_base = fractions.Fraction(1, rate)
        out.mux(audio.encode(frame))
    out.mux(audio.encode(None))


def write_wav(
    path: str,
    seconds: float = 1.0,
    rate: int = 22050,
    amplitude: float = 0.5,
    sample_width: int = 2,
    channels: int = 1,
    tone_hz: float = 440.0,
) -> str:
    """A PCM WAV sine: 16-bit mono by the demo's writer, 32-bit or multi-channel (which the
    demo never writes) with the standard library."""
    tone = sine(tone_hz, seconds, rate, amplitude)
    if sample_width == 2 and channels == 1:
        writers.write_audio(path, tone.astype(np.float32), rate)
        return path
    _makedirs_for(path)
    scale = 2 ** (8 * sample_width - 1) - 1
    ints = np.round(tone * scale).astype({2: "<i2", 4: "<i4"}[sample_width])
    with wave.open(path, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(sample_width)
        w.setframerate(rate)
        w.writeframes(np.repeat(ints[:, None], channels, axis=1).tobytes())
    return path


def write_float_wav(path: str, planar: np.ndarray, rate: int, layout: str = "mono") -> str:
    """A 32-bit float PCM WAV (FFmpeg's pcm_f32le through PyAV) of float32 samples
    [channels, n] in `layout`'s channel order ("mono", "stereo", "5.1", ...). Values are
    stored as given: NaN and infinity included, which float PCM can hold."""
    _makedirs_for(path)
    planar = np.ascontiguousarray(np.asarray(planar, np.float32))
    with av.open(path, "w") as out:
        stream = out.add_stream("pcm_f32le", rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = rate, 0
        frame.time_base = fractions.Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_png(path: str, width: int = 40, height: int = 30, value: int = 128) -> str:
    """A flat grey PNG."""
    return write_image(path, np.full((height, width, 3), value, np.uint8))


def write_image(path: str, pixels: np.ndarray, jpeg_quality: int = 90) -> str:
    """PNG or JPEG by extension (demo writer)."""
    writers.write_image(path, pixels, jpeg_quality)
    return path


def write_huge_png_header(path: str, side: int = 100_000) -> str:
    """A tiny PNG whose header declares side x side pixels: refused before any decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))
    return write_bytes(path, data + chunk(b"IEND", b""))


def write_bytes(path: str, data: bytes) -> str:
    """Any bytes under any name (empty, truncated or mislabelled media)."""
    _makedirs_for(path)
    with open(path, "wb") as f:
        f.write(data)
    return path


def write_text(path: str, text: str) -> str:
    return write_bytes(path, text.encode())


def write_textured_video(
    path: str, seconds: float, width: int, height: int, fps: int, b_frames: int
) -> str:
    """H.264 of a blurred noise texture scrolling diagonally (real motion and detail, so that
    scaling and frame choice show in the pixels), with `b_frames` B-frames (libx264's default is
    3; 0 for none) and a stereo AAC sweep. Single-threaded x264, so the bytes are reproducible."""
    from PIL import Image, ImageFilter

    _makedirs_for(path)
    rng = np.random.default_rng(width * 1000 + height)
    noise = rng.integers(0, 256, (height + seconds * fps, width + 2 * seconds * fps, 3))
    texture = np.asarray(
        Image.fromarray(noise.astype(np.uint8)).filter(ImageFilter.GaussianBlur(2))
    )
    rate = 44100
    t = np.arange(round(seconds * rate)) / rate
    sweep = (0.4 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.float32)
    with av.open(path, "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "bf": str(b_frames), "threads": "1"}
        audio = out.add_stream("aac", rate=rate, layout="stereo")
        for i in range(round(seconds * fps)):
            pixels = np.ascontiguousarray(texture[i : i + height, 2 * i : 2 * i + width])
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        _mux_stereo(out, audio, np.stack([sweep, sweep[::-1].copy()]), rate)
    return path
