"""Thin writer layer: numpy arrays in, media files and CSVs out (PyAV, Pillow, csv, json).

Every encoder runs single-threaded and every container is written in FFmpeg's bitexact mode, so
with the same PyAV/FFmpeg build the same arrays give byte-identical files (no thread-order
effects, no creation times). Encoders still stamp their version (x264's SEI), so another build
may give other bytes for the same pixels.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence

import av
import numpy as np
from PIL import Image

# No creation times or muxer version strings in the container headers.
_CONTAINER_OPTIONS = {"fflags": "+bitexact"}
_PCM_CODECS = {".wav": ("wav", "pcm_s16le"), ".flac": ("flac", "flac")}


def _makedirs_for(path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)


def to_int16(wave: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] (clipped) to int16 PCM."""
    return np.round(np.clip(wave, -1.0, 1.0) * 32767.0).astype(np.int16)


def write_image(path: str, pixels: np.ndarray, jpeg_quality: int) -> None:
    """Writes a uint8 (H, W) or (H, W, 3) array as PNG or JPEG, chosen by the file extension."""
    _makedirs_for(path)
    image = Image.fromarray(pixels)
    ext = os.path.splitext(path)[1].lower()
    if ext in (".jpg", ".jpeg"):
        image.save(path, format="JPEG", quality=jpeg_quality)
    elif ext == ".png":
        image.save(path, format="PNG")
    else:
        raise ValueError(f"{path}: unsupported image extension {ext!r} (use .png or .jpg)")


def _audio_frames(samples: np.ndarray, sample_rate: int, chunk: int) -> Iterable[av.AudioFrame]:
    """Mono int16 samples as PyAV frames with consecutive timestamps."""
    for begin in range(0, len(samples), chunk):
        part = samples[begin : begin + chunk]
        frame = av.AudioFrame.from_ndarray(part[np.newaxis, :], format="s16", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = begin
        yield frame


def write_audio(path: str, wave: np.ndarray, sample_rate: int) -> None:
    """Writes mono float samples as 16-bit WAV or FLAC, chosen by the file extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in _PCM_CODECS:
        raise ValueError(f"{path}: unsupported audio extension {ext!r} (use .wav or .flac)")
    if wave.ndim != 1:
        raise ValueError(f"{path}: expected mono samples (1-D), got shape {wave.shape}")
    container_format, codec = _PCM_CODECS[ext]
    _makedirs_for(path)
    with av.open(path, "w", format=container_format, container_options=_CONTAINER_OPTIONS) as out:
        stream = out.add_stream(codec, rate=sample_rate, layout="mono", format="s16")
        stream.codec_context.thread_count = 1
        for frame in _audio_frames(to_int16(wave), sample_rate, chunk=4096):
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def write_video(
    path: str,
    frames: np.ndarray,
    fps: int,
    crf: int,
    audio: np.ndarray | None = None,
    audio_sample_rate: int = 16000,
    audio_bitrate: int = 48000,
) -> None:
    """Writes uint8 RGB frames (T, H, W, 3) as H.264 (yuv420p) MP4, with optional mono AAC."""
    num_frames, height, width, channels = frames.shape
    if channels != 3 or height % 2 or width % 2:
        raise ValueError(f"{path}: need RGB frames with even height and width, got {frames.shape}")
    _makedirs_for(path)
    with av.open(path, "w", format="mp4", container_options=_CONTAINER_OPTIONS) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        # threads=1: x264's frame threads would make the bitstream depend on scheduling.
        # mbtree=0: on frames this small, x264's macroblock-tree lookahead gave different bytes
        # for the same frames from run to run (seen with x264 core 165, even single-threaded).
        video.codec_context.thread_count = 1
        video.codec_context.options = {
            "crf": str(crf),
            "preset": "medium",
            "threads": "1",
            "x264-params": "mbtree=0",
        }
        sound = None
        if audio is not None:
            sound = out.add_stream("aac", rate=audio_sample_rate, layout="mono")
            sound.codec_context.thread_count = 1
            sound.bit_rate = audio_bitrate
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(frames[index], format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            # Planar float is what the AAC encoder takes: no sample conversion inside PyAV.
            samples = np.ascontiguousarray(audio, dtype=np.float32)[np.newaxis, :]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = audio_sample_rate, 0
            out.mux(sound.encode(frame))
            out.mux(sound.encode(None))


def write_csv(path: str, header: Sequence[str] | None, rows: Iterable[Sequence]) -> None:
    """Plain CSV (minimal quoting, `\\n` line ends so the bytes do not depend on the OS)."""
    _makedirs_for(path)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        if header:
            writer.writerow(header)
        writer.writerows(rows)


def write_audioset_segments(path: str, title: str, rows: Sequence[tuple]) -> None:
    """AudioSet's segments CSV: three `#` lines, then `YTID, start, end, "mid1,mid2"` rows.

    rows: (ytid, start_seconds, end_seconds, [label mids]).
    """
    _makedirs_for(path)
    mids = {mid for row in rows for mid in row[3]}
    positives = sum(len(row[3]) for row in rows)
    with open(path, "w", newline="") as f:
        f.write(f"# Segments csv created by {title}\n")
        f.write(
            f"# num_ytids={len(rows)}, num_segs={len(rows)}, num_unique_labels={len(mids)}, "
            f"num_positive_labels={positives}\n"
        )
        f.write("# YTID, start_seconds, end_seconds, positive_labels\n")
        for ytid, start, end, labels in rows:
            f.write(f'{ytid}, {start:.3f}, {end:.3f}, "{",".join(labels)}"\n')


def write_class_labels(path: str, classes: Sequence[tuple[str, str]]) -> None:
    """AudioSet's class_labels_indices.csv: `index,mid,display_name`, display names quoted."""
    _makedirs_for(path)
    with open(path, "w", newline="") as f:
        f.write("index,mid,display_name\n")
        for index, (mid, name) in enumerate(classes):
            if '"' in name:
                raise ValueError(f"{path}: display name {name!r} must not contain quotes")
            f.write(f'{index},{mid},"{name}"\n')


def write_json(path: str, data: dict) -> None:
    _makedirs_for(path)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
