"""make-demo-data at small scale: layout, manifest, decoding, CSV formats, determinism."""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re

import av
import numpy as np
import pytest
from demo_data_media_checks import (
    decode_audio,
    decode_video_frames,
    direction_from_motion,
    peak_frequencies,
)

from core import config as config_lib
from demo import audio, generate, presets
from demo import cli as demo_cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MEDIA_EXTS = {".png", ".jpg", ".mp4", ".wav", ".flac"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("demo") / "data")
    generate.generate(out, scale="small", seed=0)
    return out


@pytest.fixture(scope="module")
def manifest(data_dir) -> dict:
    with open(os.path.join(data_dir, presets.MANIFEST)) as f:
        return json.load(f)


def _all_files(root: str) -> dict[str, str]:
    """Relative path -> sha256 of every file under root."""
    digests = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                digests[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return digests


def _files(manifest: dict, dataset: str) -> list[dict]:
    return manifest["datasets"][dataset]["files"]


# --------------------------------------------------------------------------------------------
# Layout: what configs/demo.yaml and the Layout rules of core/config.py expect.


def test_layout_matches_demo_config(data_dir):
    config = config_lib.load(os.path.join(REPO, "configs", "demo.yaml"))
    assert {t.name for t in config.tasks} == set(presets.DATASETS)
    for task in config.tasks:
        root = os.path.join(data_dir, task.data.root)
        assert os.path.isdir(root), task.name
        if task.data.layout == "folders" and not task.data.train:
            classes = sorted(os.listdir(root))
            assert len(classes) == task.num_classes, task.name
            continue
        for split_path in (task.data.train, task.data.eval):
            assert os.path.exists(os.path.join(root, split_path)), f"{task.name}: {split_path}"
        if task.data.layout == "folders":
            for split in (task.data.train, task.data.eval):
                assert len(os.listdir(os.path.join(root, split))) == task.num_classes
        if task.data.label_names:
            with open(os.path.join(root, task.data.label_names)) as f:
                assert len(list(csv.DictReader(f))) == task.num_classes
        if task.data.media_dir:
            assert os.path.isdir(os.path.join(root, task.data.media_dir))
        if task.data.layout == "dmvr_csv":
            with open(os.path.join(root, task.data.train)) as f:
                assert len({row["label"] for row in csv.DictReader(f)}) == task.num_classes


def test_manifest_lists_exactly_the_media_on_disk(data_dir, manifest):
    on_disk = {path for path in _all_files(data_dir) if os.path.splitext(path)[1] in MEDIA_EXTS}
    listed = [f["path"] for name in presets.DATASETS for f in _files(manifest, name)]
    assert len(listed) == len(set(listed))
    assert set(listed) == on_disk
    assert manifest["seed"] == 0 and manifest["scale"] == "small"
    small = presets.SCALES["small"]
    digits = _files(manifest, "digits")
    held_out = small.digit_eval_per_class
    train_images = (small.images_per_class - held_out) * small.digit_renditions
    assert sum(f["split"] == "eval" for f in digits) == 10 * held_out
    assert sum(f["split"] == "train" for f in digits) == 10 * train_images


def test_no_source_digit_is_in_both_digit_splits(manifest):
    # Renditions of one source digit in both splits would inflate the eval accuracy.
    digits = _files(manifest, "digits")
    sources = {s: {f["source_index"] for f in digits if f["split"] == s} for s in ("train", "eval")}
    assert sources["train"] and sources["eval"]
    assert not sources["train"] & sources["eval"]
    train = [f for f in digits if f["split"] == "train"]
    assert len(train) == presets.SCALES["small"].digit_renditions * len(sources["train"])


# --------------------------------------------------------------------------------------------
# Each dataset decodes with PyAV to what the manifest and the folders/CSVs declare.


def test_digit_images_decode_with_declared_size_and_label(data_dir, manifest):
    files = _files(manifest, "digits")
    assert {os.path.splitext(f["path"])[1] for f in files} == {".png", ".jpg"}
    assert {f["label"] for f in files} == {str(d) for d in range(10)}
    for entry in files:
        _, folder, label = entry["path"].split("/")[:3]
        assert (folder, label) == (presets.DIGITS_SPLIT_DIRS[entry["split"]], entry["label"])
        with av.open(os.path.join(data_dir, entry["path"])) as container:
            frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (entry["width"], entry["height"])
        pixels = frame.to_ndarray(format="rgb24")
        assert pixels.std() > 10, f"{entry['path']} is blank"


def test_motion_clips_decode_to_declared_frames_and_audio(data_dir, manifest):
    dataset = manifest["datasets"]["motion"]
    files = dataset["files"]
    small = presets.SCALES["small"]
    for split, folder in presets.MOTION_SPLIT_DIRS.items():
        in_split = [f for f in files if f["split"] == split]
        assert len(in_split) == 4 * small.clips_per_direction[split]
        assert all(f["path"].split("/")[1] == folder for f in in_split)
    with_audio = [f for f in files if f["has_audio"]]
    assert 0 < len(with_audio) < len(files)
    assert {f["label"] for f in with_audio} == set(dataset["labels"])
    for entry in files:
        path = os.path.join(data_dir, entry["path"])
        assert entry["path"].split("/")[2] == entry["label"]
        assert entry["path"].endswith("_av.mp4") == entry["has_audio"]
        with av.open(path) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.codec_context.pix_fmt == dataset["pix_fmt"]
            assert (stream.width, stream.height) == (dataset["width"], dataset["height"])
            assert stream.average_rate == dataset["fps"]
            assert float(stream.duration * stream.time_base) == pytest.approx(entry["duration"])
            assert len(container.streams.audio) == (1 if entry["has_audio"] else 0)
            num_frames = sum(1 for _ in container.decode(video=0))
        assert num_frames == entry["num_frames"] == round(entry["duration"] * dataset["fps"])
        if entry["has_audio"]:
            samples, rate, channels = decode_audio(path)
            assert (rate, channels) == (dataset["audio"]["sample_rate"], 1)
            # AAC pads to whole 1024-sample frames.
            expected = entry["duration"] * rate
            assert expected <= samples.shape[1] <= expected + 2048
            assert np.abs(samples).max() > 0.1


def test_dtmf_csvs_and_audio(data_dir, manifest):
    dataset = manifest["datasets"]["dtmf"]
    by_path = {f["path"]: f for f in dataset["files"]}
    keys = list(audio.DTMF_KEYS)
    low, high = sorted({f for pair in audio.DTMF_FREQUENCIES.values() for f in pair})[:4], None
    high = sorted({f for pair in audio.DTMF_FREQUENCIES.values() for f in pair})[4:]
    exts = set()
    for split, csv_name in presets.DTMF_CSVS.items():
        with open(os.path.join(data_dir, "dtmf", csv_name), newline="") as f:
            lines = f.read().splitlines()
        assert lines[0] == "video_path,start,end,label"
        rows = list(csv.DictReader(lines))
        assert {r["label"] for r in rows} == set(keys)
        for row in rows:
            rel = f"dtmf/{row['video_path']}"
            entry = by_path[rel]
            assert entry["split"] == split and entry["label"] == row["label"]
            start, end = float(row["start"]), float(row["end"])
            assert (start, end) == (entry["start"], entry["end"])
            exts.add(os.path.splitext(rel)[1])
            samples, rate, channels = decode_audio(os.path.join(data_dir, rel))
            assert (rate, channels) == (dataset["sample_rate"], 1)
            assert samples.shape[1] == round(entry["duration"] * rate)
            assert 0 <= start < end <= entry["duration"]
            assert 0.8 <= end - start <= 1.2
            # The labelled window sounds the key's row and column frequencies.
            window = samples[0, int(start * rate) : int(end * rate)]
            row_hz, col_hz = audio.DTMF_FREQUENCIES[row["label"]]
            assert low[int(np.argmax(peak_frequencies(window, rate, low)))] == row_hz, rel
            assert high[int(np.argmax(peak_frequencies(window, rate, high)))] == col_hz, rel
    assert exts == {".wav", ".flac"}
    assert any(f["distractor"] for f in dataset["files"])


def _parse_audioset_segments(path: str) -> list[tuple[str, float, float, list[str]]]:
    with open(path, newline="") as f:
        lines = f.read().splitlines()
    assert all(line.startswith("#") for line in lines[:3])
    assert lines[2] == "# YTID, start_seconds, end_seconds, positive_labels"
    rows = []
    for line in lines[3:]:
        assert re.fullmatch(r'[\w-]{11}, \d+\.\d{3}, \d+\.\d{3}, "[^"]+"', line), line
        ytid, start, end, labels = next(csv.reader([line], skipinitialspace=True))
        rows.append((ytid, float(start), float(end), labels.split(",")))
    return rows


def test_tone_mix_audioset_csvs_and_audio(data_dir, manifest):
    dataset = manifest["datasets"]["tone_mix"]
    root = os.path.join(data_dir, "tone_mix")
    with open(os.path.join(root, presets.TONE_MIX_LABELS_CSV), newline="") as f:
        classes = list(csv.DictReader(f))
    assert [c["index"] for c in classes] == [str(i) for i in range(6)]
    assert "Chirp, rising" in {c["display_name"] for c in classes}
    mids = {c["mid"] for c in classes}
    by_ytid = {f["ytid"]: f for f in dataset["files"]}
    seen_ids, label_counts = set(), []
    for split, csv_name in presets.TONE_MIX_CSVS.items():
        rows = _parse_audioset_segments(os.path.join(root, csv_name))
        assert {mid for row in rows for mid in row[3]} == mids, f"{split}: a class has no clip"
        for ytid, start, end, labels in rows:
            entry = by_ytid[ytid]
            assert entry["split"] == split and entry["labels"] == labels
            assert set(labels) <= mids and 1 <= len(labels) <= 3
            label_counts.append(len(labels))
            media = [n for n in os.listdir(os.path.join(root, "audio")) if n.startswith(ytid)]
            assert media == [os.path.basename(entry["path"])]
            samples, rate, channels = decode_audio(os.path.join(root, "audio", media[0]))
            assert (rate, channels) == (dataset["sample_rate"], 1)
            # The file is the cut segment: as long as end - start, which are video offsets.
            assert samples.shape[1] / rate == pytest.approx(end - start) == entry["duration"]
            seen_ids.add(ytid)
    assert seen_ids == set(by_ytid)
    assert max(label_counts) > 1, "no clip is multi-label"
    exts = {os.path.splitext(f["path"])[1] for f in dataset["files"]}
    assert exts == {".wav", ".flac"}


def test_motion_class_is_decidable_from_decoded_motion(data_dir, manifest):
    for entry in _files(manifest, "motion"):
        frames = decode_video_frames(os.path.join(data_dir, entry["path"]))
        assert direction_from_motion(frames) == entry["label"], entry["path"]


# --------------------------------------------------------------------------------------------
# Determinism, refusal to clobber, and the CLI.


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(data_dir, tmp_path):
    again = str(tmp_path / "again")
    generate.generate(again, scale="small", seed=0)
    first, second = _all_files(data_dir), _all_files(again)
    assert first == second

    other = str(tmp_path / "other")
    generate.generate(other, scale="small", seed=1)
    third = _all_files(other)
    for path, digest in first.items():
        if os.path.splitext(path)[1] in MEDIA_EXTS and path in third:
            assert third[path] != digest, f"{path} did not change with the seed"
    assert third[presets.MANIFEST] != first[presets.MANIFEST]


def test_regenerating_replaces_own_output_but_not_foreign_data(tmp_path):
    out = tmp_path / "data"
    (out / "digits").mkdir(parents=True)
    (out / "digits" / "mine.txt").write_text("not generated")
    with pytest.raises(FileExistsError, match="digits"):
        generate.generate(str(out), scale="small", seed=0)
    assert (out / "digits" / "mine.txt").exists()

    generate.generate(str(out), scale="small", seed=0, force=True)
    assert not (out / "digits" / "mine.txt").exists()
    stale = out / "motion" / "train" / "up" / "stale.mp4"
    stale.write_bytes(b"")
    generate.generate(str(out), scale="small", seed=0)  # our own output: replaced
    assert not stale.exists()


def _run_cli(argv: list[str]) -> int:
    # The subcommand's own parser and handler, as `polyvit make-demo-data` wires them (without
    # importing every other subcommand's module).
    parser = argparse.ArgumentParser(prog="polyvit make-demo-data")
    demo_cli.add_make_demo_data_arguments(parser)
    return demo_cli.make_demo_data(parser.parse_args(argv))


def test_cli_prints_a_summary_table(tmp_path, capsys):
    out = str(tmp_path / "cli")
    assert _run_cli([out, "--scale", "small", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    for name in presets.DATASETS:
        assert re.search(rf"^{name}\s+(image|video|audio)\s+\S+=\d+", printed, re.M), printed
    with open(os.path.join(out, presets.MANIFEST)) as f:
        assert json.load(f)["seed"] == 3

    (tmp_path / "foreign" / "dtmf").mkdir(parents=True)
    code = _run_cli([str(tmp_path / "foreign"), "--scale", "small"])
    assert code == 2
    assert "dtmf" in capsys.readouterr().err
