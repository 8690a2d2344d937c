"""Spans of a task's data ({SPAN}, {VERSION}, date folders): which span a run ingests, each
task's root in it, and the input fingerprint that keys TFX's cache."""

from __future__ import annotations

import os

import pytest

from components.media_example_gen import spans
from core.config import DataSource, IngestConfig, Ingestion, TaskData


def touch(root, *relative_paths: str) -> None:
    for rel in relative_paths:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"x")


def config(*roots: str, span: int = -1) -> IngestConfig:
    tasks = [TaskData(name=f"t{i}", data=DataSource(root=root)) for i, root in enumerate(roots)]
    return IngestConfig(tasks=tasks, ingestion=Ingestion(span=span))


def three_spans(root) -> None:
    for span in (1, 2, 3):
        touch(root, f"digits/span-{span}/a/0.png", f"digits/span-{span}/b/0.png")


def test_newest_span_by_default_and_a_span_when_asked(tmp_path):
    three_spans(tmp_path)
    newest = spans.select(config("digits/span-{SPAN}"), str(tmp_path))
    assert (newest.span, newest.version, newest.spanned) == (3, None, True)
    assert newest.roots == {"t0": "digits/span-3"}
    second = spans.select(config("digits/span-{SPAN}", span=2), str(tmp_path))
    assert (second.span, second.roots) == (2, {"t0": "digits/span-2"})


def test_unspanned_tasks_keep_their_root_and_span_zero(tmp_path):
    three_spans(tmp_path)
    touch(tmp_path, "tones/a/0.wav")
    selection = spans.select(config("tones"), str(tmp_path))
    assert (selection.span, selection.spanned, selection.roots) == (0, False, {"t0": "tones"})
    mixed = spans.select(config("digits/span-{SPAN}", "tones"), str(tmp_path))
    assert mixed.roots == {"t0": "digits/span-3", "t1": "tones"}


def test_newest_version_within_the_span(tmp_path):
    touch(tmp_path, "d/1/v1/a/0.png", "d/2/v1/a/0.png", "d/2/v4/a/0.png", "d/2/v3/a/0.png")
    selection = spans.select(config("d/{SPAN}/v{VERSION}"), str(tmp_path))
    assert (selection.span, selection.version, selection.roots) == (2, 4, {"t0": "d/2/v4"})


def test_date_folders_count_days_since_the_epoch_as_tfx_does(tmp_path):
    touch(tmp_path, "d/2024-01-30/a/0.png", "d/2024-02-01/a/0.png", "d/notes/readme.txt")
    selection = spans.select(config("d/{YYYY}-{MM}-{DD}"), str(tmp_path))
    from tfx.components.example_gen import utils as tfx_utils

    assert selection.span == tfx_utils.date_to_span_number(2024, 2, 1)
    assert selection.roots == {"t0": "d/2024-02-01"}
    assert spans.span_to_date(selection.span) == (2024, 2, 1)


def test_a_span_missing_for_one_task_names_the_task(tmp_path):
    three_spans(tmp_path)
    touch(tmp_path, "tones/span-1/a/0.wav", "tones/span-2/a/0.wav")
    with pytest.raises(spans.SpanError, match=r"span 3 is missing for tasks \['t1'\]"):
        spans.select(config("digits/span-{SPAN}", "tones/span-{SPAN}"), str(tmp_path))
    with pytest.raises(spans.SpanError, match="span 7 is missing"):
        spans.select(config("digits/span-{SPAN}", span=7), str(tmp_path))


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("d/{SPAN}/{YYYY}-{MM}-{DD}", "both"),
        ("d/{YYYY}-{MM}", "needs all"),
        ("d/v{VERSION}", "no span"),
        ("d/{SPAN}/{SPAN}", "more than once"),
    ],
)
def test_bad_patterns_name_the_field(pattern, message, tmp_path):
    with pytest.raises(spans.SpanError, match=rf"tasks\.t0\.data\.root: .*{message}"):
        spans.select(config(pattern), str(tmp_path))


def test_no_folder_matching_the_pattern_is_an_error(tmp_path):
    with pytest.raises(spans.SpanError, match="no folder matches"):
        spans.select(config("digits/span-{SPAN}"), str(tmp_path))


def test_fingerprint_changes_with_a_new_span_or_a_new_file_only(tmp_path):
    three_spans(tmp_path)
    cfg = config("digits/span-{SPAN}")
    first = spans.input_fingerprint(cfg, str(tmp_path))
    assert spans.input_fingerprint(cfg, str(tmp_path)) == first
    touch(tmp_path, "digits/span-1/a/9.png")  # an older span: not this run's input
    assert spans.input_fingerprint(cfg, str(tmp_path)) == first
    touch(tmp_path, "digits/span-3/a/9.png")
    added = spans.input_fingerprint(cfg, str(tmp_path))
    assert added != first
    touch(tmp_path, "digits/span-4/a/0.png")
    assert spans.input_fingerprint(cfg, str(tmp_path)) not in (first, added)
