"""The VATT demo data: captions name the digit and the direction, some clips lack a soundtrack
or a caption (the masks' cases), and the labelled set is small."""

from __future__ import annotations

import csv

import av

from demo import vatt_data


def test_demo_sets_captions_and_gaps(tmp_path):
    counts = vatt_data.generate(
        str(tmp_path), per_direction=2, eval_per_direction=1, labelled_per_class=1
    )
    assert counts == {"pretrain.csv": 8, "pretrain_eval.csv": 4, "few.csv": 4, "few_eval.csv": 4}
    with open(tmp_path / "vatt" / "pretrain.csv") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row["caption"]:
            first, second = row["caption"].split(" | ")
            assert row["label"] in first and first.startswith("the digit ")
            assert second.endswith(f"going {row['label']}")
    assert [i for i, row in enumerate(rows) if not row["caption"]] == [4]
    silent = []
    for i, row in enumerate(rows):
        with av.open(str(tmp_path / "vatt" / row["video_path"])) as container:
            if not container.streams.audio:
                silent.append(i)
    assert silent == [6]
