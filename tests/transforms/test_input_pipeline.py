"""The tf.data input pipelines and the serving preprocessors on tiny generated DMVR records."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf  # noqa: E402

import core.env  # noqa: F401
from core.config import Inputs  # noqa: E402
from tests.support import inputs as support_inputs
from tests.support import records as support_records
from transforms import audio, input_pipeline, video  # noqa: E402
from transforms.augment import mixup  # noqa: E402

INPUTS = support_inputs.TINY_INPUTS
TASKS = support_inputs.modality_tasks(5, 4, 6, audio_label_type="multi")
IMAGE_TASK, VIDEO_TASK, AUDIO_TASK = TASKS["image"], TASKS["video"], TASKS["audio"]


# --------------------------------------------------------------------------------------------
# Tiny records


def brightness_frame(index: int, height: int = 20, width: int = 28) -> np.ndarray:
    """A flat frame whose grey level encodes its index (JPEG keeps flat areas almost exact)."""
    return np.full([height, width, 3], 10 * index + 5, np.uint8)


def frame_index(pixels: np.ndarray) -> int:
    """Inverse of brightness_frame after scaling to [-1, 1]."""
    return int(round(((float(np.mean(pixels)) + 1.0) * 127.5 - 5) / 10))


def tone(freq: float, seconds: float, rate: int) -> np.ndarray:
    return support_records.sine(freq, seconds, rate)


def make_record(
    labels=(0,),
    frames=None,
    waveform=None,
    sample_rate: int = INPUTS.audio_sample_rate,
    filename: str = "clip.mp4",
) -> bytes:
    return support_records.record(
        label_indices=list(labels),
        frames=None
        if frames is None
        else [support_records.jpeg(frame, quality=95) for frame in frames],
        waveform=waveform,
        sample_rate=sample_rate,
        filename=filename,
    )


def record_for(modality: str, i: int, labels=None) -> bytes:
    rng = np.random.default_rng(i)
    task = TASKS[modality]
    labels = labels if labels is not None else (i % task.num_classes,)
    if modality == "image":
        frames = [rng.integers(0, 256, [24, 20, 3], dtype=np.uint8)]
        return make_record(labels, frames=frames, filename=f"img{i}.jpg")
    if modality == "video":
        frames = [brightness_frame(t) for t in range(12)]
        return make_record(labels, frames=frames, filename=f"vid{i}.mp4")
    wave = tone(300 + 100 * i, 0.8, INPUTS.audio_sample_rate)
    return make_record(labels, waveform=wave, filename=f"snd{i}.wav")


def write_records(folder, name: str, serialized: list[bytes], num_files: int = 1) -> str:
    """Writes records round-robin to gzip shards named as MediaExampleGen names them."""
    return support_records.write_shards(str(folder), name, serialized, num_files)


@pytest.fixture(scope="module")
def patterns(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    return {
        modality: write_records(
            root, TASKS[modality].name, [record_for(modality, i) for i in range(6)]
        )
        for modality in ("image", "video", "audio")
    }


def assert_same_features(got, expected):
    """Same code path, so equal up to float reassociation (graph vs eager kernels, oneDNN)."""
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)


def first_batch(ds):
    return next(iter(ds))


# --------------------------------------------------------------------------------------------
# Shapes, labels, determinism


@pytest.mark.parametrize("modality", ["image", "video", "audio"])
@pytest.mark.parametrize("training", [True, False])
def test_static_shapes_and_dtypes(patterns, modality, training):
    task = TASKS[modality]
    ds = input_pipeline.make_dataset(
        patterns[modality], task, INPUTS, training=training, batch_size=3
    )
    shape = input_pipeline.feature_shape(task, INPUTS)
    feature_spec, label_spec = ds.element_spec
    assert list(feature_spec) == [input_pipeline.modality_key(task)] == [modality]
    assert feature_spec[modality].shape == (3, *shape)
    assert feature_spec[modality].dtype == tf.float32
    assert label_spec.shape == (3, task.num_classes) and label_spec.dtype == tf.float32
    batch, labels = first_batch(ds)
    assert np.all(np.isfinite(batch[modality].numpy()))
    if modality != "audio":
        assert batch[modality].numpy().min() >= -1.0 and batch[modality].numpy().max() <= 1.0
    assert labels.shape == (3, task.num_classes)


def test_feature_shapes_follow_the_config():
    assert input_pipeline.feature_shape(IMAGE_TASK, INPUTS) == (16, 16, 3)
    assert input_pipeline.feature_shape(VIDEO_TASK, INPUTS) == (4, 16, 16, 3)
    # 0.5 s at 8 kHz, 25 ms window (200 samples), 10 ms hop (80): 1 + (4000 - 200) // 80.
    assert input_pipeline.feature_shape(AUDIO_TASK, INPUTS) == (48, 16, 1)
    standard = Inputs(audio_seconds=1.0, audio_sample_rate=16000, num_mel_bins=32)
    assert input_pipeline.feature_shape(AUDIO_TASK, standard) == (98, 32, 1)


def test_labels_one_hot_and_multi_hot(tmp_path):
    single = write_records(
        tmp_path, "single", [record_for("image", i, labels=(i,)) for i in range(4)]
    )
    ds = input_pipeline.make_dataset(single, IMAGE_TASK, INPUTS, training=False, batch_size=4)
    _, labels = first_batch(ds)
    np.testing.assert_array_equal(labels.numpy(), np.eye(5, dtype=np.float32)[:4])

    multi = write_records(
        tmp_path,
        "multi",
        [record_for("audio", 0, labels=(1, 4)), record_for("audio", 1, labels=())],
    )
    ds = input_pipeline.make_dataset(multi, AUDIO_TASK, INPUTS, training=False, batch_size=2)
    _, labels = first_batch(ds)
    np.testing.assert_array_equal(labels.numpy(), [[0, 1, 0, 0, 1, 0], [0] * 6])


def test_each_files_compression_is_detected_from_its_bytes(tmp_path):
    """Uncompressed (MediaExampleGen's default, DMVR's generator), gzip named `.gz`, and gzip
    named like an uncompressed DMVR shard all read in one dataset."""
    records = [record_for("image", i, labels=(i,)) for i in range(3)]
    support_records.write_tfrecords(
        str(tmp_path / "mix-00000-of-00003.tfrecord"), records[:1], "none"
    )
    support_records.write_tfrecords(str(tmp_path / "mix-00001-of-00003.gz"), records[1:2], "gzip")
    support_records.write_tfrecords(str(tmp_path / "mix-00002-of-00003"), records[2:], "gzip")
    pattern = str(tmp_path / "mix-*")
    assert input_pipeline.file_compressions(sorted(tf.io.gfile.glob(pattern))) == [
        "",
        "GZIP",
        "GZIP",
    ]
    ds = input_pipeline.make_dataset(pattern, IMAGE_TASK, INPUTS, training=False, batch_size=3)
    _, labels = first_batch(ds)
    np.testing.assert_array_equal(labels.numpy(), np.eye(5, dtype=np.float32)[:3])


def test_labels_by_text_through_the_vocabulary(tmp_path):
    """Records numbered by another tool: the text decides, through the task's vocabulary;
    a record without texts keeps its index; an unknown text fails naming it."""
    vocabulary = ["cat", "dog", "eel", "fox", "gnu"]
    other_numbering = [
        support_records.record(
            labels=["dog"], label_indices=[0], frames=[support_records.jpeg(brightness_frame(1))]
        ),
        support_records.record(
            labels=["gnu"], label_indices=[1], frames=[support_records.jpeg(brightness_frame(2))]
        ),
    ]
    index_only = support_records.sequence_example(
        label_indices=[2], frames=[support_records.jpeg(brightness_frame(3))]
    )
    del index_only.context.feature["clip/label/text"]
    pattern = write_records(tmp_path, "texts", [*other_numbering, index_only.SerializeToString()])
    ds = input_pipeline.make_dataset(
        pattern, IMAGE_TASK, INPUTS, training=False, batch_size=3, vocabulary=vocabulary
    )
    _, labels = first_batch(ds)
    assert np.argmax(labels.numpy(), axis=1).tolist() == [1, 4, 2]
    # Without the vocabulary the written numbering is taken as it is.
    ds = input_pipeline.make_dataset(pattern, IMAGE_TASK, INPUTS, training=False, batch_size=3)
    assert np.argmax(first_batch(ds)[1].numpy(), axis=1).tolist() == [0, 1, 2]

    unknown = write_records(
        tmp_path,
        "unknown",
        [
            support_records.record(
                labels=["yak"],
                label_indices=[0],
                frames=[support_records.jpeg(brightness_frame(1))],
                filename="yak.mp4",
            )
        ],
    )
    ds = input_pipeline.make_dataset(
        unknown, IMAGE_TASK, INPUTS, training=False, batch_size=1, vocabulary=vocabulary
    )
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"(?s)clip/label/text: not in the task vocabulary.*yak.*yak\.mp4",
    ):
        first_batch(ds)


def _without_sample_rate(waveform, filename: str) -> bytes:
    example = support_records.sequence_example(
        label_indices=[0], waveform=waveform, filename=filename
    )
    del example.context.feature["audio/sample_rate"]
    return example.SerializeToString()


def test_sample_rate_from_the_record_else_the_task_else_an_error(tmp_path):
    rate = 3 * INPUTS.audio_sample_rate  # 48 kHz audio read as 16 kHz would be 3x too long
    wave = tone(500.0, 0.8, rate)
    with_rate = write_records(
        tmp_path, "rated", [make_record((0,), waveform=wave, sample_rate=rate)]
    )
    without = write_records(tmp_path, "unrated", [_without_sample_rate(wave, "norate.wav")])

    def first(pattern, task):
        ds = input_pipeline.make_dataset(pattern, task, INPUTS, training=False, batch_size=1)
        return first_batch(ds)[0]["audio"].numpy()

    expected = first(with_rate, AUDIO_TASK)
    configured = dataclasses.replace(
        AUDIO_TASK, data=dataclasses.replace(AUDIO_TASK.data, sample_rate=rate)
    )
    np.testing.assert_allclose(first(without, configured), expected, rtol=1e-6, atol=1e-5)
    # The record's own rate wins over the task's.
    other = dataclasses.replace(
        AUDIO_TASK, data=dataclasses.replace(AUDIO_TASK.data, sample_rate=8000)
    )
    np.testing.assert_allclose(first(with_rate, other), expected, rtol=1e-6, atol=1e-5)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"(?s)audio/sample_rate: the record has none and "
        r"tasks\.sounds\.data\.sample_rate is not set.*norate\.wav",
    ):
        first(without, AUDIO_TASK)


def test_non_finite_samples_fail_naming_the_record(tmp_path):
    wave = tone(500.0, 0.8, INPUTS.audio_sample_rate)
    wave[10] = np.nan
    pattern = write_records(tmp_path, "nan", [make_record((0,), waveform=wave, filename="nan.wav")])
    ds = input_pipeline.make_dataset(pattern, AUDIO_TASK, INPUTS, training=False, batch_size=1)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"(?s)WAVEFORM/feature/floats: NaN or infinite samples in record.*nan\.wav",
    ):
        first_batch(ds)


def test_bad_labels_fail_naming_the_record(tmp_path):
    out_of_range = write_records(tmp_path, "oor", [record_for("image", 0, labels=(7,))])
    ds = input_pipeline.make_dataset(out_of_range, IMAGE_TASK, INPUTS, training=False, batch_size=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="img0.jpg"):
        first_batch(ds)
    two_labels = write_records(tmp_path, "two", [record_for("image", 0, labels=(1, 2))])
    ds = input_pipeline.make_dataset(two_labels, IMAGE_TASK, INPUTS, training=False, batch_size=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="exactly one label"):
        first_batch(ds)


def test_empty_media_and_bad_arguments_fail_clearly(tmp_path):
    no_frames = write_records(tmp_path, "noframes", [make_record((0,), filename="empty.mp4")])
    ds = input_pipeline.make_dataset(no_frames, VIDEO_TASK, INPUTS, training=False, batch_size=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty.mp4"):
        first_batch(ds)
    ds = input_pipeline.make_dataset(no_frames, AUDIO_TASK, INPUTS, training=False, batch_size=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="no audio samples"):
        first_batch(ds)
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        input_pipeline.make_dataset(
            str(tmp_path / "nothing-here-*.gz"), IMAGE_TASK, INPUTS, training=False, batch_size=1
        )
    with pytest.raises(ValueError, match="num_clips"):
        input_pipeline.make_dataset(
            no_frames, IMAGE_TASK, INPUTS, training=False, batch_size=1, num_clips=2
        )
    # Impossible `inputs` values (a clip shorter than one window, ...) are refused when the
    # config loads: tests/foundation/test_config_rules.py.


def _take(ds, n):
    return [(f, lab) for f, lab in ds.take(n).as_numpy_iterator()]


def _same(a, b):
    return all(
        np.array_equal(x[0][k], y[0][k]) and np.array_equal(x[1], y[1])
        for x, y in zip(a, b, strict=True)
        for k in x[0]
    )


@pytest.mark.parametrize("modality", ["video", "audio"])
def test_eval_is_deterministic_and_training_reproducible_from_its_seed(patterns, modality):
    task = TASKS[modality]
    inputs = dataclasses.replace(INPUTS, spec_augment=True)

    def run(training, seed=0):
        ds = input_pipeline.make_dataset(
            patterns[modality], task, inputs, training=training, batch_size=2, seed=seed
        )
        return _take(ds, 3)

    assert _same(run(False), run(False))
    assert _same(run(True, seed=1), run(True, seed=1))
    assert not _same(run(True, seed=1), run(True, seed=2))
    assert not _same(run(True, seed=1), run(False))


# --------------------------------------------------------------------------------------------
# Temporal sampling


def test_eval_clips_pick_the_expected_frames(tmp_path):
    # 12 frames, 4 per clip every 2nd: a clip spans 7 frames, so starts are 0..5.
    pattern = write_records(tmp_path, "vid", [record_for("video", 0)])
    ds = input_pipeline.make_dataset(pattern, VIDEO_TASK, INPUTS, training=False, batch_size=1)
    clip = first_batch(ds)[0]["video"].numpy()[0]
    assert [frame_index(f) for f in clip] == [2, 4, 6, 8]  # the central clip starts at 5 // 2

    ds = input_pipeline.make_dataset(
        pattern, VIDEO_TASK, INPUTS, training=False, batch_size=1, num_clips=3
    )
    clips = first_batch(ds)[0]["video"].numpy()[0]
    assert clips.shape == (3, 4, 16, 16, 3)
    assert [[frame_index(f) for f in c] for c in clips] == [
        [0, 2, 4, 6],
        [2, 4, 6, 8],
        [5, 7, 9, 11],
    ]  # starts linspace(0, 5, 3) = 0, 2.5 -> 2 (round half to even), 5


def test_training_clips_are_strided_runs_at_random_starts(tmp_path):
    pattern = write_records(tmp_path, "vid", [record_for("video", 0)])
    inputs = dataclasses.replace(INPUTS, random_flip=False)
    ds = input_pipeline.make_dataset(
        pattern, VIDEO_TASK, inputs, training=True, batch_size=1, seed=3
    )
    starts = set()
    for features_, _ in ds.take(20).as_numpy_iterator():
        indices = [frame_index(f) for f in features_["video"][0]]
        assert indices == list(range(indices[0], indices[0] + 8, 2))
        starts.add(indices[0])
    assert starts <= set(range(6)) and len(starts) > 2


def test_short_clips_are_padded_not_dropped(tmp_path):
    # 3 frames for a 7-frame span: the clip loops over the video (DMVR's padding).
    short = make_record((1,), frames=[brightness_frame(t) for t in range(3)], filename="s.mp4")
    pattern = write_records(tmp_path, "short", [short])
    ds = input_pipeline.make_dataset(pattern, VIDEO_TASK, INPUTS, training=False, batch_size=1)
    clip = first_batch(ds)[0]["video"].numpy()[0]
    assert [frame_index(f) for f in clip] == [0, 2, 1, 0]

    # 0.1 s of sound for a 0.5 s clip: padded with silence at the end.
    wave = tone(1000, 0.1, INPUTS.audio_sample_rate)
    clips = audio.sample_waveform_clips(tf.constant(wave), 4000, 1, training=False)
    np.testing.assert_array_equal(clips.numpy()[0, :800], wave)
    assert not np.any(clips.numpy()[0, 800:])
    pattern = write_records(tmp_path, "shortaudio", [make_record((0,), waveform=wave)])
    ds = input_pipeline.make_dataset(pattern, AUDIO_TASK, INPUTS, training=False, batch_size=1)
    assert first_batch(ds)[0]["audio"].shape == (1, 48, 16, 1)


def test_audio_clips_follow_the_same_sampling_rule():
    wave = tf.range(1000, dtype=tf.float32)
    central = audio.sample_waveform_clips(wave, 100, 1, training=False).numpy()
    np.testing.assert_array_equal(central[0], np.arange(450, 550))
    spaced = audio.sample_waveform_clips(wave, 100, 3, training=False).numpy()
    assert [row[0] for row in spaced] == [0, 450, 900]
    random = audio.sample_waveform_clips(wave, 100, 2, training=True, seed=tf.constant([1, 2]))
    for row in random.numpy():
        np.testing.assert_array_equal(row, np.arange(row[0], row[0] + 100))


# --------------------------------------------------------------------------------------------
# Spatial processing


def test_central_crop_takes_the_middle_of_the_shorter_side():
    frame = np.zeros([1, 30, 50, 3], np.uint8)
    frame[:, :, 10:40] = 255  # the central 30x30 square is white, the sides black
    begin, size = video.central_crop_box(tf.shape(frame)[1:], 1.0)
    out = video.crop_and_resize(frame, begin, size, 10).numpy()
    np.testing.assert_allclose(out, 255.0, atol=1e-3)


def test_random_crops_cover_the_configured_area_range():
    inputs = dataclasses.replace(INPUTS, crop_min_area=0.3, crop_max_area=0.6)
    for i in range(20):
        _, size = video.random_crop_box(tf.constant([100, 100, 3]), inputs, tf.constant([i, 0]))
        area = float(size[0] * size[1]) / 1e4
        assert 0.28 <= area <= 0.62


def test_flip_mirrors_the_whole_clip_together():
    clip = tf.reshape(tf.range(2 * 1 * 3 * 1, dtype=tf.float32), [2, 1, 3, 1])
    outcomes = set()
    for i in range(16):
        out = video.random_flip(clip, tf.constant([i, 7])).numpy()
        flipped = np.array_equal(out, clip.numpy()[:, :, ::-1])
        assert flipped or np.array_equal(out, clip.numpy())
        outcomes.add(flipped)
    assert outcomes == {True, False}


# --------------------------------------------------------------------------------------------
# Audio


@pytest.mark.parametrize("freq", [440.0, 1000.0, 2500.0])
def test_log_mel_of_a_pure_tone_peaks_in_the_right_bin(freq):
    inputs = Inputs(audio_seconds=0.5, audio_sample_rate=16000, num_mel_bins=40)
    spec = audio.log_mel_spectrogram(tf.constant(tone(freq, 0.5, 16000)), inputs).numpy()
    low, high = audio.mel_range(inputs)

    def mel(hz):
        return 1127.0 * np.log1p(np.asarray(hz) / 700.0)

    centers = np.linspace(mel(low), mel(high), inputs.num_mel_bins + 2)[1:-1]
    expected = int(np.argmin(np.abs(centers - mel(freq))))
    assert np.all(np.argmax(spec, axis=-1) == expected)


def test_resampling_keeps_the_pitch_and_equal_rates_exact():
    wave = tone(1000, 0.5, 8000)
    same = audio.resample(tf.constant(wave), tf.constant(8000), 8000).numpy()
    np.testing.assert_array_equal(same, wave)
    up = audio.resample(tf.constant(wave), tf.constant(8000), 16000).numpy()
    assert up.shape == (8000,)
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) * 16000 / len(up) - 1000) < 5


def test_audio_records_at_another_rate_are_resampled(tmp_path):
    wave16k = tone(1000, 0.8, 16000)
    wave8k = tone(1000, 0.8, 8000)
    pattern = write_records(
        tmp_path,
        "rates",
        [
            make_record((0,), waveform=wave16k, sample_rate=16000),
            make_record((0,), waveform=wave8k),
        ],
    )
    ds = input_pipeline.make_dataset(pattern, AUDIO_TASK, INPUTS, training=False, batch_size=2)
    spec = first_batch(ds)[0]["audio"].numpy()[..., 0]
    assert np.argmax(spec[0].mean(0)) == np.argmax(spec[1].mean(0))


def test_normalisation_uses_the_given_statistics(patterns):
    def batch(**kwargs):
        ds = input_pipeline.make_dataset(
            patterns["audio"], AUDIO_TASK, INPUTS, training=False, batch_size=2, **kwargs
        )
        return first_batch(ds)[0]["audio"].numpy()

    raw = batch()
    np.testing.assert_allclose(batch(audio_mean=-3.0, audio_std=2.0), (raw + 3.0) / 2.0, atol=1e-5)


def test_spec_augment_masks_bands_of_bounded_width():
    inputs = dataclasses.replace(
        INPUTS, freq_masks=1, freq_mask_bins=4, time_masks=2, time_mask_frames=6
    )
    ones = tf.ones([48, 16, 1])
    masked_any = False
    for i in range(10):
        out = audio.spec_augment(ones, inputs, tf.constant([i, 3])).numpy()[..., 0]
        zero_rows = np.all(out == 0, axis=1)  # time masks blank whole frames
        zero_cols = np.all(out == 0, axis=0)  # frequency masks blank whole bins
        assert zero_cols.sum() <= 4 and zero_rows.sum() <= 12
        # Everything zeroed lies in a masked frame or bin; the rest is untouched.
        assert np.all((out == 0) == (zero_rows[:, None] | zero_cols[None, :]))
        masked_any |= bool(zero_rows.any() or zero_cols.any())
    assert masked_any


def test_mixup_mixes_labels_with_the_same_weights_as_inputs():
    x = tf.constant(np.arange(4 * 3, dtype=np.float32).reshape(4, 3) + 1)
    labels = tf.one_hot([0, 1, 2, 3], 4)
    mixed, mixed_labels = mixup({"image": x}, labels, 0.4, tf.constant([5, 6]))
    mixed, mixed_labels = mixed["image"].numpy(), mixed_labels.numpy()
    # labels[i] = lam_i * e_i + (1 - lam_i) * e_{3-i}: read lam_i off the labels.
    lam = mixed_labels[np.arange(4), np.arange(4)]
    expected = lam[:, None] * x.numpy() + (1 - lam[:, None]) * x.numpy()[::-1]
    np.testing.assert_allclose(mixed, expected, rtol=1e-5)
    np.testing.assert_allclose(mixed_labels.sum(1), 1.0, rtol=1e-5)
    assert np.all((lam >= 0) & (lam <= 1)) and not np.allclose(lam, 1.0)


def test_training_dataset_applies_mixup(patterns):
    inputs = dataclasses.replace(INPUTS, mixup_alpha=0.5)
    ds = input_pipeline.make_dataset(
        patterns["image"], IMAGE_TASK, inputs, training=True, batch_size=4
    )
    _, labels = first_batch(ds)
    labels = labels.numpy()
    np.testing.assert_allclose(labels.sum(1), 1.0, rtol=1e-5)
    assert np.any((labels > 0) & (labels < 1))


# --------------------------------------------------------------------------------------------
# Serving: same code path as evaluation


@pytest.mark.parametrize("modality", ["image", "video", "audio"])
def test_preprocess_serialized_equals_the_eval_dataset(patterns, modality):
    task = TASKS[modality]
    num_clips = 1 if modality == "image" else 2
    ds = input_pipeline.make_dataset(
        patterns[modality],
        task,
        INPUTS,
        training=False,
        batch_size=6,
        num_clips=num_clips,
        audio_mean=-2.0,
        audio_std=3.0,
    )
    expected = first_batch(ds)[0][modality].numpy()
    records = [
        r.numpy()
        for r in tf.data.TFRecordDataset(
            tf.io.gfile.glob(patterns[modality]), compression_type="GZIP"
        )
    ]
    got = input_pipeline.preprocess_serialized(
        tf.constant(records), task, INPUTS, num_clips=num_clips, audio_mean=-2.0, audio_std=3.0
    )[modality].numpy()
    assert_same_features(got, expected)


def test_preprocessing_exports_in_a_saved_model(patterns, tmp_path):
    records = [
        r.numpy()
        for r in tf.data.TFRecordDataset(
            tf.io.gfile.glob(patterns["video"]), compression_type="GZIP"
        )
    ]
    expected = first_batch(
        input_pipeline.make_dataset(
            patterns["video"], VIDEO_TASK, INPUTS, training=False, batch_size=6
        )
    )[0]["video"].numpy()

    module = tf.Module()
    module.serialized = tf.function(
        lambda s: input_pipeline.preprocess_serialized(s, VIDEO_TASK, INPUTS),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    module.raw_audio = tf.function(
        lambda w: input_pipeline.preprocess_raw(w, AUDIO_TASK, INPUTS, audio_mean=1.0),
        input_signature=[tf.TensorSpec([None, None], tf.float32)],
    )
    tf.saved_model.save(module, str(tmp_path / "model"))
    loaded = tf.saved_model.load(str(tmp_path / "model"))
    assert_same_features(loaded.serialized(tf.constant(records))["video"].numpy(), expected)
    assert_same_features(loaded.serialized(tf.constant(records[:1]))["video"].numpy(), expected[:1])
    waves = tf.constant(np.stack([tone(500, 0.6, 8000), tone(900, 0.6, 8000)]))
    assert_same_features(
        loaded.raw_audio(waves)["audio"].numpy(),
        input_pipeline.preprocess_raw(waves, AUDIO_TASK, INPUTS, audio_mean=1.0)["audio"].numpy(),
    )


def test_preprocess_raw_equals_preprocess_serialized_on_the_same_pixels():
    frames = [np.random.default_rng(t).integers(0, 256, [18, 26, 3], np.uint8) for t in range(9)]
    record = make_record((0,), frames=frames)
    decoded = np.stack(
        [tf.io.decode_jpeg(tf.io.encode_jpeg(f, quality=95)).numpy() for f in frames]
    )
    from_record = input_pipeline.preprocess_serialized(tf.constant([record]), VIDEO_TASK, INPUTS)
    from_raw = input_pipeline.preprocess_raw(tf.constant(decoded[None]), VIDEO_TASK, INPUTS)
    assert_same_features(from_raw["video"].numpy(), from_record["video"].numpy())

    image_record = make_record((0,), frames=frames[:1])
    from_record = input_pipeline.preprocess_serialized(
        tf.constant([image_record]), IMAGE_TASK, INPUTS
    )
    from_raw = input_pipeline.preprocess_raw(tf.constant(decoded[:1]), IMAGE_TASK, INPUTS)
    assert_same_features(from_raw["image"].numpy(), from_record["image"].numpy())

    wave = tone(700, 0.7, 16000)
    from_record = input_pipeline.preprocess_serialized(
        tf.constant([make_record((0,), waveform=wave, sample_rate=16000)]), AUDIO_TASK, INPUTS
    )
    from_raw = input_pipeline.preprocess_raw(
        tf.constant(wave[None]), AUDIO_TASK, INPUTS, sample_rate=16000
    )
    assert_same_features(from_raw["audio"].numpy(), from_record["audio"].numpy())

    with pytest.raises(ValueError, match="uint8 videos"):
        input_pipeline.preprocess_raw(tf.zeros([1, 4, 8, 8, 3]), VIDEO_TASK, INPUTS)


# --------------------------------------------------------------------------------------------
# Sharding for distribute_datasets_from_function


def _ids(ds):
    """Record ids (the label of the single-label image records) in a finite eval dataset."""
    return [int(np.argmax(lab)) for _, labels in ds.as_numpy_iterator() for lab in labels]


@pytest.mark.parametrize("num_files", [1, 4])
def test_input_contexts_split_records_without_overlap(tmp_path, num_files):
    task = dataclasses.replace(IMAGE_TASK, num_classes=8)
    records = [record_for("image", i, labels=(i,)) for i in range(8)]
    pattern = write_records(tmp_path, "shards", records, num_files=num_files)
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2
        )
        ds = input_pipeline.make_dataset(
            pattern, task, INPUTS, training=False, batch_size=1, input_context=context
        )
        seen.append(_ids(ds))
    assert len(seen[0]) == len(seen[1]) == 4
    assert sorted(seen[0] + seen[1]) == list(range(8))

    # Training shards are disjoint too (one epoch each, shuffled).
    train_seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(2, pipeline_id, 2)
        ds = input_pipeline.make_dataset(
            pattern,
            task,
            INPUTS,
            training=True,
            batch_size=1,
            input_context=context,
            repeat=False,
        )
        train_seen.append(_ids(ds))
    assert sorted(train_seen[0] + train_seen[1]) == list(range(8))
