"""Decodes one media file into clips with PyAV, in process and streaming.

`iter_clips(path, modality, ingestion)` yields `DecodedClip`s as soon as each is complete:
video frames sampled at `ingestion.fps` (the latest frame at or before each sample time, as
FFmpeg's fps filter does), resized so the shorter side is `ingestion.short_side` and JPEG-encoded;
the audio track resampled to `ingestion.sample_rate` and downmixed to mono by FFmpeg's own
resampler (levels as `ffmpeg -ac 1` gives them: see mono_resampler), float32 in [-1, 1]; a
still image as one frame. Nothing holds a whole video: packets are decoded as they are demuxed
and only the frames picked for the current clip are converted.

A long input is cut into clips of `ingestion.clip_seconds`; a trailing piece shorter than half a
clip is not a clip (the first clip is always kept, however short the file).

Every failure is a `MediaError` with a reason code from `errors` (`decode_file` and
`iter_clips` never raise anything else for bad media).
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Iterator
from typing import Any

import av
import av.video.reformatter
import numpy as np
import simplejpeg

from core.config import Ingestion
from media import errors, fs
from media.errors import MediaError

# Two timestamps closer than this are the same instant (PTS rounding, float error).
_TIME_EPS = 1e-3
# swscale's bilinear filter (it widens with the downscale ratio, so it does not alias) is about
# three times faster here than its default bicubic, and resizing is the largest cost per frame.
_RESIZE_FILTER = "BILINEAR"
# One scaler thread: ingestion runs one worker process per core, and swscale's own threads
# (its default is one per CPU) only add hand-offs there on frames this small.
_SCALER_THREADS = 1
# The video decoder's threads: slice threads only ("SLICE"; "AUTO" adds frame threads).
# Ingestion runs one decoding process per core, and there frame threads cost more than they
# give: with two workers on 2 cores, 720p H.264 decoded at 1.3-1.5 clips/s with "AUTO"
# against 1.9-2.2 with one thread or slice threads (1.1 against 1.7-1.8 with the rest of
# ingestion), and 10% more CPU per clip (benchmarks/ingest.py's corpus).
DECODER_THREADS = "SLICE"
# Colour matrices under which a YUV frame is what a JPEG (JFIF: BT.601, full range) holds once
# its range is expanded; swscale changes the range between YUV formats but not the matrix, so
# frames tagged otherwise (BT.709, BT.2020...) go through RGB, converted with their own matrix.
# FFmpeg's AVColorSpace codes: 2 unspecified (swscale then assumes BT.601), 5 BT470BG, 6 SMPTE170M.
_JFIF_MATRICES = frozenset({2, 5, 6})

# Leading bytes of formats we read: a file that starts like one of these but cannot be opened
# is a corrupt container; anything else is not media at all.
_SIGNATURES = (
    (0, b"\x89PNG"),
    (0, b"\xff\xd8\xff"),
    (0, b"GIF8"),
    (0, b"BM"),
    (0, b"RIFF"),
    (0, b"\x1aE\xdf\xa3"),  # Matroska / WebM
    (0, b"OggS"),
    (0, b"fLaC"),
    (0, b"ID3"),
    (0, b"FLV"),
    (0, b"FORM"),  # AIFF
    (0, b"caff"),
    (0, b"\x00\x00\x01\xba"),  # MPEG program stream
    (0, b"0&\xb2u"),  # ASF / WMV
    (4, b"ftyp"),  # MP4 / MOV / M4A / 3GP
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
)


@dataclasses.dataclass
class DecodedClip:
    """One clip of one file; times are seconds from the start of the file."""

    start_s: float
    end_s: float
    frames: list[bytes]  # JPEG, one per sampled frame; empty for audio
    frame_rate: float  # frames per second of `frames` (0 when there are none)
    width: int  # of the JPEG frames (0 when there are none)
    height: int
    waveform: np.ndarray | None  # float32 mono in [-1, 1]; None when there is no audio
    sample_rate: int  # 0 when there is no audio
    # False when `waveform` is a silent stand-in for a soundtrack the source does not have
    # (media.dmvr.with_silent_audio); recorded as `audio/has_audio` = 0.
    has_audio: bool = True
    # Source time (seconds from the start of the file) of the decoded frame behind each entry of
    # `frames`: what frame selection picked, for tests and diagnostics (not recorded).
    frame_times: list[float] = dataclasses.field(default_factory=list)


def target_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) scaled so that the shorter side is `short_side`, aspect ratio kept."""
    if width <= height:
        return short_side, max(1, round(height * short_side / width))
    return max(1, round(width * short_side / height)), short_side


def clip_windows(start: float, end: float, clip_seconds: float) -> list[tuple[float, float]]:
    """Clips of a known stretch [start, end): full clips, plus a tail of at least half a clip."""
    length = end - start
    count = max(1, math.floor(length / clip_seconds + 0.5))
    return [
        (start + k * clip_seconds, min(start + (k + 1) * clip_seconds, end)) for k in range(count)
    ]


def sniff_reason(head: bytes) -> str:
    """corrupt_container when the bytes start like a media format, else not_media."""
    for offset, magic in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return errors.CORRUPT_CONTAINER
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MP3 / ADTS AAC sync
        return errors.CORRUPT_CONTAINER
    return errors.NOT_MEDIA


def _check_file(path: str) -> None:
    if not fs.exists(path):
        raise MediaError(errors.MISSING_FILE, "file does not exist", path)
    if fs.size(path) == 0:
        raise MediaError(errors.EMPTY_FILE, "file is empty (0 bytes)", path)


def _check_resolution(width: int, height: int, ingestion: Ingestion, path: str) -> None:
    if max(width, height) > ingestion.max_resolution:
        raise MediaError(
            errors.RESOLUTION_TOO_LARGE,
            f"{width}x{height} exceeds ingestion.max_resolution={ingestion.max_resolution}",
            path,
        )


def _jpeg(image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# Images.


def _decode_image(path: str, ingestion: Ingestion) -> DecodedClip:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(fs.open_for_decoder(path)) as image:
            # The header alone gives the size: refuse absurd images before decoding pixels.
            _check_resolution(image.width, image.height, ingestion, path)
            size = target_size(image.width, image.height, ingestion.short_side)
            image.draft("RGB", size)  # JPEG: let the decoder downscale by 1/2, 1/4, 1/8
            rgb = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    except Image.DecompressionBombError as e:
        raise MediaError(errors.RESOLUTION_TOO_LARGE, str(e), path) from None
    except UnidentifiedImageError:
        reason = sniff_reason(fs.head(path, 16))
        raise MediaError(reason, "not an image that PIL can read", path) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise MediaError(errors.CORRUPT_CONTAINER, f"cannot decode image: {e}", path) from None
    return DecodedClip(
        start_s=0.0,
        end_s=0.0,
        frames=[_jpeg(rgb, ingestion.jpeg_quality)],
        frame_rate=0.0,
        width=rgb.width,
        height=rgb.height,
        waveform=None,
        sample_rate=0,
    )


# --------------------------------------------------------------------------------------------
# Video and audio: a frame sampler and an audio cutter fed as packets are demuxed.


# A settled sample: (slot, JPEG, source time of the frame picked for it).
Picked = tuple[int, bytes, float]


def _plane(frame, index: int, width: int, height: int) -> np.ndarray:
    """A (height, width) uint8 view of one plane of a frame, without its row padding."""
    plane = frame.planes[index]
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    return rows[:height, :width]


def _even_luma(y: np.ndarray) -> np.ndarray:
    """The luma plane `y` (height, width), readable as TurboJPEG reads it for 4:2:0.

    TurboJPEG reads the luma plane padded to an even width and height (its plane-size rule),
    one column (row) past an odd image's edge, and that pixel enters the DCT of the visible
    edge block: read from a frame's row padding or past the array, it made the JPEGs of odd
    widths (455 for 16:9 at short side 256) differ from run to run by up to 20 levels in the
    bottom-right block. An odd plane is copied into an even buffer whose extra column and row
    repeat the edge (as libjpeg pads its blocks), and a view of its visible part is returned."""
    height, width = y.shape
    if width % 2 == 0 and height % 2 == 0:
        return y
    padded = np.empty((height + height % 2, width + width % 2), np.uint8)
    padded[:height, :width] = y
    padded[:height, width:] = y[:, -1:]
    padded[height:] = padded[height - 1]
    return padded[:height, :width]


def _is_jfif_yuv(frame) -> bool:
    return frame.format.name.startswith("yuv") and frame.colorspace in _JFIF_MATRICES


def frame_jpeg(reformatter, frame, size: tuple[int, int], quality: int) -> bytes:
    """One decoded frame scaled to `size` and JPEG-encoded by libjpeg-turbo (simplejpeg).

    A YUV frame is scaled by swscale straight into 4:2:0 full-range planes, which JPEG stores
    as they are: no conversion to RGB and back, no chroma resampling by the encoder (about
    three times cheaper than through RGB). Other frames go through rgb24."""
    width, height = size
    common = {"width": width, "height": height, "interpolation": _RESIZE_FILTER}
    if _is_jfif_yuv(frame):
        yuv = reformatter.reformat(
            frame, format="yuv420p", dst_color_range="JPEG", threads=_SCALER_THREADS, **common
        )
        chroma = ((width + 1) // 2, (height + 1) // 2)
        y = _even_luma(_plane(yuv, 0, width, height))
        u, v = (_plane(yuv, i, *chroma) for i in (1, 2))
        return simplejpeg.encode_jpeg_yuv_planes(y, u, v, quality=quality)
    rgb = reformatter.reformat(frame, format="rgb24", threads=_SCALER_THREADS, **common)
    pixels = _plane(rgb, 0, 3 * width, height).reshape(height, width, 3)
    return simplejpeg.encode_jpeg(pixels, quality=quality, colorspace="RGB", colorsubsampling="420")


class _FrameSampler:
    """Picks, for each sample time start + j / fps, the latest frame at or before it."""

    def __init__(self, start: float, fps: float, size: tuple[int, int], quality: int):
        self.start, self.fps, self.size, self.quality = start, fps, size, quality
        self.next_slot = 0
        self._held: tuple[float, Any, bytes | None] | None = None  # (time, frame, its JPEG)
        self.last_time: float | None = None
        # One reformatter for the whole stream keeps its scaler context between frames.
        self._reformatter = av.video.reformatter.VideoReformatter()

    def slot_time(self, slot: int) -> float:
        return self.start + slot / self.fps

    def needs(self, time: float, duration: float) -> bool:
        """Whether a frame shown during [time, time + duration) would be picked: whether an
        unsettled sample time falls in it (as `add` settles them, with the same tolerance)."""
        slot = max(self.next_slot, math.ceil((time - _TIME_EPS - self.start) * self.fps))
        return self.slot_time(slot) < time + duration - _TIME_EPS

    def _encode_held(self) -> bytes:
        assert self._held is not None, "a frame is held before any is encoded"
        time, frame, jpeg = self._held
        if jpeg is None:  # convert only frames that are picked, once even when repeated
            jpeg = frame_jpeg(self._reformatter, frame, self.size, self.quality)
            self._held = (time, frame, jpeg)
        return jpeg

    def add(self, frame, time: float, end: float | None) -> list[Picked]:
        """Feeds one decoded frame; returns the (slot, JPEG, source time) it settles."""
        picked: list[Picked] = []
        while self.slot_time(self.next_slot) < time - _TIME_EPS and (
            end is None or self.slot_time(self.next_slot) < end - _TIME_EPS
        ):
            if self._held is None:  # the video starts after the first sample time
                self._held = (time, frame, None)
            picked.append((self.next_slot, self._encode_held(), self._held[0]))
            self.next_slot += 1
        self._held = (time, frame, None)
        self.last_time = time
        return picked

    def finish(self, limit: float) -> list[Picked]:
        """Settles the sample times before `limit` with the last frame (end of stream)."""
        picked: list[Picked] = []
        while self._held is not None and self.slot_time(self.next_slot) < limit - _TIME_EPS:
            picked.append((self.next_slot, self._encode_held(), self._held[0]))
            self.next_slot += 1
        return picked


class _AudioCutter:
    """Keeps resampled mono samples, indexed from the segment start, until clips take them."""

    def __init__(self, start: float, sample_rate: int):
        self.start, self.sample_rate = start, sample_rate
        self._chunks: list[np.ndarray] = []
        self._buffer_start = 0  # sample index of the first buffered sample
        self.end = 0  # sample index after the last buffered sample
        self._started = False

    def add(self, samples: np.ndarray, time: float | None) -> None:
        if not self._started:
            self._started = True
            first = round(
                ((time if time is not None else self.start) - self.start) * self.sample_rate
            )
            if first < 0:  # decoding began before the segment (after a seek): drop the excess
                samples = samples[-first:]
            elif first > 0:  # the track starts late: silence until it does
                samples = np.concatenate([np.zeros(first, np.float32), samples])
        self._chunks.append(samples)
        self.end += len(samples)

    def take(self, begin: int, stop: int) -> np.ndarray:
        """Samples [begin, stop), zero-padded past the track's end; frees what precedes stop."""
        buffered = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
        piece = buffered[max(0, begin - self._buffer_start) : max(0, stop - self._buffer_start)]
        if len(piece) < stop - begin:
            piece = np.concatenate([piece, np.zeros(stop - begin - len(piece), np.float32)])
        rest = buffered[max(0, stop - self._buffer_start) :]
        self._chunks, self._buffer_start = (
            ([rest] if len(rest) else []),
            max(stop, self._buffer_start),
        )
        return np.clip(piece, -1.0, 1.0).astype(np.float32, copy=False)


# FFmpeg's resampler downmixes to mono with its default matrix (libswresample: centre 1,
# front left/right -3 dB, surrounds -6 dB, LFE dropped), i.e. what `ffmpeg -ac 1` does and what
# DMVR's generator gets (it asks FFmpeg for mono 32-bit integer PCM). With an integer output
# format swresample scales that matrix so that each output's coefficients sum to 1, so full
# scale stays within [-1, 1] (a float output would keep the raw matrix: stereo summed at -3 dB
# reaches 1.41). Hence 32-bit integers, scaled back to float32 here.
_MONO_FORMAT = "s32"
_S32_SCALE = 1.0 / 2**31


_FLOAT_FORMATS = ("flt", "fltp", "dbl", "dblp")


def _check_finite_frame(frame, path: str) -> None:
    """Float PCM can hold NaN and infinity; the integer downmix would turn them into silence or
    full scale, so they are caught before it. Read in place from the frame's planes (without
    their padding), not through a copy of the whole frame."""
    name = frame.format.name
    if name not in _FLOAT_FORMATS:
        return
    dtype = np.float32 if name.startswith("flt") else np.float64
    values = frame.samples * (1 if frame.format.is_planar else len(frame.layout.channels))
    for plane in frame.planes:
        if not np.isfinite(np.frombuffer(plane, dtype, count=values)).all():
            check_finite(frame.to_ndarray(), path)  # raises, counting the bad samples


def mono_resampler(sample_rate: int):
    """PyAV's (FFmpeg's) resampler to mono 32-bit PCM at `sample_rate`."""
    return av.AudioResampler(format=_MONO_FORMAT, layout="mono", rate=sample_rate)


def _mono(frame) -> np.ndarray:
    """A frame out of mono_resampler -> float32 samples in [-1, 1)."""
    return (frame.to_ndarray().reshape(-1) * _S32_SCALE).astype(np.float32)


def _duration(container) -> float | None:
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    for stream in container.streams:
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
    return None


def _open(path: str):
    try:
        return av.open(fs.open_for_decoder(path), metadata_errors="ignore")
    except FileNotFoundError:
        raise MediaError(errors.MISSING_FILE, "file does not exist", path) from None
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        reason = sniff_reason(fs.head(path, 16))
        raise MediaError(reason, f"FFmpeg cannot open it: {e}", path) from None


def _pick_streams(container, modality: str, ingestion: Ingestion, path: str):
    videos = [
        s
        for s in container.streams.video
        if not s.disposition & av.stream.Disposition.attached_pic  # cover art is not video
    ]
    audio = container.streams.audio[0] if container.streams.audio else None
    if modality == "video":
        if not videos:
            raise MediaError(errors.NO_VIDEO_STREAM, "the file has no video stream", path)
        video = videos[0]
        width, height = video.codec_context.width, video.codec_context.height
        if not width or not height:
            raise MediaError(errors.CORRUPT_CONTAINER, "the video stream declares no size", path)
        _check_resolution(width, height, ingestion, path)
        video.thread_type = DECODER_THREADS  # before the first packet
        return video, audio
    if audio is None:
        raise MediaError(errors.NO_AUDIO_STREAM, "the file has no audio stream", path)
    return None, audio


def _iter_av_clips(
    path: str, modality: str, ingestion: Ingestion, start_s: float | None, end_s: float | None
) -> Iterator[DecodedClip]:
    container = _open(path)
    with container:
        video, audio = _pick_streams(container, modality, ingestion, path)
        # MPEG-TS and friends start at an arbitrary timestamp: times below are from the start.
        origin = max(0.0, (container.start_time or 0) / av.time_base)
        duration = _duration(container)
        start = start_s or 0.0
        if duration is not None and start >= duration:
            raise MediaError(
                errors.BAD_TIME_RANGE, f"start {start:g} s is past the end ({duration:.3g} s)", path
            )
        end = (
            min(end_s, duration)
            if end_s is not None and duration is not None
            else (end_s or duration)
        )
        windows = clip_windows(start, end, ingestion.clip_seconds) if end is not None else None

        sampler: _FrameSampler | None = None
        cutter: _AudioCutter | None = None
        resampler = None
        if video is not None:
            size = target_size(
                video.codec_context.width, video.codec_context.height, ingestion.short_side
            )
            sampler = _FrameSampler(start, ingestion.fps, size, ingestion.jpeg_quality)
        if audio is not None:
            cutter = _AudioCutter(start, ingestion.sample_rate)
            resampler = mono_resampler(ingestion.sample_rate)
        assembler = _ClipAssembler(start, windows, ingestion, sampler, cutter, path)

        if start > 0:
            try:  # to the keyframe before the start; frames before it are then skipped
                container.seek(int((origin + start) * av.time_base), backward=True)
            except av.error.FFmpegError:
                pass  # unseekable input: decode from the beginning instead
        streams = [s for s in (video, audio) if s is not None]
        skipper = _NonrefSkipper.for_stream(video, ingestion, origin) if video else None
        try:
            for packet in container.demux(*streams):
                if skipper is not None and packet.stream is video:
                    assert sampler is not None
                    skipper.before(packet, sampler)
                for frame in packet.decode():
                    time = frame.time - origin if frame.time is not None else None
                    if packet.stream is video:
                        assert sampler is not None  # made above for every video stream
                        if time is None:
                            last = sampler.last_time
                            time = 0.0 if last is None else last + 1 / ingestion.fps
                        assembler.add_frames(sampler.add(frame, time, end))
                    else:
                        assert resampler is not None and cutter is not None
                        _check_finite_frame(frame, path)
                        for out in resampler.resample(frame):
                            cutter.add(_mono(out), time)
                yield from assembler.ready()
                if assembler.done():
                    break
            else:
                if resampler is not None and cutter is not None:
                    for out in resampler.resample(None):
                        cutter.add(_mono(out), None)
        except av.error.FFmpegError as e:
            raise MediaError(errors.CORRUPT_CONTAINER, f"decoding failed: {e}", path) from None
        yield from assembler.finish(video)


class _NonrefSkipper:
    """ingestion.skip_nonref_frames: before each video packet is decoded, tells the decoder to
    drop it if it is a non-reference frame (nothing else is predicted from it) and no sample
    time falls in its display interval. A reference frame is always decoded, so the frames
    after it stay intact; a dropped frame is one the sampler would not have picked, unless
    the packet durations are wrong (variable frame rate), when the pick moves by one frame."""

    # Below this ratio of source to target frame rate there is little to skip.
    MIN_RATE_RATIO = 2.0

    def __init__(self, video, origin: float, frame_duration: float):
        self.codec, self.origin, self.frame_duration = video.codec_context, origin, frame_duration
        self.time_base = video.time_base
        self._skipping = False

    @classmethod
    def for_stream(cls, video, ingestion: Ingestion, origin: float) -> _NonrefSkipper | None:
        rate = video.average_rate or video.guessed_rate
        if not ingestion.skip_nonref_frames or not rate or not video.time_base:
            return None
        if float(rate) < cls.MIN_RATE_RATIO * ingestion.fps:
            return None
        return cls(video, origin, 1 / float(rate))

    def before(self, packet, sampler: _FrameSampler) -> None:
        skip = False
        if packet.pts is not None:
            time = float(packet.pts * self.time_base) - self.origin
            duration = float(packet.duration * self.time_base) if packet.duration else 0.0
            skip = not sampler.needs(time, duration or self.frame_duration)
        if skip != self._skipping:  # set only on a change: each set reaches the codec
            self.codec.skip_frame = "NONREF" if skip else "DEFAULT"
            self._skipping = skip


class _ClipAssembler:
    """Collects picked frames and samples per clip window and releases finished clips."""

    def __init__(self, start, windows, ingestion: Ingestion, sampler, cutter, path: str):
        self.start, self.ingestion, self.path = start, ingestion, path
        self.sampler, self.cutter = sampler, cutter
        self.windows = windows  # None: length unknown until the streams end
        self.index = 0  # next window to release
        # slot -> (JPEG, source time), for unreleased windows
        self.frames: dict[int, tuple[bytes, float]] = {}
        self.released = 0

    def _window(self, k: int) -> tuple[float, float]:
        if self.windows is not None:
            return self.windows[k]
        length = self.ingestion.clip_seconds
        return self.start + k * length, self.start + (k + 1) * length

    def add_frames(self, picked: list[Picked]) -> None:
        self.frames.update((slot, (jpeg, time)) for slot, jpeg, time in picked)

    def _samples(self, time: float) -> int:
        return round((time - self.start) * self.ingestion.sample_rate)

    def _video_past(self, time: float) -> bool:
        return (
            self.sampler is None
            or self.sampler.slot_time(self.sampler.next_slot) >= time - _TIME_EPS
        )

    def _audio_past(self, time: float) -> bool:
        return self.cutter is None or self.cutter.end >= self._samples(time)

    def done(self) -> bool:
        return self.windows is not None and self.index >= len(self.windows)

    def ready(self) -> Iterator[DecodedClip]:
        while not self.done():
            begin, stop = self._window(self.index)
            if not (self._video_past(stop) and self._audio_past(stop)):
                return
            yield self._release(begin, stop)

    def _release(self, begin: float, stop: float) -> DecodedClip:
        frames: list[bytes] = []
        frame_times: list[float] = []
        if self.sampler is not None:
            fps = self.ingestion.fps
            slots = range(
                math.ceil((begin - self.start) * fps - _TIME_EPS),
                math.ceil((stop - self.start) * fps - _TIME_EPS),
            )
            settled = [self.frames.pop(j) for j in slots if j in self.frames]
            frames = [jpeg for jpeg, _ in settled]
            frame_times = [time for _, time in settled]
            if not frames:
                raise MediaError(
                    errors.CORRUPT_CONTAINER if self.released else errors.NO_FRAMES,
                    f"no video frames between {begin:g} s and {stop:g} s"
                    + (" (truncated?)" if self.released else ""),
                    self.path,
                )
        waveform = None
        if self.cutter is not None:
            if self.cutter.end <= self._samples(begin) and self.sampler is None:
                raise MediaError(
                    errors.CORRUPT_CONTAINER if self.released else errors.NO_FRAMES,
                    f"no audio samples between {begin:g} s and {stop:g} s",
                    self.path,
                )
            waveform = self.cutter.take(self._samples(begin), self._samples(stop))
        self.index += 1
        self.released += 1
        width, height = self.sampler.size if self.sampler is not None and frames else (0, 0)
        return DecodedClip(
            start_s=begin,
            end_s=stop,
            frames=frames,
            frame_rate=float(self.ingestion.fps) if frames else 0.0,
            width=width,
            height=height,
            waveform=waveform,
            sample_rate=self.ingestion.sample_rate if waveform is not None else 0,
            frame_times=frame_times,
        )

    def finish(self, video) -> Iterator[DecodedClip]:
        """End of stream: settle the last frames and release the remaining windows."""
        stream_end = None
        if self.sampler is not None:
            if self.sampler.last_time is None:
                raise MediaError(errors.NO_FRAMES, "no video frame could be decoded", self.path)
            rate = video.average_rate or video.guessed_rate
            frame_duration = 1 / float(rate) if rate else 1 / self.ingestion.fps
            stream_end = self.sampler.last_time + frame_duration
        if self.cutter is not None and self.cutter.end:
            audio_end = self.start + self.cutter.end / self.ingestion.sample_rate
            stream_end = audio_end if stream_end is None else max(stream_end, audio_end)
        if stream_end is None:
            raise MediaError(errors.NO_FRAMES, "nothing could be decoded", self.path)
        if self.windows is None:  # length unknown until now
            self.windows = clip_windows(self.start, stream_end, self.ingestion.clip_seconds)
        if self.sampler is not None:
            limit = min(self.windows[-1][1], self.sampler.last_time + frame_duration)
            self.add_frames(self.sampler.finish(limit))
        while not self.done():
            yield self._release(*self._window(self.index))


def iter_clips(
    path: str,
    modality: str,
    ingestion: Ingestion,
    start_s: float | None = None,
    end_s: float | None = None,
) -> Iterator[DecodedClip]:
    """Clips of one file (or of [start_s, end_s) of it), each yielded as soon as it is complete.

    Raises MediaError (possibly after yielding some clips, when a file breaks part-way).
    """
    _check_file(path)
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise MediaError(errors.BAD_TIME_RANGE, f"end {end_s:g} s is not after {start_s:g} s", path)
    if modality == "image":
        yield _decode_image(path, ingestion)
        return
    if modality not in ("video", "audio"):
        raise ValueError(f"unknown modality {modality!r}; expected video, audio or image")
    yield from _iter_av_clips(path, modality, ingestion, start_s, end_s)


def check_finite(waveform: np.ndarray | None, path: str) -> None:
    """Samples with NaN or infinity (float PCM, records from elsewhere) are refused at
    ingestion rather than turning into NaN scores downstream."""
    if waveform is not None and not np.isfinite(waveform).all():
        bad = int(np.size(waveform) - np.isfinite(waveform).sum())
        raise MediaError(errors.NON_FINITE, f"{bad} NaN or infinite audio samples", path)


def decode_file(path: str, modality: str, ingestion: Ingestion) -> list[DecodedClip]:
    """All clips of a whole file: what a client needs to turn a user's file into examples."""
    return list(iter_clips(path, modality, ingestion))
