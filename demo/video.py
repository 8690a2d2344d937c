"""Motion clips: a digit sprite drifting in one of four directions over a textured background.

The sprite starts anywhere and wraps around the frame edges (the frame is a torus), so every
single frame has the same distribution of sprite positions whatever the direction: only the
change between frames tells the class. Some clips carry a mono soundtrack that matches the
motion (rising chirps for up, falling for down, single or double pulses for left or right).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from demo import writers
from demo.presets import VideoSpec

# (row, column) unit steps; rows grow downwards, as in images.
DIRECTIONS: dict[str, tuple[int, int]] = {
    "left": (0, -1),
    "right": (0, 1),
    "up": (-1, 0),
    "down": (1, 0),
}


@dataclass(frozen=True)
class Motion:
    direction: str
    start: tuple[float, float]  # sprite centre (row, column) in the first frame, pixels
    speed: float  # pixels per frame
    num_frames: int

    @property
    def velocity(self) -> tuple[float, float]:
        dy, dx = DIRECTIONS[self.direction]
        return (dy * self.speed, dx * self.speed)

    def position(self, frame_index: int) -> tuple[float, float]:
        """Sprite centre at a frame (row, column), before wrapping into the frame."""
        vy, vx = self.velocity
        return (self.start[0] + vy * frame_index, self.start[1] + vx * frame_index)


def random_motion(direction: str, rng: np.random.Generator, spec: VideoSpec) -> Motion:
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; known: {sorted(DIRECTIONS)}")
    duration = spec.durations[rng.integers(len(spec.durations))]
    start = (rng.uniform(0, spec.height), rng.uniform(0, spec.width))
    return Motion(
        direction=direction,
        start=(round(start[0], 3), round(start[1], 3)),
        speed=round(rng.uniform(*spec.speed_range), 3),
        num_frames=int(round(duration * spec.fps)),
    )


def textured_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth colour blobs plus fine grain, float (H, W, 3) in roughly [20, 150]."""
    coarse = rng.uniform(20, 130, size=(height // 8 + 2, width // 8 + 2, 3))
    smooth = ndimage.zoom(coarse, (8, 8, 1), order=1)[:height, :width]
    return smooth + rng.uniform(0, 20, size=(height, width, 3))


def sprite_alpha(ink: np.ndarray, size: int) -> np.ndarray:
    """The 8x8 ink upscaled to (size, size) opacity in [0, 1]."""
    return np.clip(ndimage.zoom(ink, size / ink.shape[0], order=1), 0.0, 1.0)


def render_clip(
    motion: Motion,
    background: np.ndarray,
    alpha: np.ndarray,
    color: np.ndarray,
    noise_std: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Frames uint8 (T, H, W, 3): the sprite composited at each position, wrapping at the edges."""
    height, width, _ = background.shape
    size = alpha.shape[0]
    layer = np.zeros((height, width), np.float32)
    layer[:size, :size] = alpha
    frames = np.empty((motion.num_frames, height, width, 3), np.uint8)
    for t in range(motion.num_frames):
        row, col = motion.position(t)
        # The sprite sits at (0, 0)..(size, size); move its centre to (row, col), sub-pixel.
        moved = ndimage.shift(layer, (row - size / 2, col - size / 2), order=1, mode="grid-wrap")
        opacity = moved[..., np.newaxis]
        frame = background * (1.0 - opacity) + color * opacity
        frame = frame + rng.normal(0.0, noise_std, size=frame.shape)
        frames[t] = np.clip(np.round(frame), 0, 255).astype(np.uint8)
    return frames


def synthesize_clip(
    direction: str, ink: np.ndarray, rng: np.random.Generator, spec: VideoSpec
) -> tuple[np.ndarray, Motion]:
    """One clip of a digit (8x8 ink) moving in `direction`: frames (T, H, W, 3) and its motion."""
    motion = random_motion(direction, rng, spec)
    background = textured_background(rng, spec.height, spec.width)
    color = rng.uniform(190, 255, size=3)
    alpha = sprite_alpha(ink, spec.sprite_size)
    return render_clip(motion, background, alpha, color, spec.noise_std, rng), motion


# --------------------------------------------------------------------------------------------
# Soundtracks that match the motion.

_CHIRP_SECONDS = 0.25
_CHIRP_HZ = (400.0, 1600.0)
_PULSE_SECONDS = 0.05
_PULSE_HZ = {"left": 700.0, "right": 1100.0}
_PULSES = {"left": (0.0,), "right": (0.0, 0.1)}  # pulse onsets within one period, seconds


def _envelope(n: int, sample_rate: int, fade_seconds: float = 0.005) -> np.ndarray:
    fade = min(n // 2, max(1, int(fade_seconds * sample_rate)))
    env = np.ones(n, np.float32)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade, dtype=np.float32))
    env[:fade], env[n - fade :] = ramp, ramp[::-1]
    return env


def _chirp(rising: bool, sample_rate: int) -> np.ndarray:
    n = int(_CHIRP_SECONDS * sample_rate)
    low, high = _CHIRP_HZ
    f0, f1 = (low, high) if rising else (high, low)
    t = np.arange(n, dtype=np.float64) / sample_rate
    # Exponential sweep: instantaneous frequency f0 * (f1/f0)^(t/T).
    k = np.log(f1 / f0) / _CHIRP_SECONDS
    phase = 2 * np.pi * f0 * (np.exp(k * t) - 1.0) / k
    return (np.sin(phase) * _envelope(n, sample_rate)).astype(np.float32)


def _pulse(freq: float, sample_rate: int) -> np.ndarray:
    n = int(_PULSE_SECONDS * sample_rate)
    t = np.arange(n, dtype=np.float64) / sample_rate
    return (np.sin(2 * np.pi * freq * t) * _envelope(n, sample_rate)).astype(np.float32)


def motion_audio(
    motion: Motion, fps: int, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Mono float32 soundtrack as long as the clip; events repeat faster for faster sprites."""
    n = int(round(motion.num_frames / fps * sample_rate))
    wave = rng.normal(0.0, 0.01, size=n).astype(np.float32)
    if motion.direction in ("up", "down"):
        events = [(0.0, _chirp(motion.direction == "up", sample_rate))]
    else:
        tone = _pulse(_PULSE_HZ[motion.direction], sample_rate)
        events = [(onset, tone) for onset in _PULSES[motion.direction]]
    period = float(np.clip(0.8 / motion.speed, 0.35, 0.8))  # seconds
    first = rng.uniform(0.0, period)
    for begin in np.arange(first, n / sample_rate, period):
        for onset, sound in events:
            at = int(round((begin + onset) * sample_rate))
            part = sound[: max(0, n - at)]
            wave[at : at + len(part)] += 0.4 * part
    return np.clip(wave, -1.0, 1.0)


def write_motion_clip(
    path: str, frames: np.ndarray, spec: VideoSpec, sound: np.ndarray | None = None
) -> None:
    """One motion clip as the demo writes them: H.264 at `spec.fps` and `spec.crf`, with its
    mono soundtrack (AAC at `spec.audio_bitrate`) when there is one."""
    writers.write_video(
        path,
        frames,
        spec.fps,
        spec.crf,
        audio=sound,
        audio_sample_rate=spec.audio_sample_rate,
        audio_bitrate=spec.audio_bitrate,
    )
