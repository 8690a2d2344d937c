"""How `inputs.*` frame audio, in samples: pure arithmetic that the config's rules (the window
must fit the clip, the mel range the Nyquist frequency) and transforms/audio.py share."""

from __future__ import annotations

import math
import typing

if typing.TYPE_CHECKING:  # core.config imports this module; the type is only for readers
    from core.config import Inputs


def clip_samples(inputs: Inputs) -> int:
    """Samples in one audio clip at the model's rate."""
    return int(round(inputs.audio_seconds * inputs.audio_sample_rate))


def frame_params(inputs: Inputs) -> tuple[int, int, int]:
    """(window, hop, fft_length) in samples."""
    window = int(round(inputs.audio_window_ms * inputs.audio_sample_rate / 1000.0))
    hop = int(round(inputs.audio_hop_ms * inputs.audio_sample_rate / 1000.0))
    fft_length = 2 ** int(math.ceil(math.log2(max(window, 2))))
    return window, hop, fft_length


def num_spectrogram_frames(inputs: Inputs) -> int:
    window, hop, _ = frame_params(inputs)
    return 1 + (clip_samples(inputs) - window) // hop


def mel_range(inputs: Inputs) -> tuple[float, float]:
    """(low, high) Hz of the mel filters; mel_max_hz 0 means the Nyquist frequency."""
    nyquist = inputs.audio_sample_rate / 2.0
    return inputs.mel_min_hz, (inputs.mel_max_hz or nyquist)
