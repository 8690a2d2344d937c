"""The pure synthesis functions of make-demo-data: what each modality's signal carries."""

from __future__ import annotations

import re

import numpy as np
import pytest
from demo_data_media_checks import direction_from_motion, first_frame_position

from demo import audio, generate, images, presets, video, writers
from demo.cli import summary_table

SEED = 0


def _nearest_centroid_loo_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """Leave-one-out accuracy of a nearest-class-mean classifier."""
    correct = 0
    for i in range(len(labels)):
        keep = np.arange(len(labels)) != i
        classes = np.unique(labels[keep])
        means = np.stack([features[keep & (labels == c)].mean(axis=0) for c in classes])
        guess = classes[np.argmin(((means - features[i]) ** 2).sum(axis=1))]
        correct += guess == labels[i]
    return correct / len(labels)


@pytest.fixture(scope="module")
def motion_clips():
    """30 clips per direction, in memory (no encoding): frames, motions and labels."""
    ink, _ = images.load_digit_ink()
    clips = []
    for d, direction in enumerate(video.DIRECTIONS):
        for i in range(30):
            rng = generate._rng(SEED, presets.MOTION, 9, d, i)
            frames, motion = video.synthesize_clip(
                direction, ink[int(rng.integers(len(ink)))], rng, presets.VIDEO
            )
            clips.append((frames, motion, d))
    return clips


def test_a_single_frame_does_not_tell_the_direction_but_motion_does(motion_clips):
    labels = np.array([d for _, _, d in motion_clips])
    positions = np.array([first_frame_position(frames) for frames, _, _ in motion_clips])
    # The pixel estimate finds the sprite where the generator put it (circular distance).
    truth = np.array([m.start for _, m, _ in motion_clips])
    size = np.array([presets.VIDEO.height, presets.VIDEO.width])
    error = np.abs((positions - truth + size / 2) % size - size / 2)
    assert np.median(error.max(axis=1)) < 2.0

    # Where the sprite starts is spread over the whole frame for every direction...
    for d in range(len(video.DIRECTIONS)):
        spread = positions[labels == d].std(axis=0)
        assert (spread > size / 5).all(), f"direction {d}: start positions bunch together"
    # ...so a classifier on the first frame (sprite position, or all its pixels) is at chance
    # level (0.25 for four directions),
    assert _nearest_centroid_loo_accuracy(positions, labels) < 0.45
    pixels = np.array([frames[0, ::4, ::4].ravel() for frames, _, _ in motion_clips], float)
    assert _nearest_centroid_loo_accuracy(pixels, labels) < 0.45
    # ...while the motion between frames names the direction of every clip.
    names = list(video.DIRECTIONS)
    guesses = [direction_from_motion(frames) for frames, _, _ in motion_clips]
    assert guesses == [names[d] for d in labels]


def test_clip_lengths_and_speeds_follow_the_spec(motion_clips):
    spec = presets.VIDEO
    lengths = {m.num_frames for _, m, _ in motion_clips}
    assert lengths <= {round(d * spec.fps) for d in spec.durations} and len(lengths) > 1
    for frames, motion, _ in motion_clips:
        assert frames.shape == (motion.num_frames, spec.height, spec.width, 3)
        assert frames.dtype == np.uint8
        assert spec.speed_range[0] <= motion.speed <= spec.speed_range[1]


def _peak_track(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Peak frequency of each loud 256-sample frame (NaN for quiet frames)."""
    frames = np.lib.stride_tricks.sliding_window_view(wave, 256)[::128] * np.hanning(256)
    spectra = np.abs(np.fft.rfft(frames, axis=1))
    peaks = np.fft.rfftfreq(256, 1.0 / sample_rate)[spectra.argmax(axis=1)]
    energy = (frames**2).sum(axis=1)
    return np.where(energy > 0.25 * energy.max(), peaks, np.nan)


def test_soundtrack_matches_the_motion():
    sample_rate = presets.VIDEO.audio_sample_rate
    rng = np.random.default_rng(SEED)
    for direction in video.DIRECTIONS:
        motion = video.Motion(direction, start=(0.0, 0.0), speed=1.5, num_frames=40)
        wave = video.motion_audio(motion, presets.VIDEO.fps, sample_rate, rng)
        assert len(wave) == 40 / presets.VIDEO.fps * sample_rate
        assert np.abs(wave).max() <= 1.0
        track = _peak_track(wave, sample_rate)
        steps = np.diff(track)
        rises, falls = (steps > 0).sum(), (steps < 0).sum()
        if direction == "up":
            assert rises > 10 and rises > 5 * falls, "up should sound as rising chirps"
        elif direction == "down":
            assert falls > 10 and falls > 5 * rises, "down should sound as falling chirps"
        else:
            pitch = np.nanmedian(track)
            assert pitch == pytest.approx(700 if direction == "left" else 1100, rel=0.1)


def test_dtmf_keypad_is_the_real_one():
    assert audio.DTMF_FREQUENCIES["1"] == (697.0, 1209.0)
    assert audio.DTMF_FREQUENCIES["5"] == (770.0, 1336.0)
    assert audio.DTMF_FREQUENCIES["9"] == (852.0, 1477.0)
    assert audio.DTMF_FREQUENCIES["star"] == (941.0, 1209.0)
    assert audio.DTMF_FREQUENCIES["0"] == (941.0, 1336.0)
    assert audio.DTMF_FREQUENCIES["pound"] == (941.0, 1477.0)
    assert sorted(audio.DTMF_KEYS) == sorted(audio.DTMF_FREQUENCIES)
    assert len(audio.DTMF_KEYS) == 12


def test_dtmf_window_and_distractor_placement():
    spec = presets.DTMF_AUDIO
    distractors = 0
    for i in range(120):
        key = audio.DTMF_KEYS[i % 12]
        clip = audio.dtmf_clip(key, np.random.default_rng([SEED, i]), spec)
        duration = len(clip.wave) / spec.sample_rate
        assert spec.durations[0] - 0.01 <= duration <= spec.durations[1] + 0.01
        assert 0 <= clip.start < clip.end <= duration
        assert spec.tone_seconds[0] - 0.002 <= clip.end - clip.start <= spec.tone_seconds[1] + 0.002
        if clip.distractor:
            distractors += 1
            assert clip.distractor != key
            begin, end = clip.distractor_start, clip.distractor_start + spec.distractor_seconds
            assert 0 <= begin and end <= duration
            gap = max(clip.start - end, begin - clip.end)
            assert gap >= spec.min_gap_seconds - 1e-6
    assert 0.3 < distractors / 120 < 0.7


def test_every_tone_mix_sound_recurs_within_half_a_second():
    sr = presets.TONE_MIX_AUDIO.sample_rate
    t = np.arange(3 * sr) / sr
    half = sr // 2
    for sound_class in audio.TONE_MIX_CLASSES:
        sound = sound_class.synthesize(t, sr, np.random.default_rng(SEED))
        windows = np.abs(sound[: len(sound) // half * half]).reshape(-1, half).max(axis=1)
        assert (windows > 0.3 * np.abs(sound).max()).all(), sound_class.display_name


def test_tone_mixtures_are_multi_label_and_cover_every_class():
    spec = presets.TONE_MIX_AUDIO
    counts = []
    for i in range(60):
        rng = np.random.default_rng([SEED, i])
        labels = audio.mixture_labels(i, rng, spec.max_labels)
        assert i % len(audio.TONE_MIX_CLASSES) in labels
        assert labels == sorted(set(labels)) and 1 <= len(labels) <= spec.max_labels
        counts.append(len(labels))
    assert set(counts) == {1, 2, 3}
    wave = audio.tone_mixture([0, 3], np.random.default_rng(SEED), spec)
    assert wave.dtype == np.float32 and len(wave) == spec.segment_seconds * spec.sample_rate
    assert 0.3 < np.abs(wave).max() <= 1.0
    assert len({c.mid for c in audio.TONE_MIX_CLASSES}) == len(audio.TONE_MIX_CLASSES) == 6


def test_augmented_digits():
    ink, labels = images.load_digit_ink()
    assert ink.shape[1:] == (8, 8) and 0.0 <= ink.min() and ink.max() <= 1.0
    spec = presets.IMAGE
    a = images.augmented_digit(ink[0], np.random.default_rng(1), spec)
    b = images.augmented_digit(ink[0], np.random.default_rng(2), spec)
    gray = images.augmented_digit(ink[0], np.random.default_rng(1), spec, grayscale=True)
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 and gray.ndim == 2
    assert (a.shape[1], a.shape[0]) in spec.sizes
    assert a.std() > 20, "no visible digit"
    assert a.shape != b.shape or not np.array_equal(a, b)
    picks = images.pick_per_class(labels, 5, np.random.default_rng(0))
    assert [set(labels[p]) for p in picks] == [{d} for d in range(10)]
    with pytest.raises(ValueError, match="digit 0"):
        images.pick_per_class(labels, 10_000, np.random.default_rng(0))


def test_ytids_are_unique_youtube_like_and_seeded():
    ids = generate.random_ytids(500, np.random.default_rng(7))
    assert len(set(ids)) == 500
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{11}", y) for y in ids)
    assert ids == generate.random_ytids(500, np.random.default_rng(7))


def test_writers_reject_bad_input_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"clip\.mp3"):
        writers.write_audio(str(tmp_path / "clip.mp3"), np.zeros(10, np.float32), 16000)
    with pytest.raises(ValueError, match=r"stereo\.wav"):
        writers.write_audio(str(tmp_path / "stereo.wav"), np.zeros((2, 10), np.float32), 16000)
    with pytest.raises(ValueError, match=r"odd\.mp4"):
        writers.write_video(str(tmp_path / "odd.mp4"), np.zeros((2, 47, 64, 3), np.uint8), 16, 20)
    with pytest.raises(ValueError, match=r"x\.gif"):
        writers.write_image(str(tmp_path / "x.gif"), np.zeros((8, 8), np.uint8), 90)
    with pytest.raises(ValueError, match="quotes"):
        writers.write_class_labels(str(tmp_path / "c.csv"), [("/m/1", 'say "hi"')])
    with pytest.raises(ValueError, match="scale"):
        generate.generate(str(tmp_path / "d"), scale="huge")


def test_summary_table_has_one_row_per_dataset():
    results = [
        generate.DatasetResult("digits", "image", {"all": 30}, {}, seconds=0.25),
        generate.DatasetResult("motion", "video", {"train": 8, "eval": 8}, {}, seconds=1.5),
    ]
    lines = summary_table(results).splitlines()
    assert lines[0].split() == ["dataset", "modality", "files", "seconds"]
    assert lines[1].split() == ["digits", "image", "all=30", "0.2"]
    assert lines[2].split() == ["motion", "video", "train=8", "eval=8", "1.5"]
