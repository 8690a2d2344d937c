"""make-demo-data --span: span folders, ~10% new media each, the newest one picked by spans.py."""

import json
import os

import pytest

from components.media_example_gen import spans as ingest_spans
from core import config as config_lib
from demo import presets
from demo import spans as demo_spans

CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "demo_spans.yaml")


def _files(span_path: str) -> dict[str, list[str]]:
    with open(os.path.join(span_path, presets.MANIFEST)) as f:
        datasets = json.load(f)["datasets"]
    return {name: [e["path"] for e in d["files"]] for name, d in datasets.items()}


def test_a_later_span_is_the_earlier_one_plus_new_media_and_is_picked_as_newest(tmp_path):
    out = str(tmp_path)
    first, _ = demo_spans.make_span(out, 1, "small", seed=0)
    second, _ = demo_spans.make_span(out, 2, "small", seed=0)
    assert first.base_span is None and second.base_span == 1
    before, after = _files(first.path), _files(second.path)
    extra = demo_spans.extra_scale(presets.SCALES["small"])
    expected_new = {
        presets.DIGITS: 10
        * (
            (extra.images_per_class - extra.digit_eval_per_class) * extra.digit_renditions
            + extra.digit_eval_per_class
        ),
        presets.MOTION: 4 * sum(extra.clips_per_direction.values()),
        presets.DTMF: 12 * sum(extra.clips_per_key.values()),
        presets.TONE_MIX: sum(extra.mixtures.values()),
    }
    assert second.added == expected_new
    for name in presets.DATASETS:
        assert set(before[name]) < set(after[name])
        new = set(after[name]) - set(before[name])
        assert len(new) == expected_new[name]
        # Every listed file is on disk, the old ones byte for byte as in the earlier span.
        assert all(os.path.isfile(os.path.join(second.path, p)) for p in after[name])
    old = before[presets.MOTION][0]
    with (
        open(os.path.join(first.path, old), "rb") as a,
        open(os.path.join(second.path, old), "rb") as b,
    ):
        assert a.read() == b.read()
    # The CSV datasets list the new files too.
    with open(os.path.join(second.path, presets.DTMF, "train.csv")) as f:
        dtmf_rows = f.read().splitlines()[1:]
    assert len(dtmf_rows) == 12 * (2 + extra.clips_per_key["train"])
    assert all(
        os.path.isfile(os.path.join(second.path, presets.DTMF, r.split(",")[0])) for r in dtmf_rows
    )

    config = config_lib.ingest_config(config_lib.load(CONFIG))
    selection = ingest_spans.select(config, out)
    assert selection.span == 2
    assert selection.roots[presets.MOTION] == "span-2/motion"


def test_an_existing_span_is_refused(tmp_path):
    demo_spans.make_span(str(tmp_path), 0, "small")
    with pytest.raises(FileExistsError, match="span-0"):
        demo_spans.make_span(str(tmp_path), 0, "small")
