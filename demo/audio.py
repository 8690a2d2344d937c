"""Audio synthesis: telephone-keypad (DTMF) tones in noise, and multi-label tone mixtures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from demo.presets import DtmfSpec, ToneMixSpec

# The standard DTMF keypad (ITU-T Q.23): each key sounds one row and one column frequency.
_ROWS_HZ = (697.0, 770.0, 852.0, 941.0)
_COLUMNS_HZ = (1209.0, 1336.0, 1477.0)
_KEYPAD = (("1", "2", "3"), ("4", "5", "6"), ("7", "8", "9"), ("star", "0", "pound"))
DTMF_FREQUENCIES: dict[str, tuple[float, float]] = {
    key: (_ROWS_HZ[r], _COLUMNS_HZ[c]) for r, row in enumerate(_KEYPAD) for c, key in enumerate(row)
}
DTMF_KEYS = tuple(str(d) for d in range(10)) + ("star", "pound")

_DTMF_LEVEL = 0.25  # amplitude of each of the two sines
_DTMF_FREQ_TOLERANCE = 0.015  # real keypads may be off by up to ~1.5 %
_DTMF_TWIST_DB = 3.0  # level difference between the row and column tone


def _fade(n: int, sample_rate: int, fade_seconds: float = 0.005) -> np.ndarray:
    fade = min(n // 2, max(1, int(fade_seconds * sample_rate)))
    env = np.ones(n)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
    env[:fade], env[n - fade :] = ramp, ramp[::-1]
    return env


def _db(value: float) -> float:
    return float(10.0 ** (value / 20.0))


def dtmf_tone(key: str, seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One key press: its row and column sines, slightly detuned and unbalanced as in real lines."""
    if key not in DTMF_FREQUENCIES:
        raise ValueError(f"unknown DTMF key {key!r}; known: {list(DTMF_KEYS)}")
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    wave = np.zeros(n)
    twist = rng.uniform(-_DTMF_TWIST_DB, _DTMF_TWIST_DB) / 2
    for freq, level_db in zip(DTMF_FREQUENCIES[key], (twist, -twist), strict=True):
        freq *= 1.0 + rng.uniform(-_DTMF_FREQ_TOLERANCE, _DTMF_FREQ_TOLERANCE)
        wave += (
            _DTMF_LEVEL * _db(level_db) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
        )
    return wave * _fade(n, sample_rate)


@dataclass(frozen=True)
class DtmfClip:
    wave: np.ndarray  # float32 mono in [-1, 1]
    start: float  # seconds: the labelled key tone sits in [start, end]
    end: float
    distractor: str | None  # another key sounding outside [start, end], if any
    distractor_start: float | None


def _round_ms(seconds: float) -> float:
    return round(float(seconds), 3)


def dtmf_clip(key: str, rng: np.random.Generator, spec: DtmfSpec) -> DtmfClip:
    """A file of noise with `key` in a [start, end] window and maybe another key outside it."""
    sr = spec.sample_rate
    duration = round(rng.uniform(*spec.durations), 2)
    length = _round_ms(rng.uniform(*spec.tone_seconds))
    distractor = None
    if rng.random() < spec.distractor_fraction:
        others = [k for k in DTMF_KEYS if k != key]
        distractor = others[rng.integers(len(others))]
    side = spec.distractor_seconds + spec.min_gap_seconds if distractor else 0.0
    # The window goes after the distractor (or before it), leaving room for the gap.
    window_first = bool(rng.random() < 0.5)
    lo, hi = (0.05, duration - length - side - 0.05)
    if not window_first:
        lo, hi = lo + side, hi + side
    if hi < lo:
        raise ValueError(f"dtmf: {duration} s files are too short for a {length} s tone + {side} s")
    start = _round_ms(rng.uniform(lo, hi))
    end = _round_ms(start + length)

    n = int(round(duration * sr))
    signal = np.zeros(n)
    begin = int(round(start * sr))
    tone = dtmf_tone(key, length, sr, rng)
    signal[begin : begin + len(tone)] += tone
    distractor_start = None
    if distractor:
        if window_first:
            distractor_start = _round_ms(end + spec.min_gap_seconds)
        else:
            distractor_start = _round_ms(start - spec.min_gap_seconds - spec.distractor_seconds)
        at = int(round(distractor_start * sr))
        other = dtmf_tone(distractor, spec.distractor_seconds, sr, rng)
        signal[at : at + len(other)] += other
    tone_rms = _DTMF_LEVEL  # rms of two sines of amplitude L is L
    noise_std = tone_rms / _db(rng.uniform(*spec.snr_db))
    wave = signal + rng.normal(0.0, noise_std, size=n)
    return DtmfClip(
        wave=np.clip(wave, -1.0, 1.0).astype(np.float32),
        start=start,
        end=end,
        distractor=distractor,
        distractor_start=distractor_start,
    )


# --------------------------------------------------------------------------------------------
# Tone mixtures (AudioSet-style, multi-label). Every sound recurs at least every 0.5 s so that
# any crop of a second or more carries all the labels of its clip.


def _sine(freq: float, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))


def _low_tone(t: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    freq = 220.0 * rng.uniform(0.95, 1.05)
    return 0.7 * _sine(freq, t, rng) + 0.3 * _sine(2 * freq, t, rng)


def _high_whistle(t: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    return _sine(2600.0 * rng.uniform(0.95, 1.05), t, rng)


def _repeat(event: np.ndarray, n: int, period: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    for at in range(int(rng.integers(period)), n, period):
        part = event[: n - at]
        out[at : at + len(part)] += part
    return out


def _rising_chirp(t: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    seconds, f0, f1 = 0.25, 300.0, 3000.0
    u = np.arange(int(seconds * sr)) / sr
    k = np.log(f1 / f0) / seconds
    chirp = np.sin(2 * np.pi * f0 * (np.exp(k * u) - 1.0) / k) * _fade(len(u), sr)
    return _repeat(chirp, len(t), int(rng.uniform(0.4, 0.5) * sr), rng)


def _noise_burst(t: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    n_burst = int(0.12 * sr)
    burst = rng.normal(0.0, 1.0, size=n_burst)
    # Keep 3-7 kHz only, so bursts stand apart from the broadband background noise.
    spectrum = np.fft.rfft(burst)
    freqs = np.fft.rfftfreq(n_burst, 1.0 / sr)
    spectrum[(freqs < 3000) | (freqs > 7000)] = 0
    burst = np.fft.irfft(spectrum, n_burst)
    burst = burst / (np.abs(burst).max() + 1e-9) * _fade(n_burst, sr)
    return _repeat(burst, len(t), int(rng.uniform(0.35, 0.45) * sr), rng)


def _click_train(t: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    click = np.hanning(16)
    return _repeat(click, len(t), int(sr / rng.uniform(20.0, 30.0)), rng)


def _warble(t: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    carrier, depth, rate = 1000.0 * rng.uniform(0.95, 1.05), 200.0, rng.uniform(5.0, 7.0)
    # Frequency modulation: phase integrates carrier + depth * sin(2 pi rate t).
    phase = 2 * np.pi * carrier * t - depth / rate * np.cos(2 * np.pi * rate * t)
    return np.sin(phase + rng.uniform(0, 2 * np.pi))


@dataclass(frozen=True)
class SoundClass:
    mid: str  # AudioSet-style machine id
    display_name: str
    synthesize: Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


# "/t/..." mirrors AudioSet's ids for classes without a Freebase entry (e.g. /t/dd00001).
TONE_MIX_CLASSES: tuple[SoundClass, ...] = (
    SoundClass("/t/pv00001", "Low tone", _low_tone),
    SoundClass("/t/pv00002", "High whistle", _high_whistle),
    SoundClass("/t/pv00003", "Chirp, rising", _rising_chirp),
    SoundClass("/t/pv00004", "Noise burst", _noise_burst),
    SoundClass("/t/pv00005", "Click train", _click_train),
    SoundClass("/t/pv00006", "Warble", _warble),
)


def mixture_labels(index: int, rng: np.random.Generator, max_labels: int) -> list[int]:
    """1..max_labels distinct classes; clip `index` always has class index % K, so that every
    class has positives in every split of at least K clips."""
    num_classes = len(TONE_MIX_CLASSES)
    anchor = index % num_classes
    extra = int(rng.integers(0, max_labels))
    others = [c for c in rng.permutation(num_classes) if c != anchor][:extra]
    return sorted([anchor, *(int(c) for c in others)])


def tone_mixture(labels: list[int], rng: np.random.Generator, spec: ToneMixSpec) -> np.ndarray:
    """A mixture of the given sound classes at random levels over background noise."""
    sr = spec.sample_rate
    n = int(round(spec.segment_seconds * sr))
    t = np.arange(n) / sr
    mix = np.zeros(n)
    for label in labels:
        sound = TONE_MIX_CLASSES[label].synthesize(t, sr, rng)
        mix += rng.uniform(0.5, 1.0) * sound / (np.abs(sound).max() + 1e-9)
    mix *= 0.6 / np.abs(mix).max()
    signal_rms = float(np.sqrt(np.mean(mix**2)))
    noise = rng.normal(0.0, signal_rms / _db(rng.uniform(*spec.snr_db)), size=n)
    return np.clip(mix + noise, -1.0, 1.0).astype(np.float32)
