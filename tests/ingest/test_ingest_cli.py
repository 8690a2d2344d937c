"""`polyvit ingest`: flags -> a one-task config, Beam options passed through, counts printed."""

from __future__ import annotations

import argparse
import os

import pytest

from components.media_example_gen import cli
from core import features
from media import dmvr
from tests.support.media import write_bytes, write_wav


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_ingest_arguments(parser)
    return parser.parse_args(argv)


def test_flags_build_a_one_task_ingest_config(tmp_path):
    args = parse(
        ["--modality", "audio", "--layout", "audioset_csv", "--fps", "4", "--clip-seconds", "1.5"]
        + ["--train", "tr.csv", "--media-dir", "audio", str(tmp_path / "as"), str(tmp_path / "o")]
    )
    config = cli.build_config(args)
    (task,) = config.tasks
    assert (task.name, task.modality, task.label_type) == ("as", "audio", "multi")
    assert (task.data.root, task.data.layout, task.data.train, task.data.media_dir) == (
        "as",
        "audioset_csv",
        "tr.csv",
        "audio",
    )
    assert cli.data_root(args) == str(tmp_path)
    assert (config.ingestion.fps, config.ingestion.clip_seconds) == (4.0, 1.5)
    assert config.ingestion.sample_rate == 16000  # the config's default
    assert config.ingestion.compression == "none"  # what DMVR's default readers read


def test_flags_for_existing_records_and_compression(tmp_path):
    args = parse(
        ["--modality", "video", "--layout", "dmvr_records", "--train", "train-*"]
        + ["--record-sample-rate", "48000", "--compression", "gzip"]
        + [str(tmp_path / "set"), str(tmp_path / "o")]
    )
    config = cli.build_config(args)
    (task,) = config.tasks
    assert (task.data.layout, task.data.train, task.data.sample_rate) == (
        "dmvr_records",
        "train-*",
        48000,
    )
    assert config.ingestion.compression == "gzip"
    with pytest.raises(SystemExit):
        parse(["--modality", "video", "--compression", "zip", "s", "o"])


def test_the_unlabelled_flag_makes_a_task_without_labels(tmp_path):
    args = parse(["--modality", "video", "--unlabelled", str(tmp_path / "clips"), "o"])
    (task,) = cli.build_config(args).tasks
    assert (task.name, task.labelled) == ("clips", False)
    (labelled,) = cli.build_config(parse(["--modality", "video", "s", "o"])).tasks
    assert labelled.labelled


def test_beam_args_pass_through():
    args = parse(
        ["--modality", "video", "--beam-arg=--a=1", "s", "o", "--", "--runner=FlinkRunner"]
    )
    assert cli.beam_args(args) == ["--a=1", "--runner=FlinkRunner"]
    direct = parse(["--modality", "video", "--workers", "3", "s", "o"])
    assert cli.beam_args(direct) == [
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=3",
    ]


def test_ingest_writes_records_and_reports_counts(tmp_path, capsys):
    for label in ("low", "high"):
        for i in range(3):
            write_wav(str(tmp_path / "sounds" / label / f"{i}.wav"), seconds=1.0)
    write_bytes(str(tmp_path / "sounds" / "low" / "empty.wav"), b"")
    out = str(tmp_path / "out")
    argv = ["--modality", "audio", "--workers", "1", "--max-bad-fraction", "0.2", "--quiet"]
    assert cli.ingest(parse(argv + [str(tmp_path / "sounds"), out])) == 0
    printed = capsys.readouterr().out
    assert "wrote 6 clips" in printed and "quarantined 1 (empty_file 1)" in printed
    records = [
        r
        for split in features.SPLITS
        for r in dmvr.read_records(features.task_file_pattern(out, split, "sounds"))
    ]
    assert sorted(os.path.basename(r.filename) for r in records) == ["0.wav", "0.wav", "1.wav"] + [
        "1.wav",
        "2.wav",
        "2.wav",
    ]
    assert all(r.waveform.shape == (16000,) and r.task == "sounds" for r in records)
    assert os.path.exists(os.path.join(out, "quarantine", "quarantine.jsonl"))

    # Above the threshold: exit code 1 and the file named on stderr.
    out2 = str(tmp_path / "out2")
    strict = argv[:-3] + ["--max-bad-fraction", "0.1", "--quiet"]
    assert cli.ingest(parse(strict + [str(tmp_path / "sounds"), out2])) == 1
    assert "empty.wav: empty_file" in capsys.readouterr().err
