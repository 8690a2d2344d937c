"""The dmvr_records layout: existing DMVR TFRecords (as DMVR's generator lays them out: other
label numbering, no sample rate, NaNs, uncompressed or gzip under any name, sharded) become a
task's records, validated one by one with the quarantine reasons of raw media."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components.media_example_gen import beam_ingest, sources
from core import features
from core.config import DataSource, IngestConfig, Ingestion, TaskData
from media import dmvr, errors
from tests.support import records as support_records

RATE = 8000


def generator_record(label: str, index: int, name: str, waveform=None, rate: int | None = RATE):
    """A record as DMVR's generate_from_file.py writes it (tf.train protos): label index and
    text, the filename, one JPEG per Feature, the whole waveform in one Feature; no task and,
    unless given, no sample rate (its generator writes none)."""
    seq = tf.train.SequenceExample()
    seq.context.feature["clip/label/index"].int64_list.value[:] = (index,)
    seq.context.feature["clip/label/text"].bytes_list.value[:] = (label.encode(),)
    seq.context.feature["video/filename"].bytes_list.value[:] = (name.encode(),)
    frame = support_records.jpeg(np.full((8, 8, 3), 10 * index, np.uint8))
    for _ in range(3):
        seq.feature_lists.feature_list["image/encoded"].feature.add().bytes_list.value[:] = [frame]
    if waveform is None:
        waveform = support_records.sine(200.0 * (index + 1), 0.5, RATE)
    wave = seq.feature_lists.feature_list["WAVEFORM/feature/floats"].feature.add()
    wave.float_list.value[:] = np.asarray(waveform, np.float32).tolist()
    if rate:
        seq.context.feature["audio/sample_rate"].int64_list.value[:] = (rate,)
    return seq.SerializeToString()


def no_frames(label: str, index: int, name: str) -> bytes:
    seq = tf.train.SequenceExample.FromString(generator_record(label, index, name))
    del seq.feature_lists.feature_list["image/encoded"]
    return seq.SerializeToString()


def write_record_set(root: str) -> None:
    """Two uncompressed train shards without a suffix, one gzip eval shard without `.gz`."""
    nan = support_records.sine(300.0, 0.5, RATE)
    nan[5] = np.nan
    train = [
        generator_record("dog", 7, "a.mp4"),  # another tool's numbering: dog is 7 there
        generator_record("cat", 3, "b.mp4"),
        generator_record("dog", 7, "c.mp4", rate=None),  # no sample rate
        generator_record("cat", 3, "d.mp4", waveform=nan),  # NaN samples
        b"\x08\x96\x01 not a sequence example",
        no_frames("dog", 7, "e.mp4"),
        generator_record("cat", 3, "f.mp4"),
    ]
    os.makedirs(root, exist_ok=True)
    support_records.write_tfrecords(f"{root}/train-00000-of-00002", train[0::2], "none")
    support_records.write_tfrecords(f"{root}/train-00001-of-00002", train[1::2], "none")
    evaluation = [generator_record("dog", 0, "g.mp4"), generator_record("eel", 1, "h.mp4")]
    support_records.write_tfrecords(f"{root}/eval-00000-of-00001", evaluation, "gzip")


def config(sample_rate: int = 0) -> IngestConfig:
    data = DataSource(
        root="set", layout="dmvr_records", train="train-*", eval="eval-*", sample_rate=sample_rate
    )
    return IngestConfig(
        tasks=[TaskData(name="clips", modality="video", data=data)],
        ingestion=Ingestion(sample_rate=RATE, max_bad_fraction=1.0),
    )


def test_listing_finds_the_shards_and_the_train_vocabulary(tmp_path):
    write_record_set(str(tmp_path / "set"))
    listing = sources.list_task_sources(config().tasks[0], str(tmp_path), 0.2)
    assert listing.vocabulary == ["cat", "dog"]
    assert [(os.path.basename(c.path), c.split) for c in listing.clips] == [
        ("train-00000-of-00002", "train"),
        ("train-00001-of-00002", "train"),
        ("eval-00000-of-00001", "eval"),
    ]
    with pytest.raises(sources.SourceError, match="no record files match 'val-\\*'"):
        task = config().tasks[0]
        task.data.eval = "val-*"
        sources.list_task_sources(task, str(tmp_path), 0.2)


def test_rekey_keeps_the_record_and_maps_labels_by_text():
    rules = dmvr.RekeyRules("clips", "video", ("cat", "dog"), default_sample_rate=0)
    out = dmvr.parse_sequence_example(
        dmvr.rekey_record(generator_record("dog", 7, "a.mp4"), rules, "f#0")
    )
    assert (out.task, out.labels, out.label_indices, out.filename) == (
        "clips",
        ("dog",),
        (1,),
        "a.mp4",
    )
    assert len(out.frames) == 3 and out.sample_rate == RATE and len(out.waveform) == RATE // 2
    with pytest.raises(errors.MediaError, match="set tasks.clips.data.sample_rate") as info:
        dmvr.rekey_record(generator_record("dog", 7, "a.mp4", rate=None), rules, "f#0")
    assert info.value.reason == errors.NO_SAMPLE_RATE and info.value.path == "f#0"
    filled = dmvr.RekeyRules("clips", "video", ("cat", "dog"), default_sample_rate=48000)
    out = dmvr.parse_sequence_example(
        dmvr.rekey_record(generator_record("dog", 7, "a.mp4", rate=None), filled, "f#0")
    )
    assert out.sample_rate == 48000


@pytest.mark.parametrize("sample_rate", [0, RATE])
def test_a_record_set_becomes_the_tasks_records(tmp_path, sample_rate):
    write_record_set(str(tmp_path / "set"))
    out, quarantine = str(tmp_path / "out"), str(tmp_path / "q")
    summary = beam_ingest.ingest(
        config(sample_rate), out, quarantine, data_root=str(tmp_path), progress=False
    )
    with open(features.vocabulary_path(out, "clips")) as f:
        assert f.read().split() == ["cat", "dog"]

    def read(split):
        files = tf.io.gfile.glob(features.task_file_pattern(out, split, "clips"))
        # DMVR's default reading: no compression argument.
        return sorted(
            (dmvr.parse_sequence_example(r.numpy()) for r in tf.data.TFRecordDataset(files)),
            key=lambda c: c.filename,
        )

    rate_fixed = ["c.mp4"] if sample_rate else []
    train = read(features.TRAIN)
    assert [c.filename for c in train] == sorted(["a.mp4", "b.mp4", "f.mp4", *rate_fixed])
    for clip in train:
        assert clip.task == "clips"
        assert clip.label_indices == (["cat", "dog"].index(clip.labels[0]),)
        assert clip.sample_rate == RATE and np.isfinite(clip.waveform).all()
    assert [(c.filename, c.label_indices) for c in read(features.EVAL)] == [("g.mp4", (1,))]

    with open(os.path.join(quarantine, beam_ingest.QUARANTINE_FILE)) as f:
        bad = {(os.path.basename(r["file"]), r["reason"]) for r in map(json.loads, f)}
    expected_bad = {
        ("train-00001-of-00002#1", errors.NON_FINITE),
        ("train-00000-of-00002#2", errors.BAD_RECORD),
        ("train-00001-of-00002#2", errors.NO_FRAMES),
        ("eval-00000-of-00001#1", errors.UNKNOWN_LABEL),  # "eel" never occurs in train
    }
    if not sample_rate:
        expected_bad.add(("train-00000-of-00002#1", errors.NO_SAMPLE_RATE))
    assert bad == expected_bad
    # Every record is an input; the shards are not.
    assert summary.inputs == 9 and summary.bad_inputs == len(expected_bad)
    assert summary.written[("clips", features.TRAIN)] == len(train)


def test_an_unlabelled_task_takes_records_without_their_labels(tmp_path):
    write_record_set(str(tmp_path / "set"))
    task = config().tasks[0]
    task.labelled = False
    listing = sources.list_task_sources(task, str(tmp_path), 0.2)
    assert listing.vocabulary == [] and not listing.labelled
    rules = dmvr.RekeyRules("clips", "video", (), default_sample_rate=0, labelled=False)
    # "eel" never occurs in train: for a labelled task that is unknown_label; here it is dropped.
    serialized = dmvr.rekey_record(generator_record("eel", 1, "h.mp4"), rules, "f#0")
    out = dmvr.parse_sequence_example(serialized)
    assert (out.task, out.labels, out.label_indices, len(out.frames)) == ("clips", (), (), 3)
    context = tf.train.SequenceExample.FromString(serialized).context.feature
    assert features.LABEL_TEXT not in context and features.LABEL_INDEX not in context
    with pytest.raises(errors.MediaError) as info:  # the other rules still hold
        dmvr.rekey_record(no_frames("dog", 7, "e.mp4"), rules, "f#0")
    assert info.value.reason == errors.NO_FRAMES
