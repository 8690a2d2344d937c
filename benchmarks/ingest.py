"""Ingestion benchmark: `polyvit ingest` against the decode-only floor and the ffmpeg CLI.

    .venv/bin/python benchmarks/ingest.py [--videos 120] [--unique 24] [--size 1280x720]
                                          [--workers 2] [--long-minutes 10] [--corpus DIR]

The corpus is footage-like (see footage_frames): 10 s clips of a camera panning and zooming
over a detailed scene with objects crossing it and sensor noise, 1280x720, 30 fps, H.264
(libx264 veryfast) with a stereo AAC track, about 3-5 Mbit/s, so that decoding costs what it
costs on real video of that size (flat or merely scrolled clips decode several times faster
and make everything after the decoder look bigger than it is). Two corpora of --videos files
are encoded from the same frames, one WITH B-frames (libx264's default of 3) and one WITHOUT
(bf=0); --unique distinct clips, the other files repeat them (decoding costs the same).

Prints, in one run:
  0. the start-up: `polyvit ingest` of one clip per worker (Beam, the worker processes, the
     stages' round trips and the writes' finalisation, plus one clip's work each);
  1. clips/s and frames/s of `polyvit ingest` (the real CLI, Beam DirectRunner with one worker
     process per core), with the start-up included (what a user sees on this corpus) and
     without it (`_steady`: the start-up run's time and clips taken off, the rate a large
     corpus converges to); on the B-frame corpus once more with --skip-nonref-frames;
  2. the decode-only floor: every packet of every file decoded by PyAV (video, with the same
     threading as ingestion, and audio), nothing else, one process per worker: the physical
     limit of ingestion on these clips and cores;
  3. the same figures for the ffmpeg command-line tool run once per clip the way DMVR's
     examples/generate_from_file.py runs it (decode, trim, fps filter, scale, JPEG to a pipe;
     and a second process for the audio, as with its --decode_audio), with as many clips in
     flight as workers, on the same cores;
  4. ingestion's per-file work without Beam (decode, pick, scale, JPEG, serialized record),
     one process per worker like the floor; and in one process on a few files, where its CPU
     time per clip goes: the floor, then each step after the decoder timed apart;
  5. the ratios ingest / floor (goal >= 0.85) and ingest / ffmpeg CLI (goal >= 1.5), with and
     without the start-up;
  6. clips/s of `polyvit ingest` on the audio files, and the peak RSS of one process decoding
     and encoding a 10-minute 1080p video into records.

The ffmpeg CLI is optional (PyAV bundles its own FFmpeg); when it is missing the script says so
and prints the rest. Figures are end-to-end wall-clock times, including process start-up.
The generated corpus is kept in --corpus and reused by later runs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fractions
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import av
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# The frame extraction settings of the comparison (DMVR's generator defaults: 10 fps, shorter
# side 256), applied identically to both sides.
FPS, SHORT_SIDE, SAMPLE_RATE, CLIP_SECONDS = 10, 256, 16000, 10.0


# --------------------------------------------------------------------------------------------
# Corpus.


def _detailed_scene(seed: int, width: int, height: int) -> np.ndarray:
    """A detailed colour scene: noise at four scales (blobs down to pixel grain) and outlined
    rectangles (hard edges), so that H.264 spends bits on it the way it does on real footage."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    scene = np.full((height, width, 3), 128.0, np.float32)
    for scale, amplitude in ((64, 45.0), (16, 25.0), (4, 18.0), (1, 12.0)):
        coarse = rng.normal(0, 1, (height // scale + 2, width // scale + 2, 3))
        layer = Image.fromarray(np.clip(coarse * 40 + 128, 0, 255).astype(np.uint8))
        layer = layer.resize((width + 2 * scale, height + 2 * scale), Image.Resampling.BICUBIC)
        scene += (np.asarray(layer, np.float32)[:height, :width] - 128) / 40 * amplitude
    image = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(width * height // 40000):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = (int(v) for v in rng.integers(10, max(11, width // 6), 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=int(rng.integers(1, 5)))
    return np.asarray(image)


def footage_frames(seed: int, seconds: float, width: int, height: int, fps: int):
    """RGB frames like camera footage: a pan and zoom over a detailed scene twice the frame's
    size, four textured objects crossing it at their own speeds, and sensor noise (sigma 4
    levels) on every frame. Flat or merely scrolled content decodes several times faster than
    real video; this decodes at about the speed of real footage of its size."""
    from PIL import Image

    rng = np.random.default_rng(seed + 1000)
    scene = Image.fromarray(_detailed_scene(seed, 2 * width, 2 * height))
    side = max(16, height // 6)
    objects = [
        Image.fromarray(_detailed_scene(seed * 7 + k, 4 * side // 3, side)) for k in range(4)
    ]
    noise = [rng.normal(0, 4, (height, width, 3)).astype(np.int16) for _ in range(5)]
    count = round(seconds * fps)
    phase = rng.uniform(0, 2 * np.pi, 3)
    for i in range(count):
        t = i / fps
        zoom = 1.05 + 0.25 * np.sin(2 * np.pi * t / 7 + phase[0])  # scene pixels per frame pixel
        cx = width * (1 + 0.3 * np.sin(2 * np.pi * t / 9 + phase[1]))
        cy = height * (1 + 0.25 * np.sin(2 * np.pi * t / 6 + phase[2]))
        frame = scene.transform(
            (width, height),
            Image.Transform.AFFINE,
            (zoom, 0, cx - zoom * width / 2, 0, zoom, cy - zoom * height / 2),
            Image.Resampling.BILINEAR,
        )
        for k, thing in enumerate(objects):
            x = round((k * width / 4 + i * (2 + 2 * k) * width / 640) % (width + thing.width))
            y = round(height / 2 + height / 3 * np.sin(2 * np.pi * (t / (3 + k) + k / 4)))
            frame.paste(thing, (x - thing.width, y - side // 2))
        yield np.clip(np.asarray(frame, np.int16) + noise[i % len(noise)], 0, 255).astype(np.uint8)


def flat_frames(seed: int, seconds: float, width: int, height: int, fps: int):
    """The long memory-test video's frames: a smooth texture scrolled (cheap to write)."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height + 2 * fps, width + 4 * fps, 3), dtype=np.uint8)
    texture = np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(3)))
    for i in range(round(seconds * fps)):
        y, x = i % (2 * fps), (2 * i) % (4 * fps)
        yield np.ascontiguousarray(texture[y : y + height, x : x + width])


# libx264 settings of the corpora: the same preset, with and without its default 3 B-frames.
X264_OPTIONS = {
    "bframes": {"preset": "veryfast", "bf": "3"},
    "no-bframes": {"preset": "veryfast", "bf": "0"},
    "fast": {"preset": "ultrafast"},  # the long video: quick to write, no B-frames
}


def write_videos(outputs: dict[str, str], frames, fps: int, width: int, height: int, tone_hz):
    """The same frames encoded once per {kind: path} (H.264 as X264_OPTIONS[kind]), each file
    with a stereo 44.1 kHz AAC track (a tone over noise)."""
    files = []
    for kind, path in outputs.items():
        out = av.open(path, "w")
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = dict(X264_OPTIONS[kind])
        files.append((out, video, out.add_stream("aac", rate=44100, layout="stereo")))
    rng = np.random.default_rng(round(tone_hz))
    i = -1
    for i, pixels in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
        for out, video, audio in files:
            out.mux(video.encode(frame))
            _mux_audio(out, audio, i / fps, (i + 1) / fps, tone_hz, rng)
    for out, video, audio in files:
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
        out.close()
    return i + 1


def _mux_audio(out, stream, begin_s: float, end_s: float, tone_hz: float, rng) -> None:
    rate = 44100
    first, last = round(begin_s * rate), round(end_s * rate)
    t = np.arange(first, last) / rate
    wave = 0.3 * np.sin(2 * np.pi * tone_hz * t) + rng.normal(0, 0.05, len(t))
    wave = wave.astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
    frame.sample_rate, frame.pts, frame.time_base = rate, first, fractions.Fraction(1, rate)
    out.mux(stream.encode(frame))


def write_wav(path: str, seconds: float, seed: int) -> None:
    import wave

    rate = 44100
    t = np.arange(round(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * (200 + 30 * seed) * t)
    with wave.open(path, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat((tone * 32767).astype("<i2")[:, None], 2, axis=1).tobytes())


VIDEO_KINDS = ("bframes", "no-bframes")
# The corpora's clips: 10 s of 30 fps footage-like video (see footage_frames) at 1280x720.
VIDEO_FPS = 30


def _write_unique(job: tuple[int, dict[str, str], int, int]) -> int:
    seed, outputs, width, height = job
    frames = footage_frames(seed, CLIP_SECONDS, width, height, VIDEO_FPS)
    return write_videos(outputs, frames, VIDEO_FPS, width, height, 220 + 20 * (seed % 20))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def make_corpus(
    root: str, videos: int, unique: int, audios: int, size: tuple[int, int], workers: int
) -> tuple[dict[str, str], str, str]:
    """{kind: folder} of the video corpora (`videos` files each, of which `unique` distinct
    clips, the rest further files of the same clips: decoding them costs the same, writing
    them would take far longer), the audio folder, and a start-up folder of one clip per
    worker."""
    width, height = size
    video_dirs = {kind: os.path.join(root, f"videos-{kind}") for kind in VIDEO_KINDS}
    audio_dir = os.path.join(root, "audio")
    startup_dir = os.path.join(root, "startup")
    stamp = os.path.join(root, f".complete-{videos}-{unique}-{audios}-{width}x{height}-{workers}")
    if os.path.exists(stamp):
        return video_dirs, audio_dir, startup_dir
    for folder in [*video_dirs.values(), audio_dir, startup_dir, os.path.join(root, "unique")]:
        shutil.rmtree(folder, ignore_errors=True)
    start = time.time()
    unique = max(1, min(unique, videos))
    os.makedirs(os.path.join(root, "unique"))
    jobs = [
        (i, {k: os.path.join(root, "unique", f"{k}-{i:03d}.mp4") for k in VIDEO_KINDS}, *size)
        for i in range(unique)
    ]
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        for done, _ in enumerate(pool.map(_write_unique, jobs), 1):
            print(f"\rcorpus: {done}/{unique} distinct {width}x{height} clips", end="", flush=True)
    for kind, video_dir in video_dirs.items():
        for i in range(videos):
            folder = os.path.join(video_dir, f"class{i % 2}")
            os.makedirs(folder, exist_ok=True)
            _link_or_copy(jobs[i % unique][1][kind], os.path.join(folder, f"v{i:04d}.mp4"))
    for i in range(workers):
        os.makedirs(os.path.join(startup_dir, f"class{i % 2}"), exist_ok=True)
        _link_or_copy(
            jobs[i % unique][1]["bframes"], os.path.join(startup_dir, f"class{i % 2}", f"v{i}.mp4")
        )
    for i in range(audios):
        folder = os.path.join(audio_dir, f"class{i % 2}")
        os.makedirs(folder, exist_ok=True)
        write_wav(os.path.join(folder, f"a{i:04d}.wav"), CLIP_SECONDS, i)
    megabits = [
        8 * os.path.getsize(job[1][k]) / CLIP_SECONDS / 1e6 for job in jobs for k in VIDEO_KINDS
    ]
    print(
        f"\rcorpus: 2 x {videos} videos ({unique} distinct clips, {np.mean(megabits):.1f} Mbit/s "
        f"on average), {audios} audio files in {time.time() - start:.0f} s"
    )
    open(stamp, "w").close()
    return video_dirs, audio_dir, startup_dir


def make_long_video(root: str, minutes: float, fps: int) -> str:
    path = os.path.join(root, f"long_{minutes:g}min_1080p_{fps}fps.mp4")
    if not os.path.exists(path):
        print(f"corpus: writing a {minutes:g}-minute 1080p video at {fps} fps...", flush=True)
        start = time.time()
        frames = flat_frames(7, minutes * 60, 1920, 1080, fps)
        write_videos({"fast": path + ".tmp.mp4"}, frames, fps, 1920, 1080, 360)
        os.rename(path + ".tmp.mp4", path)
        print(f"corpus: done in {time.time() - start:.0f} s")
    return path


# --------------------------------------------------------------------------------------------
# polyvit ingest.


def run_polyvit_ingest(
    source: str, modality: str, workers: int, out_root: str, extra: tuple[str, ...] = ()
) -> dict:
    """One `polyvit ingest` run into a folder of its own (two benchmark runs sharing a corpus
    must not delete each other's output); its records are counted from the files and checked
    against what the run says it wrote and quarantined."""
    os.makedirs(out_root, exist_ok=True)
    output = tempfile.mkdtemp(prefix=f"polyvit-{modality}-", dir=out_root)
    command = [
        sys.executable, "-m", "pipeline.cli", "ingest", "--modality", modality,
        "--fps", str(FPS), "--short-side", str(SHORT_SIDE), "--sample-rate", str(SAMPLE_RATE),
        "--clip-seconds", str(CLIP_SECONDS), "--workers", str(workers), "--quiet",
        "--eval-fraction", "0", *extra,
        source, os.path.join(output, "records"),
    ]  # fmt: skip
    start, cpu = time.time(), _children_cpu()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds, cpu = time.time() - start, _children_cpu() - cpu
    if result.returncode != 0:
        raise SystemExit(f"polyvit ingest failed:\n{result.stderr[-3000:]}")
    from media import dmvr

    records = os.path.join(output, "records")
    clips = frames = 0
    for path in glob.glob(os.path.join(records, "Split-*", "*-of-*")):
        for record in dmvr.iter_tfrecord(path):
            clips += 1
            frames += len(dmvr.parse_sequence_example(record).frames)
    tallies = _read_jsonl(os.path.join(records, "quarantine", "counts.jsonl"))
    said = sum(t["count"] for t in tallies if t["kind"] == "written")
    quarantined = [
        f"{q['file']}: {q['reason']}"
        for q in _read_jsonl(os.path.join(records, "quarantine", "quarantine.jsonl"))
    ]
    if said != clips:
        raise SystemExit(f"polyvit ingest said it wrote {said} clips; {records} holds {clips}")
    shutil.rmtree(output)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "clips": clips,
        "frames": frames,
        "quarantined": quarantined,
    }


def _read_jsonl(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# --------------------------------------------------------------------------------------------
# The decode-only floor: PyAV decodes every packet, nothing else.


def _decode_only(path: str, kinds: tuple[str, ...] = ("video", "audio")) -> int:
    """Decodes every video and audio packet of one file (or of the streams of `kinds`);
    returns the video frames."""
    from media import decode

    frames = 0
    with av.open(path) as container:
        first = (*container.streams.video[:1], *container.streams.audio[:1])
        streams = [stream for stream in first if stream.type in kinds]
        for stream in container.streams.video[:1]:
            stream.thread_type = decode.DECODER_THREADS  # the same threading as ingestion's
        for packet in container.demux(*streams):
            for _ in packet.decode():
                frames += packet.stream.type == "video"
    return frames


def _run_pool(folder: str, workers: int, per_file) -> dict:
    """`per_file(path) -> frames` over every clip, one process per worker (as Beam's workers)."""
    files = sorted(glob.glob(os.path.join(folder, "*", "*")))
    start, cpu = time.time(), _children_cpu()
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:  # joined (and counted) on exit
        frames = sum(pool.map(per_file, files, chunksize=4))
    return {
        "seconds": time.time() - start,
        "cpu_seconds": _children_cpu() - cpu,
        "clips": len(files),
        "frames": frames,
    }


def run_decode_floor(folder: str, workers: int) -> dict:
    """Every frame decoded by PyAV, nothing else: the physical limit."""
    return _run_pool(folder, workers, _decode_only)


def _ingestion():
    """The comparison's settings as ingestion's config section."""
    from core.config import Ingestion

    return Ingestion(
        fps=FPS, short_side=SHORT_SIDE, sample_rate=SAMPLE_RATE, clip_seconds=CLIP_SECONDS
    )


def _record(path: str, clip) -> bytes:
    """One decoded clip of `path` as the serialized SequenceExample ingestion writes."""
    from media import dmvr

    meta = dmvr.ClipMetadata("bench", os.path.basename(path), 0, 0)
    return dmvr.build_sequence_example(clip, meta).SerializeToString()


def _decode_and_encode(path: str) -> int:
    """What one ingestion worker does per file, without Beam: decode, pick, scale, JPEG,
    SequenceExample, serialized bytes; returns the frames."""
    from media import decode

    frames = 0
    for clip in decode.iter_clips(path, "video", _ingestion()):
        _record(path, clip)
        frames += len(clip.frames)
    return frames


def run_in_process(folder: str, workers: int) -> dict:
    """Ingestion's per-file work in one process per worker, as the floor runs: the steady
    state of `polyvit ingest` once Beam and TensorFlow have started."""
    return _run_pool(folder, workers, _decode_and_encode)


def _cpu(work, *args):
    """(CPU seconds of this process, all its threads, the decoder's too, spent in
    `work(*args)`; its result)."""
    start = time.process_time()
    result = work(*args)
    return time.process_time() - start, result


def _picked_frames(path: str, times: list[float]) -> list:
    """The decoded frames of `path` shown at `times` (what ingestion picked), held at once."""
    from media import decode

    wanted = {round(t, 3) for t in times}
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = decode.DECODER_THREADS
        origin = max(0.0, (container.start_time or 0) / av.time_base)
        return [f for f in container.decode(stream) if round(f.time - origin, 3) in wanted]


def _file_breakdown(path: str, ingestion) -> dict:
    import av.video.reformatter

    from media import decode

    def serialized(clips):
        return [_record(path, clip) for clip in clips]

    def encoded(frames, size):
        scaler = av.video.reformatter.VideoReformatter()
        return [decode.frame_jpeg(scaler, f, size, ingestion.jpeg_quality) for f in frames]

    floor, _ = _cpu(_decode_only, path)
    decoding, clips = _cpu(decode.decode_file, path, "video", ingestion)
    record, _ = _cpu(serialized, clips)
    audio, _ = _cpu(decode.decode_file, path, "audio", ingestion)
    audio_decoding, _ = _cpu(_decode_only, path, ("audio",))
    frames = _picked_frames(path, [t for c in clips for t in c.frame_times])
    scale_jpeg, _ = _cpu(encoded, frames, (clips[0].width, clips[0].height))
    return {
        "floor": floor,
        "scale_jpeg": scale_jpeg,
        "audio": audio - audio_decoding,
        "record": record,
        "whole": decoding + record,
        "frames": len(frames),
    }


def measure_breakdown(folder: str, files: int) -> dict:
    """Where ingestion's CPU time per clip goes, in one process on the first `files` clips: the
    decode-only floor, each step after the decoder timed apart on the same files (the picked
    frames' scaling and JPEG, from frames decoded beforehand; the audio's resampling and
    cutting beyond its decoding; the record), and ingestion without Beam as a whole."""
    ingestion = _ingestion()
    paths = sorted(glob.glob(os.path.join(folder, "*", "*")))[:files]
    _file_breakdown(paths[0], ingestion)  # warm-up: imports and first-use set-up, not timed
    each = [_file_breakdown(path, ingestion) for path in paths]
    per_clip = {name: sum(e[name] for e in each) / len(each) for name in each[0]}
    per_clip["rest"] = per_clip["whole"] - sum(
        per_clip[name] for name in ("floor", "scale_jpeg", "audio", "record")
    )
    return {"files": len(paths), **per_clip}


def _report_breakdown(kind: str, parts: dict) -> None:
    ms = {name: 1000 * value for name, value in parts.items() if name not in ("files", "frames")}
    per_frame = ms["scale_jpeg"] / parts["frames"]
    print(
        f"  one process, CPU ms per clip ({parts['files']} files, {kind}): floor "
        f"{ms['floor']:.0f}; after it: scale + JPEG of {parts['frames']:.0f} frames "
        f"{ms['scale_jpeg']:.0f} ({per_frame:.2f} per frame), audio resampling and cutting "
        f"{ms['audio']:.0f}, record {ms['record']:.0f}, the rest (demuxing both streams, frame "
        f"choice, Python) {ms['rest']:.0f}; ingestion without Beam {ms['whole']:.0f}: "
        f"floor / it {parts['floor'] / parts['whole']:.2f}"
    )


# --------------------------------------------------------------------------------------------
# ffmpeg per clip, as DMVR's generator runs it.


def _ffmpeg_clip(path: str, with_frames: bool) -> int:
    """One clip: frames to JPEG through a pipe, then audio as 32-bit PCM; returns frames."""
    frames = 0
    if with_frames:
        scale = f"scale=(iw/min(iw\\,ih))*{SHORT_SIDE}:-1"
        jpegs = subprocess.run(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", path, "-vf",
             f"trim=start=0:end={CLIP_SECONDS:g},fps={FPS},{scale}",
             "-f", "image2pipe", "-c:v", "mjpeg", "pipe:"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        frames = jpegs.count(b"\xff\xd8\xff")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-ss", "0", "-t", f"{CLIP_SECONDS:g}",
         "-i", path, "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s32le", "pipe:"],
        capture_output=True, check=True,
    )  # fmt: skip
    return frames


def run_ffmpeg_per_clip(folder: str, with_frames: bool, workers: int) -> dict:
    files = sorted(glob.glob(os.path.join(folder, "*", "*")))
    start, cpu = time.time(), _children_cpu()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        frames = sum(pool.map(lambda f: _ffmpeg_clip(f, with_frames), files))
    return {
        "seconds": time.time() - start,
        "cpu_seconds": _children_cpu() - cpu,
        "clips": len(files),
        "frames": frames,
    }


def _children_cpu() -> float:
    """CPU seconds of finished child processes (and theirs): robust to other load."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------------------------
# Peak memory of one worker on a long video.

# VmHWM (not ru_maxrss, which Linux carries over from the forking parent) is this process's own
# peak resident memory.
_RSS_CHILD = """
import sys, time
def peak_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
sys.path.insert(0, {repo!r})
from media import decode, dmvr
from core.config import Ingestion
ingestion = Ingestion(fps={fps}, short_side={short_side}, sample_rate={rate}, clip_seconds={clip})
baseline = peak_kb()
start, clips, frames = time.time(), 0, 0
for clip in decode.iter_clips({path!r}, "video", ingestion):
    meta = dmvr.ClipMetadata("long", "long.mp4", 0, 0)
    dmvr.build_sequence_example(clip, meta).SerializeToString()
    clips, frames = clips + 1, frames + len(clip.frames)
peak = peak_kb()
print(baseline, peak, clips, frames, time.time() - start)
"""


def measure_long_video(path: str) -> dict:
    code = _RSS_CHILD.format(
        repo=REPO, fps=FPS, short_side=SHORT_SIDE, rate=SAMPLE_RATE, clip=CLIP_SECONDS, path=path
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_USE_LEGACY_KERAS="1")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    baseline, peak, clips, frames, seconds = result.stdout.split()[-5:]
    return {
        "baseline_mb": int(baseline) / 1024,
        "peak_mb": int(peak) / 1024,
        "clips": int(clips),
        "frames": int(frames),
        "seconds": float(seconds),
    }


# --------------------------------------------------------------------------------------------


def _rates(r: dict) -> str:
    return (
        f"{r['clips']:5d} clips {r['frames']:7d} frames in {r['seconds']:6.1f} s: "
        f"{r['clips'] / r['seconds']:6.2f} clips/s {r['frames'] / r['seconds']:8.1f} frames/s, "
        f"{r['cpu_seconds'] / r['clips']:.3f} CPU s/clip"
    )


def _cpu_per_clip(run: dict) -> float:
    return run["cpu_seconds"] / run["clips"]


def _clips_per_s(run: dict) -> float:
    return run["clips"] / run["seconds"]


def _steady(run: dict, startup: dict) -> dict:
    """A run with the start-up run's time and clips taken off: the rate of the clips after the
    first one per worker, once Beam and the workers are up (the marginal clips/s at scale)."""
    return {
        "seconds": run["seconds"] - startup["seconds"],
        "cpu_seconds": run["cpu_seconds"] - startup["cpu_seconds"],
        "clips": run["clips"] - startup["clips"],
        "frames": run["frames"] - startup["frames"],
    }


def _report_long_video(args: argparse.Namespace, figures: dict) -> None:
    path = make_long_video(args.corpus, args.long_minutes, args.long_fps)
    long = measure_long_video(path)
    figures["long_video"] = long
    print(
        f"one worker, {args.long_minutes:g}-min 1080p video: peak RSS {long['peak_mb']:.0f} MB "
        f"(after imports {long['baseline_mb']:.0f} MB; goal < 1024 MB), {long['clips']} clips, "
        f"{long['frames']} frames in {long['seconds']:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=120, help="10 s videos per corpus")
    parser.add_argument(
        "--unique", type=int, default=24, help="distinct clips among them (the rest repeat them)"
    )
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the videos")
    parser.add_argument("--audios", type=int, default=20, help="10 s audio files")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--long-minutes", type=float, default=10.0)
    parser.add_argument("--long-fps", type=int, default=10, help="frame rate of the long video")
    parser.add_argument("--skip-long", action="store_true", help="skip the peak-RSS measurement")
    parser.add_argument("--long-only", action="store_true", help="only the peak-RSS measurement")
    parser.add_argument("--corpus", default=os.path.join(tempfile.gettempdir(), "polyvit-bench"))
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument(
        "--breakdown-files", type=int, default=6, help="files of the one-process breakdown"
    )
    args = parser.parse_args(argv)

    if args.long_only:
        _report_long_video(args, {})
        return 0
    width, height = (int(v) for v in args.size.lower().split("x"))
    video_dirs, audio_dir, startup_dir = make_corpus(
        args.corpus, args.videos, args.unique, args.audios, (width, height), args.workers
    )
    out_root = os.path.join(args.corpus, "out")
    print(
        f"\nSettings: {width}x{height} {VIDEO_FPS} fps footage-like H.264 + AAC, {FPS} fps, "
        f"shorter side {SHORT_SIDE}, audio {SAMPLE_RATE} Hz mono, {CLIP_SECONDS:g} s clips, "
        f"{args.workers} workers on {os.cpu_count()} cores"
    )
    figures: dict = {"workers": args.workers, "cores": os.cpu_count(), "size": args.size}
    has_ffmpeg = shutil.which("ffmpeg") is not None
    if not has_ffmpeg:
        print(
            "ffmpeg per clip: SKIPPED, the ffmpeg command-line tool is not installed "
            "(apt-get install -y ffmpeg); no comparison with it"
        )
    # The fixed cost of a run: `polyvit ingest` on one clip per worker (Beam and the workers
    # starting, the stages' round trips, the writes' finalisation), apart from the clips' own
    # work. Taken off a full run, it leaves the marginal rate a large corpus converges to.
    startup = run_polyvit_ingest(startup_dir, "video", args.workers, out_root)
    figures["startup"] = startup
    print(
        f"\nstart-up: `polyvit ingest` of {startup['clips']} clips (one per worker) takes "
        f"{startup['seconds']:.1f} s"
    )
    for kind, video_dir in video_dirs.items():
        runs = {
            "ingest": run_polyvit_ingest(video_dir, "video", args.workers, out_root),
            "floor": run_decode_floor(video_dir, args.workers),
            "in_process": run_in_process(video_dir, args.workers),
        }
        if kind == "bframes":
            runs["ingest_skip_nonref"] = run_polyvit_ingest(
                video_dir, "video", args.workers, out_root, ("--skip-nonref-frames",)
            )
        if has_ffmpeg:
            runs["ffmpeg"] = run_ffmpeg_per_clip(video_dir, True, args.workers)
        for name in ("ingest", "ingest_skip_nonref"):
            if name in runs:
                runs[f"{name}_steady"] = _steady(runs[name], startup)
        print(f"\nvideo+audio, {kind}:")
        for name, run in runs.items():
            print(f"  {name:25s}: {_rates(run)}")
        breakdown = measure_breakdown(video_dir, args.breakdown_files)
        _report_breakdown(kind, breakdown)
        share = startup["seconds"] / runs["ingest"]["seconds"]
        print(f"  start-up share of the ingest run: {share:.0%}")
        ratios = {
            f"{name}/{reference}": _clips_per_s(runs[name]) / _clips_per_s(runs[reference])
            for name in (
                "ingest", "ingest_steady", "ingest_skip_nonref", "ingest_skip_nonref_steady",
                "in_process",
            )
            for reference in ("floor", "ffmpeg")
            if name in runs and reference in runs
        }  # fmt: skip
        for name, ratio in ratios.items():
            goal = " (goal >= 0.85)" if name.startswith("ingest/floor") else ""
            goal = " (goal >= 1.5)" if name.startswith("ingest/ffmpeg") else goal
            print(f"  {name:36s}: {ratio:.2f}x clips/s{goal}")
        # CPU seconds per clip (of the runs' own processes): other jobs on shared cores move
        # wall-clock rates a lot and these little.
        cpu_ratios = {
            f"{name}/{reference}": _cpu_per_clip(runs[reference]) / _cpu_per_clip(runs[name])
            for name in ("ingest_steady", "ingest_skip_nonref_steady", "in_process")
            for reference in ("floor", "ffmpeg")
            if name in runs and reference in runs
        }
        for name, ratio in cpu_ratios.items():
            print(f"  {name:36s}: {ratio:.2f}x by CPU s per clip")
        written = {
            name: runs[name]["clips"] for name in ("ingest", "ingest_skip_nonref") if name in runs
        }
        for name, clips in written.items():
            if clips != runs["floor"]["clips"]:
                bad = runs[name]["quarantined"]
                print(
                    f"  WARNING: {name} wrote {clips} clips of {runs['floor']['clips']} files; "
                    f"quarantined {len(bad)}: {'; '.join(bad[:5])}"
                )
        figures[kind] = {
            "runs": runs,
            "ratios": ratios,
            "cpu_ratios": cpu_ratios,
            "startup_share": share,
            "breakdown": breakdown,
        }

    figures["polyvit_audio"] = run_polyvit_ingest(audio_dir, "audio", args.workers, out_root)
    print(f"\npolyvit ingest, audio files : {_rates(figures['polyvit_audio'])}")
    if has_ffmpeg:
        figures["ffmpeg_audio"] = run_ffmpeg_per_clip(audio_dir, False, args.workers)
        print(f"ffmpeg per clip, audio files: {_rates(figures['ffmpeg_audio'])}")

    if not args.skip_long:
        _report_long_video(args, figures)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
