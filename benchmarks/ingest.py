"""Ingestion benchmark: `polyvit ingest` against the ffmpeg-per-clip way DMVR's generator works.

    .venv/bin/python benchmarks/ingest.py [--videos 100] [--audios 20] [--workers 2]
                                          [--long-minutes 10] [--corpus DIR]

Prints, in one run, for two corpora of N 10-second 640x360 30 fps H.264 videos with AAC audio,
one WITH B-frames (libx264's default of 3) and one WITHOUT (bf=0), otherwise encoded alike:
  1. clips/s and frames/s of `polyvit ingest` (the real CLI, Beam DirectRunner with one worker
     process per core), and on the B-frame corpus once more with --skip-nonref-frames;
  2. the decode-only floor: every packet of every file decoded by PyAV (video, with the same
     threading as ingestion, and audio), nothing else, one process per worker: the physical
     limit of ingestion on these clips and cores;
  3. the same figures for the ffmpeg command-line tool run once per clip the way DMVR's
     examples/generate_from_file.py runs it (decode, trim, fps filter, scale, JPEG to a pipe;
     and a second process for the audio, as with its --decode_audio), with as many clips in
     flight as workers, on the same cores;
  4. ingestion's per-file work without Beam (decode, pick, scale, JPEG, serialized record),
     one process per worker like the floor: the steady state once Beam has started;
  5. the ratios ingest / floor (goal >= 0.85) and ingest / ffmpeg CLI (goal >= 1.5);
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


def _texture(seed: int, height: int, width: int) -> np.ndarray:
    """Smooth random texture: scrolling it gives real motion and a realistic bitrate."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(3)))


# libx264 settings of the corpora: the same preset, with and without its default 3 B-frames.
X264_OPTIONS = {
    "bframes": {"preset": "veryfast", "bf": "3"},
    "no-bframes": {"preset": "veryfast", "bf": "0"},
    "fast": {"preset": "ultrafast"},  # the long video: quick to write, no B-frames
}


def write_video(
    path: str, seconds: float, width: int, height: int, fps: int, seed: int, kind: str = "fast"
) -> None:
    """H.264 with a stereo 44.1 kHz AAC tone, frames scrolled over a texture."""
    texture = _texture(seed, height + 2 * fps, width + 4 * fps)
    with av.open(path, "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = dict(X264_OPTIONS[kind])
        audio = out.add_stream("aac", rate=44100, layout="stereo")
        n_frames = round(seconds * fps)
        for i in range(n_frames):
            y, x = i % (2 * fps), (2 * i) % (4 * fps)
            pixels = np.ascontiguousarray(texture[y : y + height, x : x + width])
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
            out.mux(video.encode(frame))
            _mux_audio(out, audio, i / fps, (i + 1) / fps, 220 + 20 * (seed % 20))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))


def _mux_audio(out, stream, begin_s: float, end_s: float, tone_hz: float) -> None:
    rate = 44100
    first, last = round(begin_s * rate), round(end_s * rate)
    t = np.arange(first, last) / rate
    wave = (0.3 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
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


def make_corpus(root: str, videos: int, audios: int) -> tuple[dict[str, str], str]:
    """{kind: folder} of the video corpora, and the audio folder."""
    video_dirs = {kind: os.path.join(root, f"videos-{kind}") for kind in VIDEO_KINDS}
    audio_dir = os.path.join(root, "audio")
    stamp = os.path.join(root, f".complete-{videos}-{audios}")
    if os.path.exists(stamp):
        return video_dirs, audio_dir
    for folder in [*video_dirs.values(), audio_dir]:
        shutil.rmtree(folder, ignore_errors=True)
    start = time.time()
    for kind, video_dir in video_dirs.items():
        for i in range(videos):
            folder = os.path.join(video_dir, f"class{i % 2}")
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, f"v{i:04d}.mp4")
            write_video(path, CLIP_SECONDS, 640, 360, 30, i, kind)
            print(f"\rcorpus: {i + 1}/{videos} videos ({kind})", end="", flush=True)
    for i in range(audios):
        folder = os.path.join(audio_dir, f"class{i % 2}")
        os.makedirs(folder, exist_ok=True)
        write_wav(os.path.join(folder, f"a{i:04d}.wav"), CLIP_SECONDS, i)
    print(f"\rcorpus: 2 x {videos} videos, {audios} audio files in {time.time() - start:.0f} s")
    open(stamp, "w").close()
    return video_dirs, audio_dir


def make_long_video(root: str, minutes: float, fps: int) -> str:
    path = os.path.join(root, f"long_{minutes:g}min_1080p_{fps}fps.mp4")
    if not os.path.exists(path):
        print(f"corpus: writing a {minutes:g}-minute 1080p video at {fps} fps...", flush=True)
        start = time.time()
        write_video(path + ".tmp.mp4", minutes * 60, 1920, 1080, fps, 7)
        os.rename(path + ".tmp.mp4", path)
        print(f"corpus: done in {time.time() - start:.0f} s")
    return path


# --------------------------------------------------------------------------------------------
# polyvit ingest.


def run_polyvit_ingest(
    source: str, modality: str, workers: int, out_root: str, extra: tuple[str, ...] = ()
) -> dict:
    output = os.path.join(out_root, f"polyvit-{modality}")
    shutil.rmtree(output, ignore_errors=True)
    command = [
        sys.executable, "-m", "pipeline.cli", "ingest", "--modality", modality,
        "--fps", str(FPS), "--short-side", str(SHORT_SIDE), "--sample-rate", str(SAMPLE_RATE),
        "--clip-seconds", str(CLIP_SECONDS), "--workers", str(workers), "--quiet",
        "--eval-fraction", "0", *extra,
        source, output,
    ]  # fmt: skip
    start, cpu = time.time(), _children_cpu()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds, cpu = time.time() - start, _children_cpu() - cpu
    if result.returncode != 0:
        raise SystemExit(f"polyvit ingest failed:\n{result.stderr[-3000:]}")
    from media import dmvr

    clips = frames = 0
    for path in glob.glob(os.path.join(output, "Split-*", "*-of-*")):
        for record in dmvr.iter_tfrecord(path):
            clips += 1
            frames += len(dmvr.parse_sequence_example(record).frames)
    return {"seconds": seconds, "cpu_seconds": cpu, "clips": clips, "frames": frames}


# --------------------------------------------------------------------------------------------
# The decode-only floor: PyAV decodes every packet, nothing else.


def _decode_only(path: str) -> int:
    """Decodes every video and audio packet of one file; returns the video frames."""
    frames = 0
    with av.open(path) as container:
        streams = [*container.streams.video[:1], *container.streams.audio[:1]]
        for stream in container.streams.video[:1]:
            stream.thread_type = "AUTO"  # as media.decode sets it
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


def _decode_and_encode(path: str) -> int:
    """What one ingestion worker does per file, without Beam: decode, pick, scale, JPEG,
    SequenceExample, serialized bytes; returns the frames."""
    from core.config import Ingestion
    from media import decode, dmvr

    ingestion = Ingestion(
        fps=FPS, short_side=SHORT_SIDE, sample_rate=SAMPLE_RATE, clip_seconds=CLIP_SECONDS
    )
    frames = 0
    for clip in decode.iter_clips(path, "video", ingestion):
        meta = dmvr.ClipMetadata("bench", os.path.basename(path), 0, 0)
        dmvr.build_sequence_example(clip, meta).SerializeToString()
        frames += len(clip.frames)
    return frames


def run_in_process(folder: str, workers: int) -> dict:
    """Ingestion's per-file work in one process per worker, as the floor runs: the steady
    state of `polyvit ingest` once Beam and TensorFlow have started."""
    return _run_pool(folder, workers, _decode_and_encode)


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


def _clips_per_s(run: dict) -> float:
    return run["clips"] / run["seconds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=100, help="10 s 640x360 videos (>= 100)")
    parser.add_argument("--audios", type=int, default=20, help="10 s audio files")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--long-minutes", type=float, default=10.0)
    parser.add_argument("--long-fps", type=int, default=10, help="frame rate of the long video")
    parser.add_argument("--skip-long", action="store_true", help="skip the peak-RSS measurement")
    parser.add_argument("--corpus", default=os.path.join(tempfile.gettempdir(), "polyvit-bench"))
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    video_dirs, audio_dir = make_corpus(args.corpus, args.videos, args.audios)
    out_root = os.path.join(args.corpus, "out")
    print(
        f"\nSettings: {FPS} fps, shorter side {SHORT_SIDE}, audio {SAMPLE_RATE} Hz mono, "
        f"{CLIP_SECONDS:g} s clips, {args.workers} workers on {os.cpu_count()} cores"
    )
    figures: dict = {"workers": args.workers, "cores": os.cpu_count()}
    has_ffmpeg = shutil.which("ffmpeg") is not None
    if not has_ffmpeg:
        print(
            "ffmpeg per clip: SKIPPED, the ffmpeg command-line tool is not installed "
            "(apt-get install -y ffmpeg); no comparison with it"
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
        print(f"\nvideo+audio, {kind}:")
        for name, run in runs.items():
            print(f"  {name:19s}: {_rates(run)}")
        ratios = {
            f"{name}/{reference}": _clips_per_s(runs[name]) / _clips_per_s(runs[reference])
            for name in ("ingest", "ingest_skip_nonref", "in_process")
            for reference in ("floor", "ffmpeg")
            if name in runs and reference in runs
        }
        for name, ratio in ratios.items():
            goal = " (goal >= 0.85)" if name == "ingest/floor" else ""
            goal = " (goal >= 1.5)" if name == "ingest/ffmpeg" else goal
            print(f"  {name:30s}: {ratio:.2f}x clips/s{goal}")
        figures[kind] = {"runs": runs, "ratios": ratios}

    figures["polyvit_audio"] = run_polyvit_ingest(audio_dir, "audio", args.workers, out_root)
    print(f"\npolyvit ingest, audio files : {_rates(figures['polyvit_audio'])}")
    if has_ffmpeg:
        figures["ffmpeg_audio"] = run_ffmpeg_per_clip(audio_dir, False, args.workers)
        print(f"ffmpeg per clip, audio files: {_rates(figures['ffmpeg_audio'])}")

    if not args.skip_long:
        path = make_long_video(args.corpus, args.long_minutes, args.long_fps)
        long = measure_long_video(path)
        figures["long_video"] = long
        print(
            f"one worker, {args.long_minutes:g}-min 1080p video: peak RSS {long['peak_mb']:.0f} MB "
            f"(after imports {long['baseline_mb']:.0f} MB; goal < 1024 MB), {long['clips']} clips, "
            f"{long['frames']} frames in {long['seconds']:.0f} s"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
