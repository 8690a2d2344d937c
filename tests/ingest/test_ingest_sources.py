"""Layout parsers: clips, labels, splits and quarantine records from each supported layout.

Sources only list files (no decoding), so the media here are placeholder bytes.
"""

from __future__ import annotations

import os

import pytest

from components.media_example_gen import sources
from core.config import DataSource, TaskData
from media import errors


def touch(root, *relative_paths: str) -> None:
    for rel in relative_paths:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"x")


def write(root, rel: str, text: str) -> None:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def list_task(root, data: DataSource, modality="video", eval_fraction=0.2, name="t"):
    task = TaskData(name=name, modality=modality, data=data)
    return sources.list_task_sources(task, str(root), eval_fraction)


def by_split(result, split):
    return sorted((os.path.basename(c.path), c.labels) for c in result.clips if c.split == split)


def reasons(result):
    return sorted((os.path.basename(q.file), q.reason) for q in result.quarantined)


def test_folders_with_train_and_val_folders(tmp_path):
    touch(tmp_path / "m", "train/up/a.mp4", "train/down/b.mp4", "train/down/sub/c.mp4")
    touch(tmp_path / "m", "val/up/d.mp4", "val/left/e.mp4", "README.txt")
    result = list_task(tmp_path, DataSource(root="m", train="train", eval="val"))
    assert result.vocabulary == ["down", "up"]
    assert by_split(result, "train") == [
        ("a.mp4", ("up",)),
        ("b.mp4", ("down",)),
        ("c.mp4", ("down",)),
    ]
    assert by_split(result, "eval") == [("d.mp4", ("up",))]
    # An eval class that train lacks is an unknown label, not a silent drop.
    assert reasons(result) == [("e.mp4", errors.UNKNOWN_LABEL)]


def test_folders_hash_split_is_deterministic_and_by_file(tmp_path):
    files = [f"c{i % 3}/v{i}.mp4" for i in range(200)]
    touch(tmp_path / "d", *files)
    first = list_task(tmp_path, DataSource(root="d"), eval_fraction=0.25)
    second = list_task(tmp_path, DataSource(root="d"), eval_fraction=0.25)
    assert [(c.path, c.split) for c in first.clips] == [(c.path, c.split) for c in second.clips]
    n_eval = sum(c.split == "eval" for c in first.clips)
    assert 25 < n_eval < 75  # about a quarter of 200
    assert first.vocabulary == ["c0", "c1", "c2"]
    assert sources.hash_split("c0/v0.mp4", 0.0) == "train"


def test_folders_ucf101_split_lists(tmp_path):
    touch(tmp_path / "ucf", "Jump/v_Jump_g01.avi", "Jump/v_Jump_g02.avi", "Run/v_Run_g01.avi")
    touch(tmp_path / "ucf", "Run/v_Run_g02.avi")
    write(tmp_path / "ucf", "lists/trainlist01.txt", "Jump/v_Jump_g02.avi 1\nRun/v_Run_g02.avi 2\n")
    write(tmp_path / "ucf", "lists/testlist01.txt", "Jump/v_Jump_g01.avi\nRun/v_Nope.avi\n")
    data = DataSource(root="ucf", train="lists/trainlist01.txt", eval="lists/testlist01.txt")
    result = list_task(tmp_path, data)
    assert by_split(result, "train") == [("v_Jump_g02.avi", ("Jump",)), ("v_Run_g02.avi", ("Run",))]
    assert by_split(result, "eval") == [("v_Jump_g01.avi", ("Jump",))]
    assert reasons(result) == [("v_Nope.avi", errors.MISSING_FILE)]
    # Only a test list: train is every class file the list does not name.
    only_test = list_task(tmp_path, DataSource(root="ucf", eval="lists/testlist01.txt"))
    assert {c.path for c in only_test.clips if c.split == "train"} == {
        str(tmp_path / "ucf" / p)
        for p in ("Jump/v_Jump_g02.avi", "Run/v_Run_g01.avi", "Run/v_Run_g02.avi")
    }


def test_dmvr_csv_rows_and_bad_rows(tmp_path):
    touch(tmp_path / "a", "wav/one.wav", "wav/two.wav", "outside.wav")
    touch(tmp_path, "elsewhere.wav")
    write(
        tmp_path / "a",
        "train.csv",
        "video_path,start,end,label,caption\n"
        "wav/one.wav,0,1.5,dog,a dog barks\n"
        "wav/two.wav,,,cat,\n"
        "wav/missing.wav,0,1,dog,\n"
        "../elsewhere.wav,0,1,dog,\n"
        "wav/one.wav,2,1,dog,\n"
        "wav/one.wav,x,1,dog,\n",
    )
    write(
        tmp_path / "a",
        "eval.csv",
        "path,start,end,label\nwav/two.wav,0,1,cow\nwav/one.wav,0,1,cat\n",
    )
    data = DataSource(root=".", layout="dmvr_csv", train="train.csv", eval="eval.csv")
    result = list_task(tmp_path / "a", data)  # data root = the task folder: ../ escapes it
    train = [c for c in result.clips if c.split == "train"]
    assert [(os.path.basename(c.path), c.start_s, c.end_s, c.labels, c.caption) for c in train] == [
        ("one.wav", 0.0, 1.5, ("dog",), "a dog barks"),
        ("two.wav", None, None, ("cat",), ""),
    ]
    assert by_split(result, "eval") == [("one.wav", ("cat",))]
    assert reasons(result) == sorted(
        [
            ("missing.wav", errors.MISSING_FILE),
            ("elsewhere.wav", errors.PATH_ESCAPES_ROOT),
            ("one.wav", errors.BAD_TIME_RANGE),
            ("one.wav", errors.BAD_TIME_RANGE),
            ("two.wav", errors.UNKNOWN_LABEL),
        ]
    )
    # Every quarantine record names its CSV row.
    assert all(q.detail.startswith(("train.csv:", "eval.csv:")) for q in result.quarantined)


def test_dmvr_csv_without_required_columns_is_a_clear_error(tmp_path):
    write(tmp_path / "a", "train.csv", "file,begin\nx,0\n")
    with pytest.raises(sources.SourceError, match="video_path"):
        list_task(tmp_path, DataSource(root="a", layout="dmvr_csv", train="train.csv"))


def test_audioset_csv_multi_label_media_by_stem(tmp_path):
    root = tmp_path / "as"
    touch(root, "audio/abc.wav", "audio/def_30000_40000.flac", "audio/ghi.wav")
    write(root, "labels.csv", 'index,mid,display_name\n0,/m/a,"Speech"\n1,/m/b,"Dog, bark"\n')
    header = "# Segments csv\n# num_ytids=3\n# YTID, start_seconds, end_seconds, positive_labels\n"
    write(
        root,
        "train.csv",
        header + 'abc, 0.000, 10.000, "/m/a,/m/b"\ndef, 30.000, 40.000, "/m/b"\n'
        'nope, 0.000, 10.000, "/m/a"\n',
    )
    write(root, "eval.csv", header + 'ghi, 5.000, 15.000, "/m/zz"\n')
    data = DataSource(
        root="as",
        layout="audioset_csv",
        train="train.csv",
        eval="eval.csv",
        label_names="labels.csv",
        media_dir="audio",
    )
    result = list_task(tmp_path, data, modality="audio")
    assert result.vocabulary == ["Dog, bark", "Speech"]
    got = [(os.path.basename(c.path), c.labels, c.start_s, c.time_offset_s) for c in result.clips]
    assert got == [
        ("abc.wav", ("Dog, bark", "Speech"), None, 0.0),
        ("def_30000_40000.flac", ("Dog, bark",), None, 30.0),
    ]
    assert reasons(result) == [("ghi", errors.UNKNOWN_LABEL), ("nope", errors.MISSING_FILE)]


def test_kinetics_csv_and_ambiguous_ids(tmp_path):
    root = tmp_path / "k"
    touch(root, "videos/aaa_000010_000020.mp4", "videos/bbb_000001_000011.mp4")
    touch(root, "videos/ccc_000005_000015.mp4", "videos/ccc_000005_000015.mkv")
    write(
        root,
        "train.csv",
        "label,youtube_id,time_start,time_end,split\n"
        "jumping,aaa,10,20,train\n"
        "running,bbb,1,11,train\n"
        "running,ccc,5,15,train\n",
    )
    write(root, "val.csv", "label,youtube_id,time_start,time_end,split\njumping,bbb,1,11,val\n")
    data = DataSource(
        root="k", layout="kinetics_csv", train="train.csv", eval="val.csv", media_dir="videos"
    )
    result = list_task(tmp_path, data)
    assert by_split(result, "train") == [
        ("aaa_000010_000020.mp4", ("jumping",)),
        ("bbb_000001_000011.mp4", ("running",)),
    ]
    assert by_split(result, "eval") == [("bbb_000001_000011.mp4", ("jumping",))]
    assert reasons(result) == [("ccc", errors.AMBIGUOUS_MEDIA)]


def test_vggsound_csv_split_column(tmp_path):
    root = tmp_path / "vgg"
    touch(root, "audio/x1_000010.wav", "audio/x2_000000.wav", "audio/x3_000030.wav")
    write(
        root,
        "vggsound.csv",
        'x1,10,dog barking,train\nx2,0,"rain, heavy",train\nx3,30,dog barking,test\n'
        "x4,0,dog barking,test\n",
    )
    data = DataSource(
        root="vgg",
        layout="vggsound_csv",
        train="vggsound.csv",
        eval="vggsound.csv",
        media_dir="audio",
    )
    result = list_task(tmp_path, data, modality="audio")
    assert by_split(result, "train") == [
        ("x1_000010.wav", ("dog barking",)),
        ("x2_000000.wav", ("rain, heavy",)),
    ]
    assert by_split(result, "eval") == [("x3_000030.wav", ("dog barking",))]
    assert [c.time_offset_s for c in result.clips] == [10.0, 0.0, 30.0]
    assert reasons(result) == [("x4", errors.MISSING_FILE)]


def test_missing_task_root_is_a_clear_error(tmp_path):
    with pytest.raises(sources.SourceError, match="nothere"):
        list_task(tmp_path, DataSource(root="nothere"))


def list_unlabelled(root, data: DataSource, eval_fraction=0.2):
    task = TaskData(name="clips", modality="video", labelled=False, data=data)
    return sources.list_task_sources(task, str(root), eval_fraction)


def test_an_unlabelled_folder_is_every_file_below_it_with_no_labels(tmp_path):
    touch(tmp_path / "m", "train/a.mp4", "train/day1/b.mp4", "val/c.mp4", ".hidden.mp4")
    result = list_unlabelled(tmp_path, DataSource(root="m", train="train", eval="val"))
    assert (result.vocabulary, result.labelled) == ([], False)
    assert by_split(result, "train") == [("a.mp4", ()), ("b.mp4", ())]
    assert by_split(result, "eval") == [("c.mp4", ())]
    # No split folders: every file, at any depth, split by a hash of its path.
    touch(tmp_path / "flat", "x.mp4", "deep/er/y.mp4")
    flat = list_unlabelled(tmp_path, DataSource(root="flat"), eval_fraction=0.5)
    assert sorted(os.path.basename(c.path) for c in flat.clips) == ["x.mp4", "y.mp4"]
    assert all(c.labels == () for c in flat.clips) and not flat.quarantined
    # Only an eval folder: the files beside it are the train split.
    only_eval = list_unlabelled(tmp_path, DataSource(root="m", eval="val"))
    assert by_split(only_eval, "eval") == [("c.mp4", ())]
    assert by_split(only_eval, "train") == [("a.mp4", ()), ("b.mp4", ())]
    write(tmp_path / "m", "trainlist.txt", "a.mp4\n")
    with pytest.raises(sources.SourceError, match="not split lists"):
        list_unlabelled(tmp_path, DataSource(root="m", train="trainlist.txt"))


def test_an_unlabelled_csv_task_needs_no_label_column_and_ignores_one(tmp_path):
    touch(tmp_path / "a", "one.mp4", "two.mp4")
    write(tmp_path / "a", "train.csv", "video_path,start,end,caption\none.mp4,0,1,a dog\n")
    write(tmp_path / "a", "eval.csv", "video_path,start,end,label\ntwo.mp4,0,1,never_in_train\n")
    data = DataSource(root="a", layout="dmvr_csv", train="train.csv", eval="eval.csv")
    result = list_unlabelled(tmp_path, data)
    assert by_split(result, "train") == [("one.mp4", ())]
    # A label the train split never has is no unknown_label: the task has no labels at all.
    assert by_split(result, "eval") == [("two.mp4", ())] and not result.quarantined
    assert result.clips[0].caption == "a dog" and result.vocabulary == []
