"""Audio: resampling, clip sampling, log-mel spectrogram, normalisation, SpecAugment.

The model sees a log-mel spectrogram [F, M, 1]: the waveform at `inputs.audio_sample_rate`
framed by a Hann window of `audio_window_ms` (25 ms) every `audio_hop_ms` (10 ms), power
spectrum, M triangular mel filters between `mel_min_hz` and `mel_max_hz`, natural log.
Frames cover the clip without padding its end:
    F = 1 + (clip_samples - window) // hop      (1 s at 16 kHz: 1 + (16000 - 400) // 160 = 98)

Normalisation uses fixed statistics passed in (`audio_mean`, `audio_std`, computed over the
training set by Transform), never per-clip statistics, so that serving sees exactly what
training saw.
"""

from __future__ import annotations

import tensorflow as tf

from core.audio_framing import clip_samples, frame_params, mel_range, num_spectrogram_frames
from core.config import Inputs
from transforms.video import clip_starts

# Added to the mel energies before the log: keeps digital silence finite (log(1e-6) = -13.8)
# while staying far below the energy of any audible signal.
LOG_OFFSET = 1e-6


def resample(waveform: tf.Tensor, from_rate: tf.Tensor, to_rate: int) -> tf.Tensor:
    """Linear-interpolation resampling of [samples] from `from_rate` (a tensor; 0 or less means
    already at `to_rate`) to `to_rate`. Integer positions keep equal rates exact. Linear
    interpolation does not low-pass: when downsampling, energy above the new Nyquist frequency
    aliases, which is why records should be written at the model's rate."""
    if isinstance(from_rate, int) and from_rate in (0, to_rate):
        return waveform
    from_rate = tf.cast(from_rate, tf.int64)
    from_rate = tf.where(from_rate > 0, from_rate, tf.constant(to_rate, tf.int64))

    def interpolate():
        length = tf.size(waveform, out_type=tf.int64)
        out_length = length * to_rate // from_rate
        numerator = tf.range(out_length, dtype=tf.int64) * from_rate
        left = numerator // to_rate
        frac = tf.cast(numerator % to_rate, tf.float32) / float(to_rate)
        right = tf.minimum(left + 1, tf.maximum(length - 1, 0))
        return tf.gather(waveform, left) * (1.0 - frac) + tf.gather(waveform, right) * frac

    # Records at the model's rate (the usual case) skip the gathers.
    return tf.cond(tf.equal(from_rate, to_rate), lambda: waveform, interpolate)


def at_model_rate(waveform: tf.Tensor, sample_rate: tf.Tensor | int, inputs: Inputs) -> tf.Tensor:
    """float32 [samples] at inputs.audio_sample_rate: the first step of both audio paths."""
    return resample(tf.cast(waveform, tf.float32), sample_rate, inputs.audio_sample_rate)


def padded_to(waveform: tf.Tensor, num_samples: int, filename: tf.Tensor | str = "") -> tf.Tensor:
    """[samples] padded with silence at the end to at least `num_samples`. An empty waveform
    is an error naming the record."""
    length = tf.size(waveform)
    check = tf.debugging.Assert(
        length > 0, ["WAVEFORM/feature/floats: the record has no audio samples:", filename]
    )
    with tf.control_dependencies([check]):
        return tf.pad(waveform, [[0, tf.maximum(num_samples - length, 0)]])


def sample_waveform_clips(
    waveform: tf.Tensor,
    num_samples: int,
    num_clips: int,
    *,
    training: bool,
    seed: tf.Tensor | None = None,
    filename: tf.Tensor | str = "",
) -> tf.Tensor:
    """float32 [num_clips, num_samples]: random (training) or central / evenly spaced (eval)
    windows of the waveform; a waveform shorter than a clip is padded with silence at the end.
    An empty waveform is an error naming the record."""
    padded = padded_to(waveform, num_samples, filename)
    starts = clip_starts(tf.size(waveform), num_samples, num_clips, training=training, seed=seed)
    indices = starts[:, None] + tf.range(num_samples, dtype=tf.int32)[None, :]
    return tf.ensure_shape(tf.gather(padded, indices), [num_clips, num_samples])


def log_mel_spectrogram(waveform: tf.Tensor, inputs: Inputs) -> tf.Tensor:
    """[..., samples] at inputs.audio_sample_rate -> log-mel [..., F, num_mel_bins].

    Public so that Transform's preprocessing_fn computes the normalisation statistics over
    exactly the features the model sees."""
    window, hop, fft_length = frame_params(inputs)
    stft = tf.signal.stft(
        waveform,
        frame_length=window,
        frame_step=hop,
        fft_length=fft_length,
        window_fn=tf.signal.hann_window,
        pad_end=False,
    )
    power = tf.square(tf.abs(stft))
    low, high = mel_range(inputs)
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=inputs.num_mel_bins,
        num_spectrogram_bins=fft_length // 2 + 1,
        sample_rate=inputs.audio_sample_rate,
        lower_edge_hertz=low,
        upper_edge_hertz=high,
    )
    mel = tf.tensordot(power, mel_matrix, axes=1)
    mel.set_shape(power.shape[:-1].concatenate([inputs.num_mel_bins]))
    return tf.math.log(mel + LOG_OFFSET)


def normalise(log_mel: tf.Tensor, mean: float | tf.Tensor, std: float | tf.Tensor) -> tf.Tensor:
    return (log_mel - tf.cast(mean, tf.float32)) / tf.cast(std, tf.float32)


def _band_mask(length: int, max_width: int, seed: tf.Tensor) -> tf.Tensor:
    """bool [length]: one band of random width in [0, max_width] at a random position."""
    max_width = min(max_width, length)
    width = tf.random.stateless_uniform([], seed, minval=0, maxval=max_width + 1, dtype=tf.int32)
    start_seed = tf.random.experimental.stateless_fold_in(seed, 1)
    start = tf.random.stateless_uniform(
        [], start_seed, minval=0, maxval=length - width + 1, dtype=tf.int32
    )
    positions = tf.range(length)
    return (positions >= start) & (positions < start + width)


def spec_augment(spectrogram: tf.Tensor, inputs: Inputs, seed: tf.Tensor) -> tf.Tensor:
    """SpecAugment's masking on one normalised spectrogram [F, M, C]: `freq_masks` bands of up
    to `freq_mask_bins` mel bins and `time_masks` bands of up to `time_mask_frames` frames,
    set to 0 (the normalised mean)."""
    frames, bins = spectrogram.shape[0], spectrogram.shape[1]
    masked = tf.zeros([frames, bins], tf.bool)
    for i in range(inputs.time_masks):
        band = _band_mask(
            frames, inputs.time_mask_frames, tf.random.experimental.stateless_fold_in(seed, 2 * i)
        )
        masked |= band[:, None]
    for i in range(inputs.freq_masks):
        band = _band_mask(
            bins, inputs.freq_mask_bins, tf.random.experimental.stateless_fold_in(seed, 2 * i + 1)
        )
        masked |= band[None, :]
    return tf.where(masked[:, :, None], tf.zeros_like(spectrogram), spectrogram)


def _finish_spectrograms(
    log_mels: tf.Tensor,
    inputs: Inputs,
    num_clips: int,
    *,
    training: bool,
    seed: tf.Tensor | None,
    audio_mean: float | tf.Tensor,
    audio_std: float | tf.Tensor,
) -> tf.Tensor:
    """Log-mels [num_clips, F, M] -> normalised [num_clips, F, M, 1], SpecAugment-ed in training
    when `inputs.spec_augment` (clip i's masks seeded by fold(seed, 1 + i))."""
    spectrograms = normalise(log_mels, audio_mean, audio_std)[..., None]
    if training and inputs.spec_augment:
        spectrograms = tf.stack(
            [
                spec_augment(
                    spectrograms[i],
                    inputs,
                    tf.random.experimental.stateless_fold_in(seed, 1 + i),
                )
                for i in range(num_clips)
            ]
        )
    frames = num_spectrogram_frames(inputs)
    return tf.ensure_shape(spectrograms, [num_clips, frames, inputs.num_mel_bins, 1])


def waveform_features(
    waveform: tf.Tensor,
    sample_rate: tf.Tensor | int,
    inputs: Inputs,
    num_clips: int,
    *,
    training: bool,
    seed: tf.Tensor | None = None,
    audio_mean: float | tf.Tensor = 0.0,
    audio_std: float | tf.Tensor = 1.0,
    filename: tf.Tensor | str = "",
) -> tf.Tensor:
    """Waveform [samples] at `sample_rate` -> float32 [num_clips, F, M, 1] normalised log-mel,
    SpecAugment-ed in training when `inputs.spec_augment`. Kept apart from record parsing so a
    video record's soundtrack goes through the same code."""
    waveform = at_model_rate(waveform, sample_rate, inputs)
    clip_seed = None if seed is None else tf.random.experimental.stateless_fold_in(seed, 0)
    clips = sample_waveform_clips(
        waveform,
        clip_samples(inputs),
        num_clips,
        training=training,
        seed=clip_seed,
        filename=filename,
    )
    return _finish_spectrograms(
        log_mel_spectrogram(clips, inputs),
        inputs,
        num_clips,
        training=training,
        seed=seed,
        audio_mean=audio_mean,
        audio_std=audio_std,
    )


# Cached training path: the log-mel of the whole clip once (deterministic), crops per step.


def whole_clip_log_mel(
    waveform: tf.Tensor,
    sample_rate: tf.Tensor | int,
    inputs: Inputs,
    filename: tf.Tensor | str = "",
) -> tf.Tensor:
    """Waveform [samples] at `sample_rate` -> log-mel [frames, M] of the whole waveform,
    resampled and silence-padded to at least one clip. Its frames k .. k + F - 1 are exactly
    the log-mel of the window starting at sample k * hop (each frame sees only its own
    samples), so a crop of frames is the spectrogram of a hop-aligned clip."""
    waveform = at_model_rate(waveform, sample_rate, inputs)
    return log_mel_spectrogram(padded_to(waveform, clip_samples(inputs), filename), inputs)


def spectrogram_clip_features(
    log_mel: tf.Tensor,
    inputs: Inputs,
    num_clips: int,
    *,
    training: bool,
    seed: tf.Tensor | None = None,
    audio_mean: float | tf.Tensor = 0.0,
    audio_std: float | tf.Tensor = 1.0,
) -> tf.Tensor:
    """Whole-clip log-mel [frames, M] -> float32 [num_clips, F, M, 1] as waveform_features
    makes them, from crops of F frames: random starts in training (any frame, i.e. any
    hop-aligned sample offset), the central / evenly spaced frames otherwise; then the same
    normalisation and SpecAugment (same seeds)."""
    frames = num_spectrogram_frames(inputs)
    clip_seed = None if seed is None else tf.random.experimental.stateless_fold_in(seed, 0)
    starts = clip_starts(tf.shape(log_mel)[0], frames, num_clips, training=training, seed=clip_seed)
    indices = starts[:, None] + tf.range(frames, dtype=tf.int32)[None, :]
    return _finish_spectrograms(
        tf.gather(log_mel, indices),
        inputs,
        num_clips,
        training=training,
        seed=seed,
        audio_mean=audio_mean,
        audio_std=audio_std,
    )
