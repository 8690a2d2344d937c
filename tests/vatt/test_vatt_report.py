"""The model report's pretrained-model section: retrieval.json as the Pretrainer writes it
(trainer/vatt/retrieval.py's figures) -> summary, bar chart PNG, HTML section, CLI line."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components.model_report import pretraining, render, report
from trainer.vatt import retrieval


def _write_model(root, probe: bool = True) -> str:
    serving = os.path.join(root, "Format-Serving")
    os.makedirs(serving)
    content = {
        "steps": 7,
        "history": [],
        # Ranks of 8 and 4 queries: R@1 = 2/8 and 1/4; medians 3.5 and 2.5.
        "video_to_audio": retrieval.retrieval_metrics(np.array([1, 1, 2, 3, 4, 6, 11, 20])),
        "video_to_text": retrieval.retrieval_metrics(np.array([1, 2, 3, 9])),
    }
    if probe:
        content["linear_probe"] = {"task_top1": 0.5, "chance": 0.25}
    with open(os.path.join(serving, "retrieval.json"), "w") as f:
        json.dump(content, f)
    return str(root)


def test_figures_and_chance_come_from_the_pretrainers_file(tmp_path):
    loaded = pretraining.load_pretraining(_write_model(tmp_path / "m"))
    va, vt = loaded["retrieval"]["video_to_audio"], loaded["retrieval"]["video_to_text"]
    assert (va["R@1"], va["R@5"], va["R@10"], va["median_rank"]) == (0.25, 0.625, 0.75, 3.5)
    assert (va["chance_R@1"], va["chance_R@5"], va["chance_R@10"]) == (1 / 8, 5 / 8, 1.0)
    assert (vt["R@1"], vt["median_rank"], vt["chance_R@10"]) == (0.25, 2.5, 1.0)
    assert loaded["steps"] == 7 and loaded["linear_probe"]["task_top1"] == 0.5
    assert pretraining.load_pretraining(None) is None


def test_bad_or_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="retrieval.json"):
        pretraining.load_pretraining(str(tmp_path))
    (tmp_path / "retrieval.json").write_text(json.dumps({"video_to_audio": {"R@1": 0.1}}))
    with pytest.raises(ValueError, match="retrieval.json.*video_to_audio"):
        pretraining.load_pretraining(str(tmp_path))


def test_picture_section_and_summary_line(tmp_path):
    loaded = pretraining.load_pretraining(_write_model(tmp_path / "m"))
    picture = str(tmp_path / pretraining.PICTURE)
    pretraining.retrieval_png(loaded, picture)
    image = tf.io.decode_png(tf.io.read_file(picture))
    assert image.shape[0] > 100 and image.shape[1] > 300
    summary = {
        "title": "t",
        "decision": "BLESSED",
        "decision_reason": "ok",
        "failures": [],
        "tasks": [],
        "pretraining": loaded,
        "pretraining_picture": pretraining.PICTURE,
    }
    page = render.page(summary, {})
    assert "id='pretraining'" in page and pretraining.PICTURE in page
    assert "0.250 (0.125)" in page  # video->audio R@1 and its chance
    assert "top-1 0.500 (chance 0.250)" in page
    line = report.describe_pretraining(loaded)
    assert "video -> audio R@1 0.250 (chance 0.125)" in line
    assert "linear probe top-1 0.500" in line


def test_without_probe_the_section_says_so(tmp_path):
    loaded = pretraining.load_pretraining(_write_model(tmp_path / "m", probe=False))
    assert "No linear probe" in pretraining.section(loaded, None)
    assert "linear probe" not in report.describe_pretraining(loaded)


def test_model_report_takes_the_pretrainers_model_only_with_pretraining():
    import dataclasses
    import pathlib

    from core import config as config_lib
    from pipeline.pipeline import create_pipeline

    path = pathlib.Path(__file__).resolve().parents[2] / "configs" / "vatt.yaml"
    config = config_lib.load(str(path))
    nodes = {c.id: c for c in create_pipeline(config, pipeline_root="r", data_root="d").components}
    channel = nodes["ModelReport"].inputs["pretrained_model"]
    assert channel.producer_component_id == "Pretrainer"
    off = dataclasses.replace(
        config, pretraining=dataclasses.replace(config.pretraining, enabled=False)
    )
    nodes = {c.id: c for c in create_pipeline(off, pipeline_root="r", data_root="d").components}
    assert "Pretrainer" not in nodes and "pretrained_model" not in nodes["ModelReport"].inputs
