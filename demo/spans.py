"""`make-demo-data --span N`: demo data laid out by span, `DIR/span-N/<dataset>/...`.

The first span is a whole generation. A later span is, as in a daily export, the newest earlier
span plus about 10% new media (drawn from a seed of their own): so span N holds everything
seen so far, and the decode cache has only the new files to decode when span N is ingested.
`configs/demo_spans.yaml` points every task at `span-{SPAN}/<dataset>`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile

from demo import presets, writers
from demo.generate import DatasetResult, Progress, generate

SPAN_DIR = "span-{}"
_SPAN_RE = re.compile(r"span-(\d+)")
EXTRA_FRACTION = 0.1
# Spreads the new media's seeds far from the first span's (and from each other span's).
_SEED_STRIDE = 7919


def span_dir(out_dir: str, span: int) -> str:
    return os.path.join(out_dir, SPAN_DIR.format(span))


def existing_spans(out_dir: str) -> list[int]:
    """Span numbers of the complete span folders (those with a manifest) under out_dir."""
    if not os.path.isdir(out_dir):
        return []
    found = []
    for name in os.listdir(out_dir):
        match = _SPAN_RE.fullmatch(name)
        if match and os.path.exists(os.path.join(out_dir, name, presets.MANIFEST)):
            found.append(int(match.group(1)))
    return sorted(found)


def _fraction(count: int) -> int:
    return max(1, round(count * EXTRA_FRACTION))


def extra_scale(scale: presets.Scale) -> presets.Scale:
    """About EXTRA_FRACTION of `scale` in every class and split, at least one file each."""
    return presets.Scale(
        name=f"{scale.name}-extra",
        images_per_class=_fraction(scale.images_per_class),
        digit_eval_per_class=_fraction(scale.digit_eval_per_class),
        digit_renditions=scale.digit_renditions,
        clips_per_direction={k: _fraction(v) for k, v in scale.clips_per_direction.items()},
        clips_per_key={k: _fraction(v) for k, v in scale.clips_per_key.items()},
        mixtures={k: _fraction(v) for k, v in scale.mixtures.items()},
    )


def _renamed(rel: str, span: int) -> str:
    """A new file's path in the span: its name prefixed, so it cannot clash with earlier ones.

    tone_mix names are random YouTube-like ids (from their own seed), already unique, and the
    CSVs name them without a folder: those keep their names.
    """
    if rel.startswith(f"{presets.TONE_MIX}/"):
        return rel
    head, name = os.path.split(rel)
    return f"{head}/s{span}_{name}"


def _append_csv_rows(source: str, target: str, rename) -> int:
    """Appends source's data rows (not its header or `#` lines) to target, first field renamed."""
    with open(source) as f:
        lines = f.read().splitlines()
    with open(target) as f:
        header = f.readline().rstrip("\n")
    rows = [line for line in lines if line and not line.startswith("#") and line != header]
    with open(target, "a", newline="") as f:
        for line in rows:
            first, sep, rest = line.partition(",")
            f.write(f"{rename(first)}{sep}{rest}\n")
    return len(rows)


def _merge_extra(extra_dir: str, target: str, span: int) -> dict[str, int]:
    """Copies the extra generation's files into the span, renamed; appends its CSV rows."""
    with open(os.path.join(extra_dir, presets.MANIFEST)) as f:
        extra = json.load(f)
    with open(os.path.join(target, presets.MANIFEST)) as f:
        manifest = json.load(f)
    added: dict[str, int] = {}
    for name, dataset in extra["datasets"].items():
        for entry in dataset["files"]:
            new_rel = _renamed(entry["path"], span)
            destination = os.path.join(target, new_rel)
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            shutil.copy2(os.path.join(extra_dir, entry["path"]), destination)
            manifest["datasets"][name]["files"].append({**entry, "path": new_rel, "span": span})
        added[name] = len(dataset["files"])
    # dtmf CSV paths are relative to dtmf/ (audio/k1_0000.wav); tone_mix rows start with YTIDs.
    for split_csv in presets.DTMF_CSVS.values():
        _append_csv_rows(
            os.path.join(extra_dir, presets.DTMF, split_csv),
            os.path.join(target, presets.DTMF, split_csv),
            lambda p: _renamed(f"{presets.DTMF}/{p}", span).split("/", 1)[1],
        )
    for split_csv in presets.TONE_MIX_CSVS.values():
        _append_csv_rows(
            os.path.join(extra_dir, presets.TONE_MIX, split_csv),
            os.path.join(target, presets.TONE_MIX, split_csv),
            lambda ytid: ytid,
        )
    manifest.setdefault("spans", []).append({"span": span, "seed": extra["seed"], "added": added})
    writers.write_json(os.path.join(target, presets.MANIFEST), manifest)
    return added


@dataclasses.dataclass
class SpanResult:
    span: int
    base_span: int | None  # the earlier span copied into this one; None: a whole generation
    added: dict[str, int]  # dataset -> files new in this span
    path: str


def make_span(
    out_dir: str,
    span: int,
    scale: str = "small",
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[SpanResult, list[DatasetResult]]:
    """Writes DIR/span-<span>: a whole generation if no earlier span, else the newest earlier
    span plus about 10% new media. Refuses a span that exists or is older than the newest."""
    if span < 0:
        raise ValueError(f"--span: {span} is negative; spans are numbered from 0")
    if scale not in presets.SCALES:
        raise ValueError(f"scale: {scale!r} is not one of {sorted(presets.SCALES)}")
    target = span_dir(out_dir, span)
    if os.path.exists(target):
        raise FileExistsError(f"{target}: span {span} exists already; pick a new span number")
    earlier = [s for s in existing_spans(out_dir) if s < span]
    if not earlier:
        results = generate(target, scale, seed, progress=progress)
        added = {r.name: sum(r.files_per_split.values()) for r in results}
        return SpanResult(span, None, added, target), results
    base = earlier[-1]
    os.makedirs(out_dir, exist_ok=True)
    partial = target + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    # copy2 keeps mtimes, so the earlier files fingerprint (and decode-cache) as before.
    shutil.copytree(span_dir(out_dir, base), partial, copy_function=shutil.copy2)
    extra_seed = seed + _SEED_STRIDE * (span + 1)
    with tempfile.TemporaryDirectory(dir=out_dir) as extra_dir:
        results = generate(extra_dir, extra_scale(presets.SCALES[scale]), extra_seed)
        added = _merge_extra(extra_dir, partial, span)
    # Renamed last: a complete span folder appears at once, never half written.
    os.rename(partial, target)
    return SpanResult(span, base, added, target), results
