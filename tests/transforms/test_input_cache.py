"""The training input pipeline's decode cache (training.cache_decoded): the same examples as
decoding every epoch, a new order every epoch, fresh augmentation every step."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

import core.env  # noqa: F401
from core import config as config_lib
from tests.support import inputs as support_inputs
from tests.support import records as support_records
from transforms import audio, input_pipeline

DEMO = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "demo.yaml")
NUM_RECORDS = 8
INPUTS = support_inputs.tiny_inputs(shuffle_buffer=4)
# Augmentations off: the whole frame (no box of area 1 and aspect 1 fits a non-square frame,
# so the crop falls back to the whole frame), no flip; clips as long as the records, so the
# random clip and audio offsets can only be 0.
NO_AUGMENTATION = dataclasses.replace(
    INPUTS, crop_min_area=1.0, crop_max_area=1.0, crop_max_aspect=1.0, random_flip=False
)
TASKS = support_inputs.modality_tasks(NUM_RECORDS, NUM_RECORDS, NUM_RECORDS)


def record(modality: str, i: int, length: float) -> bytes:
    """Record i, label i (so examples can be matched across orders): `length` frames of video
    or seconds of audio."""
    rng = np.random.default_rng(i)
    fields = {"label_indices": [i], "filename": f"{modality}{i}"}
    if modality == "audio":
        wave = support_records.sine(200 + 90 * i, length, INPUTS.audio_sample_rate)
        wave = wave + 0.05 * rng.standard_normal(wave.shape).astype(np.float32)
        fields.update(waveform=wave, sample_rate=INPUTS.audio_sample_rate)
    else:
        count = 1 if modality == "image" else int(length)
        fields["frames"] = support_records.random_jpegs(rng, count, 20, 28)
    return support_records.record(**fields)


def write(folder, modality: str, length: float, num_files: int = 2) -> str:
    serialized = [record(modality, i, length) for i in range(NUM_RECORDS)]
    return support_records.write_shards(str(folder), TASKS[modality].name, serialized, num_files)


def epochs(pattern, modality, inputs, cache, count=2, **kwargs):
    """`count` epochs of one-example batches: (label order, features by label) per epoch."""
    ds = input_pipeline.make_dataset(
        pattern,
        TASKS[modality],
        inputs,
        training=True,
        batch_size=1,
        seed=3,
        cache=cache,
        **kwargs,
    )
    iterator = iter(ds)
    result = []
    for _ in range(count):
        by_label = {}
        for _ in range(NUM_RECORDS):
            features, labels = next(iterator)
            by_label[int(np.argmax(labels[0]))] = features[modality][0].numpy()
        result.append(by_label)
    return result


# Records exactly one clip long: video frames (num_frames - 1) * stride + 1, audio 0.5 s.
CLIP_LENGTH = {"image": 1, "video": 7, "audio": 0.5}


@pytest.mark.parametrize("cache", ["memory", "file"])
@pytest.mark.parametrize("modality", ["image", "video", "audio"])
def test_cached_examples_equal_decoding_every_epoch(tmp_path, modality, cache):
    pattern = write(tmp_path / "records", modality, CLIP_LENGTH[modality])
    reference = epochs(pattern, modality, NO_AUGMENTATION, "off", count=1)[0]
    cached = epochs(pattern, modality, NO_AUGMENTATION, cache, cache_dir=str(tmp_path / "cache"))
    for epoch in cached:
        assert sorted(epoch) == list(range(NUM_RECORDS))  # every record once per epoch
        for label, features in epoch.items():
            np.testing.assert_allclose(features, reference[label], rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("cache", ["memory", "file"])
def test_cached_records_are_reshuffled_and_augmented_anew_every_epoch(tmp_path, cache):
    pattern = write(tmp_path / "records", "video", 12, num_files=4)
    ds = input_pipeline.make_dataset(
        pattern,
        TASKS["video"],
        INPUTS,
        training=True,
        batch_size=NUM_RECORDS,
        seed=3,
        cache=cache,
        cache_dir=str(tmp_path / "cache"),
    )
    iterator = iter(ds)
    orders, clips = [], []
    for _ in range(4):
        features, labels = next(iterator)
        orders.append(tuple(np.argmax(labels.numpy(), axis=1)))
        clips.append(features["video"].numpy()[np.argsort(orders[-1])])
    assert all(sorted(order) == list(range(NUM_RECORDS)) for order in orders)
    assert len(set(orders)) > 1, "the same record order every epoch"
    assert not np.allclose(clips[0], clips[1]), "the same crops and clips every epoch"


def test_file_cache_is_written_once_and_read_by_a_new_pipeline(tmp_path):
    pattern = write(tmp_path / "records", "audio", 1.2)
    cache_dir = str(tmp_path / "cache")
    first = epochs(pattern, "audio", INPUTS, "file", count=1, cache_dir=cache_dir)
    written = sorted(os.listdir(cache_dir))
    assert [name for name in written if name.endswith(".index")], written
    again = epochs(pattern, "audio", INPUTS, "file", count=1, cache_dir=cache_dir)
    assert sorted(os.listdir(cache_dir)) == written  # read, not rewritten
    for label in first[0]:
        np.testing.assert_array_equal(again[0][label], first[0][label])


def test_cached_audio_clip_is_the_log_mel_of_its_hop_aligned_window():
    rate, hop = INPUTS.audio_sample_rate, 80  # 10 ms at 8 kHz
    clip = audio.clip_samples(INPUTS)
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, int(1.3 * rate))  # no two frames alike
    wave = tf.constant(noise, tf.float32)
    whole = audio.whole_clip_log_mel(wave, rate, INPUTS)
    frames = audio.num_spectrogram_frames(INPUTS)
    starts = set()
    crops = [whole[k : k + frames] for k in range(whole.shape[0] - frames + 1)]
    for i in range(40):
        seed = tf.constant([7, i], tf.int64)
        got = audio.spectrogram_clip_features(whole, INPUTS, 1, training=True, seed=seed)[0]
        (start,) = [k for k, crop in enumerate(crops) if np.array_equal(got[..., 0], crop)]
        window = wave[start * hop : start * hop + clip]
        expected = audio.waveform_features(window, rate, INPUTS, 1, training=False)[0]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
        starts.add(start)
    # Offsets anywhere in the clip, up to the last whole window.
    assert max(starts) == whole.shape[0] - frames and min(starts) < 5 and len(starts) > 10


def test_auto_caches_in_memory_what_fits_and_refuses_unknown_modes(tmp_path):
    pattern = write(tmp_path, "image", 1)
    files = sorted(tf.io.gfile.glob(pattern))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    size = sum(os.path.getsize(path) for path in files)

    def decode(serialized):
        return input_pipeline.decoded_record(serialized, TASKS["image"], INPUTS, "image")

    mode, count = input_pipeline.choose_cache("auto", records, decode, file_bytes=size, max_mb=1)
    assert (mode, count) == ("memory", NUM_RECORDS)
    # 8 decoded 20x28 frames are 13 KB; a budget below that (and below the files) is off.
    assert input_pipeline.choose_cache("auto", records, decode, file_bytes=size, max_mb=0)[0] == (
        "off"
    )
    assert input_pipeline.choose_cache("off", records, decode, file_bytes=size, max_mb=1) == (
        "off",
        None,
    )
    with pytest.raises(ValueError, match="training.cache_decoded"):
        input_pipeline.choose_cache("disk", records, decode, file_bytes=size, max_mb=1)


@pytest.mark.parametrize(
    "override, key",
    [
        ("training.cache_decoded=disk", "training.cache_decoded"),
        ("training.cache_max_mb=-1", "training.cache_max_mb"),
    ],
)
def test_bad_cache_settings_fail_naming_the_key(override, key):
    with pytest.raises(config_lib.ConfigError, match=key.replace(".", r"\.")):
        config_lib.load(DEMO, [override])
