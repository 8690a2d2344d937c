"""End to end: a corpus of good and bad media through the Beam pipeline (DirectRunner, several
worker processes), read back with DMVR's feature specs and checked against the sources."""

from __future__ import annotations

import dataclasses
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.media_example_gen import beam_ingest, sources
from core import features
from core.config import IngestConfig, Ingestion, ingest_config
from media import errors
from tests.support import configs
from tests.support.media import (
    write_bytes,
    write_huge_png_header,
    write_png,
    write_video,
    write_wav,
)

ING = Ingestion(
    fps=8,
    short_side=36,
    clip_seconds=2.0,
    sample_rate=16000,
    eval_fraction=0.3,
    max_bad_fraction=0.1,
    max_resolution=100,  # the 128x96 video is "absurdly large" here, cheaply
)
MULTI_PROCESS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]

CONTEXT = {
    features.LABEL_INDEX: tf.io.VarLenFeature(tf.int64),
    features.LABEL_TEXT: tf.io.VarLenFeature(tf.string),
    features.FILENAME: tf.io.FixedLenFeature([], tf.string),
    features.START_US: tf.io.FixedLenFeature([], tf.int64),
    features.END_US: tf.io.FixedLenFeature([], tf.int64),
    features.HAS_AUDIO: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
}
SEQUENCE = {
    features.IMAGE_ENCODED: tf.io.FixedLenSequenceFeature([], tf.string),
    features.WAVEFORM: tf.io.VarLenFeature(tf.float32),
}


def make_corpus(root: str) -> dict:
    """Good and bad inputs over three tasks; returns what each should become."""
    good = open(write_video(f"{root}/motion/train/up/v0.mp4"), "rb").read()
    write_video(f"{root}/motion/train/up/v1.mp4")
    write_video(f"{root}/motion/train/up/long.mp4", seconds=5.0)  # 3 clips
    write_video(f"{root}/motion/train/down/v0.mp4")
    write_video(f"{root}/motion/train/down/v1.mp4", audio_rate=None)  # video only is fine
    write_video(f"{root}/motion/val/up/v2.mp4")
    write_video(f"{root}/motion/val/down/v2.mp4")
    write_video(f"{root}/motion/val/left/v2.mp4")  # label never seen in train
    write_bytes(f"{root}/motion/train/down/empty.mp4", b"")
    write_bytes(f"{root}/motion/train/down/truncated.mp4", good[: len(good) // 2])
    write_bytes(f"{root}/motion/train/up/notes.mp4", b"not a video at all\n" * 50)
    write_wav(f"{root}/motion/train/up/sound.wav")  # no video stream
    write_video(f"{root}/motion/train/up/big.mp4", seconds=1.0, width=128, height=96)

    write_wav(f"{root}/tones/wav/a.wav", seconds=1.0, sample_width=4)
    write_wav(f"{root}/tones/wav/b.wav", seconds=2.0, tone_hz=880)
    write_video(f"{root}/tones/wav/silent.mp4", seconds=1.0, audio_rate=None)  # no audio
    write_wav(f"{root}/outside.wav")
    with open(f"{root}/tones/train.csv", "w") as f:
        f.write(
            "video_path,start,end,label\n"
            "wav/a.wav,0,1,low\nwav/b.wav,0.5,1.5,high\nwav/b.wav,,,high\n"
            "wav/silent.mp4,0,1,low\nwav/missing.wav,0,1,low\n../../outside.wav,0,1,low\n"
            "wav/a.wav,0.8,0.2,low\n"
        )
    with open(f"{root}/tones/eval.csv", "w") as f:
        f.write("path,start,end,label\nwav/a.wav,0,1,high\nwav/b.wav,0,1,middle\n")

    for shape in ("circle", "square"):
        for i in range(4):
            write_png(f"{root}/shapes/{shape}/{i}.png", 40, 30, value=40 * i)
    write_huge_png_header(f"{root}/shapes/square/huge.png")
    return {
        "bad": {
            ("empty.mp4", errors.EMPTY_FILE),
            ("truncated.mp4", errors.CORRUPT_CONTAINER),
            ("notes.mp4", errors.NOT_MEDIA),
            ("sound.wav", errors.NO_VIDEO_STREAM),
            ("big.mp4", errors.RESOLUTION_TOO_LARGE),
            ("v2.mp4", errors.UNKNOWN_LABEL),
            ("silent.mp4", errors.NO_AUDIO_STREAM),
            ("missing.wav", errors.MISSING_FILE),
            ("outside.wav", errors.PATH_ESCAPES_ROOT),
            ("a.wav", errors.BAD_TIME_RANGE),
            ("b.wav", errors.UNKNOWN_LABEL),
            ("huge.png", errors.RESOLUTION_TOO_LARGE),
        },
    }


def corpus_config() -> IngestConfig:
    tasks = {
        "motion": configs.task(
            "video", 2, data={"root": "motion", "train": "train", "eval": "val"}
        ),
        "tones": configs.task(
            "audio",
            2,
            data={"root": "tones", "layout": "dmvr_csv", "train": "train.csv", "eval": "eval.csv"},
        ),
        "shapes": configs.task("image", 2, "shapes"),
    }
    return ingest_config(configs.build({"tasks": tasks, "ingestion": dataclasses.asdict(ING)}))


def read_split(output: str, task: str, split: str) -> list:
    pattern = features.task_file_pattern(output, split, task)
    files = tf.io.gfile.glob(pattern)
    parsed = []
    # As DMVR does, an audio reader asks only for the waveform.
    specs = {k: v for k, v in SEQUENCE.items() if task != "tones" or k == features.WAVEFORM}
    # As DMVR's default TFRecordsSource() reads them: no compression argument.
    for record in tf.data.TFRecordDataset(files):
        context, sequence = tf.io.parse_single_sequence_example(
            record, context_features=CONTEXT, sequence_features=specs
        )
        parsed.append(
            {
                "labels": [
                    b.decode() for b in tf.sparse.to_dense(context[features.LABEL_TEXT]).numpy()
                ],
                "indices": tf.sparse.to_dense(context[features.LABEL_INDEX]).numpy().tolist(),
                "file": context[features.FILENAME].numpy().decode(),
                "start_us": int(context[features.START_US]),
                "end_us": int(context[features.END_US]),
                "frames": sequence[features.IMAGE_ENCODED].numpy() if task != "tones" else [],
                "waveform": tf.sparse.to_dense(sequence[features.WAVEFORM]).numpy(),
                "has_audio": bool(context[features.HAS_AUDIO]) if task == "motion" else None,
            }
        )
    return sorted(parsed, key=lambda r: (r["file"], r["start_us"]))


@pytest.mark.e2e
def test_corpus_end_to_end_multi_processing(tmp_path):
    root, output, quarantine = str(tmp_path / "data"), str(tmp_path / "out"), str(tmp_path / "q")
    expected = make_corpus(root)
    config = corpus_config()
    summary = beam_ingest.ingest(
        config, output, quarantine, MULTI_PROCESS, data_root=root, progress=True
    )

    # Every bad input quarantined with the right reason, named in the quarantine file.
    with open(os.path.join(quarantine, beam_ingest.QUARANTINE_FILE)) as f:
        records = [json.loads(line) for line in f]
    assert {(os.path.basename(r["file"]), r["reason"]) for r in records} == expected["bad"]
    assert len(records) == len(expected["bad"]) == summary.bad_inputs
    assert summary.quarantined[errors.RESOLUTION_TOO_LARGE] == 2

    # Vocabularies: sorted, from train only, written beside the data.
    vocab = {
        t: open(features.vocabulary_path(output, t)).read().split("\n")[:-1]
        for t in ("motion", "tones", "shapes")
    }
    assert vocab == {
        "motion": ["down", "up"],
        "tones": ["high", "low"],
        "shapes": ["circle", "square"],
    }

    # motion: 2 s clips at 8 fps -> 16 frames of 48x36, 32000 samples when there is audio.
    train = read_split(output, "motion", "train")
    assert [(r["file"], r["start_us"]) for r in train] == [
        ("motion/train/down/v0.mp4", 0),
        ("motion/train/down/v1.mp4", 0),
        ("motion/train/up/long.mp4", 0),
        ("motion/train/up/long.mp4", 2_000_000),
        ("motion/train/up/long.mp4", 4_000_000),
        ("motion/train/up/v0.mp4", 0),
        ("motion/train/up/v1.mp4", 0),
    ]
    for r in train:
        label = r["file"].split("/")[2]
        assert r["labels"] == [label] and r["indices"] == [vocab["motion"].index(label)]
        seconds = (r["end_us"] - r["start_us"]) / 1e6
        assert len(r["frames"]) == round(8 * seconds)
        assert {Image.open(io.BytesIO(f)).size for f in r["frames"]} == {(48, 36)}
        # Every video record has a waveform (DMVR's audio-visual readers need one): silence,
        # marked as no audio, for the video without an audio track.
        assert r["waveform"].shape == (1, round(16000 * seconds))
        assert np.abs(r["waveform"]).max() <= 1.0
        silent = r["file"].endswith("down/v1.mp4")
        assert r["has_audio"] == (not silent)
        assert (np.abs(r["waveform"]).max() == 0.0) == silent
    evals = read_split(output, "motion", "eval")
    assert [(r["file"], r["labels"]) for r in evals] == [
        ("motion/val/down/v2.mp4", ["down"]),
        ("motion/val/up/v2.mp4", ["up"]),
    ]

    # tones: time ranges honoured, int32 WAV at the right amplitude, no frames.
    tones = read_split(output, "tones", "train")
    assert [(r["file"], r["start_us"], r["end_us"], r["waveform"].shape[1]) for r in tones] == [
        ("tones/wav/a.wav", 0, 1_000_000, 16000),
        ("tones/wav/b.wav", 0, 2_000_000, 32000),
        ("tones/wav/b.wav", 500_000, 1_500_000, 16000),
    ]
    assert 0.48 < np.abs(tones[0]["waveform"]).max() <= 0.51
    assert [r["labels"] for r in read_split(output, "tones", "eval")] == [["high"]]

    # shapes: hash split by file, one 48x36 frame each.
    shapes = read_split(output, "shapes", "train") + read_split(output, "shapes", "eval")
    assert len(shapes) == 8
    for split in features.SPLITS:
        files = {r["file"] for r in read_split(output, "shapes", split)}
        assert files == {
            f"shapes/{s}/{i}.png"
            for s in ("circle", "square")
            for i in range(4)
            if sources.hash_split(f"shapes/{s}/{i}.png", ING.eval_fraction) == split
        }
    assert all(len(r["frames"]) == 1 for r in shapes)

    # Counts in the summary match the files; the threshold decides, naming files.
    assert summary.written[("motion", "train")] == 7
    assert summary.written[("tones", "train")] == 3
    assert summary.inputs == 13 + 9 + 9
    assert summary.bad_fraction > ING.max_bad_fraction
    with pytest.raises(beam_ingest.IngestError, match=r"12 of 31 inputs.*empty\.mp4: empty_file"):
        summary.check()
    dataclasses.replace(summary, max_bad_fraction=0.5).check()  # below the threshold: passes


def test_summary_threshold_and_properties():
    summary = beam_ingest.IngestSummary(
        output_dir="out",
        quarantine_dir="q",
        max_bad_fraction=0.1,
        inputs=20,
        written={("a", "train"): 15, ("a", "eval"): 3},
        quarantined={errors.EMPTY_FILE: 2},
        first_bad=[("x.mp4", errors.EMPTY_FILE), ("y.mp4", errors.EMPTY_FILE)],
    )
    summary.check()  # 2/20 = 0.1: not more than the threshold
    assert summary.properties() == {
        "written/a/eval": 3,
        "written/a/train": 15,
        "quarantined/empty_file": 2,
        "inputs": 20,
    }
    failing = dataclasses.replace(summary, quarantined={errors.EMPTY_FILE: 3}, inputs=20)
    with pytest.raises(beam_ingest.IngestError, match=r"x\.mp4: empty_file; y\.mp4: empty_file"):
        failing.check()


def test_output_with_old_records_is_refused(tmp_path):
    root = str(tmp_path / "data")
    write_png(f"{root}/shapes/circle/0.png")
    config = ingest_config(configs.build({"tasks": {"shapes": configs.task("image", 1, "shapes")}}))
    write_bytes(str(tmp_path / "out" / "Split-train" / "shapes-00000-of-00001.gz"), b"old")
    with pytest.raises(beam_ingest.IngestError, match="already holds records"):
        beam_ingest.ingest(
            config, str(tmp_path / "out"), str(tmp_path / "q"), data_root=root, progress=False
        )


def test_an_input_the_runner_loses_fails_the_run_naming_it(tmp_path, monkeypatch):
    """An input that comes out neither written nor quarantined (a runner dropping elements, as
    Beam's multi-process DirectRunner was seen to do) fails the run instead of vanishing."""
    root = str(tmp_path / "data")
    for label, name in (("low", "a.wav"), ("high", "b.wav"), ("low", "c.wav")):
        write_wav(os.path.join(root, "tones", label, name), seconds=1.0)
    task = configs.task("audio", 2, "tones")
    config = ingest_config(
        configs.build({"tasks": {"tones": task}, "ingestion": dataclasses.asdict(ING)})
    )
    original = beam_ingest.DecodeClipsFn.process

    def dropping_b(self, item):
        if not item.clip.path.endswith("b.wav"):
            yield from original(self, item)

    monkeypatch.setattr(beam_ingest.DecodeClipsFn, "process", dropping_b)
    with pytest.raises(beam_ingest.IngestError, match=r"1 of 3 inputs .*lost them\): \S*b\.wav\."):
        beam_ingest.ingest(
            config, str(tmp_path / "out"), str(tmp_path / "q"), data_root=root, progress=False
        )


def test_lost_items_are_those_not_processed():
    clip = sources.SourceClip("x.mp4", None, None, ("a",), "", "train", "x.mp4")
    items = [beam_ingest.WorkItem("t", "video", clip, (0,), number=n) for n in range(4)]
    assert [i.number for i in beam_ingest.lost_items(items, "0\n3\n1\n")] == [2]
    assert beam_ingest.lost_items(items, "3\n2\n1\n0\n") == []


def test_records_reach_the_writers_in_the_decoding_stage(tmp_path):
    """No Flatten merges record outputs: Beam's portable runner materializes a multi-input
    Flatten, which sent every record (megabytes) through the driver and, with another run on
    the machine, lost some of them. Only the small quarantine and tally streams are merged."""
    import apache_beam as beam

    root = beam.Pipeline()
    beam_ingest.build_pipeline(
        root, [], [], ING, ["t"], "", str(tmp_path / "out"), str(tmp_path / "q")
    )
    transforms = root.to_runner_api().components.transforms.values()
    flattens = {t.unique_name for t in transforms if t.spec.urn == "beam:transform:flatten:v1"}
    assert flattens == {"AllBad", "AllTallies"}
