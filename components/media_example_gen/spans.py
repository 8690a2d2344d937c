"""Spans of a task's data, with TFX's semantics (tfx/components/example_gen/utils.py).

A task's `data.root` may name its span: `digits/span-{SPAN}` (digits, any width), optionally
`{VERSION}` too, or a date folder `digits/{YYYY}-{MM}-{DD}`, whose span number is the days since
1970-01-01 as TFX counts them. One run ingests one span: the one asked for
(`ingestion.span`), else the newest; within it, the newest version. Tasks whose root names no
span are read whole in every span. The Examples artifact carries the `span` and `version`
properties TFX's SpanRangeStrategy and LatestArtifactStrategy read.

Pure parsing over a listing; `list_spans` and `select` are the only functions that touch the
file system (through media.fs, so buckets work too).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
import re

from core.config import IngestConfig
from media import fs

SPAN_SPEC = "{SPAN}"
VERSION_SPEC = "{VERSION}"
DATE_SPECS = ("{YYYY}", "{MM}", "{DD}")
_EPOCH = datetime.date(1970, 1, 1)
_SPEC_RE = {
    SPAN_SPEC: r"(?P<span>\d+)",
    VERSION_SPEC: r"(?P<version>\d+)",
    "{YYYY}": r"(?P<year>\d{4})",
    "{MM}": r"(?P<month>\d{2})",
    "{DD}": r"(?P<day>\d{2})",
}


class SpanError(ValueError):
    """A span pattern is malformed, or the span asked for is not there."""


@dataclasses.dataclass(frozen=True)
class SpanSelection:
    """The span a run ingests: its number, version, and each task's root in it."""

    span: int
    version: int | None  # None: the roots name no version
    roots: dict[str, str]  # task -> data.root with the specs filled in
    spanned: bool  # False: no task names a span (span 0, today's behaviour)


def has_span(pattern: str) -> bool:
    return SPAN_SPEC in pattern or any(spec in pattern for spec in DATE_SPECS)


def check_pattern(pattern: str, where: str) -> None:
    """TFX's rules: {SPAN} or a full date, not both; {VERSION} only with a span."""
    dates = [spec in pattern for spec in DATE_SPECS]
    if SPAN_SPEC in pattern and any(dates):
        raise SpanError(f"{where}: {pattern!r} has both {SPAN_SPEC} and date specs")
    if any(dates) and not all(dates):
        raise SpanError(f"{where}: {pattern!r} needs all of {{YYYY}}, {{MM}} and {{DD}}")
    if VERSION_SPEC in pattern and not has_span(pattern):
        raise SpanError(f"{where}: {pattern!r} has {VERSION_SPEC} but no span")
    for spec in (SPAN_SPEC, VERSION_SPEC, *DATE_SPECS):
        if pattern.count(spec) > 1:
            raise SpanError(f"{where}: {pattern!r} names {spec} more than once")


def date_to_span(year: int, month: int, day: int) -> int:
    return (datetime.date(year, month, day) - _EPOCH).days


def span_to_date(span: int) -> tuple[int, int, int]:
    date = _EPOCH + datetime.timedelta(days=span)
    return date.year, date.month, date.day


def _regex(pattern: str) -> re.Pattern:
    parts = re.split(r"(\{SPAN\}|\{VERSION\}|\{YYYY\}|\{MM\}|\{DD\})", pattern.strip("/"))
    return re.compile("".join(_SPEC_RE.get(p, re.escape(p)) for p in parts))


def _glob(pattern: str) -> str:
    for spec in (SPAN_SPEC, VERSION_SPEC, *DATE_SPECS):
        pattern = pattern.replace(spec, "*")
    return pattern


def parse(pattern: str, relative_path: str) -> tuple[int, int | None] | None:
    """(span, version) of one path under the data root, or None when it does not match."""
    match = _regex(pattern).fullmatch(relative_path.strip("/"))
    if match is None:
        return None
    groups = match.groupdict()
    if groups.get("span") is not None:
        span = int(groups["span"])
    else:
        try:
            span = date_to_span(int(groups["year"]), int(groups["month"]), int(groups["day"]))
        except ValueError:
            return None  # 2024-13-40: not a date folder
    version = int(groups["version"]) if groups.get("version") is not None else None
    return span, version


def fill(pattern: str, span: int, version: int | None) -> str:
    """The root of one span (and version): the specs replaced by its numbers, as found."""
    if SPAN_SPEC not in pattern and any(spec in pattern for spec in DATE_SPECS):
        year, month, day = span_to_date(span)
        pattern = (
            pattern.replace("{YYYY}", f"{year:04d}")
            .replace("{MM}", f"{month:02d}")
            .replace("{DD}", f"{day:02d}")
        )
    return pattern.replace(SPAN_SPEC, str(span)).replace(VERSION_SPEC, str(version))


def list_spans(pattern: str, data_root: str) -> dict[tuple[int, int | None], str]:
    """{(span, version): root relative to data_root} of every folder matching `pattern`."""
    found: dict[tuple[int, int | None], str] = {}
    for path in fs.glob(fs.join(data_root, _glob(pattern))):
        relative = fs.relative(fs.normalize(path), data_root)
        key = parse(pattern, relative)
        if key is not None:
            found[key] = relative
    return found


def choose(
    listings: dict[str, dict[tuple[int, int | None], str]], span: int = -1
) -> tuple[int, int | None, dict[str, str]]:
    """Pure: the span to ingest (`span`, or the newest when -1), its newest version, each
    task's root. Every spanned task must have that span; versions are compared per span."""
    if not listings:
        raise SpanError("no task names a span")
    available = {task: {s for s, _ in found} for task, found in listings.items()}
    for task, spans in available.items():
        if not spans:
            raise SpanError(f"tasks.{task}.data.root: no folder matches its span pattern")
    target = max(max(spans) for spans in available.values()) if span < 0 else span
    missing = [task for task, spans in available.items() if target not in spans]
    if missing:
        raise SpanError(
            f"span {target} is missing for tasks {missing} (they have "
            f"{ {t: sorted(available[t]) for t in missing} })"
        )
    versions = {v for found in listings.values() for s, v in found if s == target}
    version = None if versions == {None} else max(v or 0 for v in versions)
    roots = {}
    for task, found in listings.items():
        options = {v: root for (s, v), root in found.items() if s == target}
        roots[task] = options.get(version, options[max(options, key=lambda v: v or 0)])
    return target, version, roots


def select(config: IngestConfig, data_root: str) -> SpanSelection:
    """The span this run ingests (ingestion.span, or the newest) and the tasks' roots in it."""
    listings = {}
    for task in config.tasks:
        where = f"tasks.{task.name}.data.root"
        check_pattern(task.data.root, where)
        if has_span(task.data.root):
            listings[task.name] = list_spans(task.data.root, data_root)
    roots = {task.name: task.data.root for task in config.tasks}
    if not listings:
        return SpanSelection(span=0, version=None, roots=roots, spanned=False)
    span, version, spanned_roots = choose(listings, config.ingestion.span)
    return SpanSelection(span, version, {**roots, **spanned_roots}, spanned=True)


def with_roots(config: IngestConfig, selection: SpanSelection) -> IngestConfig:
    """The config with each task's root in the selected span."""
    tasks = [
        dataclasses.replace(t, data=dataclasses.replace(t.data, root=selection.roots[t.name]))
        for t in config.tasks
    ]
    return dataclasses.replace(config, tasks=tasks)


def input_fingerprint(config: IngestConfig, data_root: str) -> str:
    """A digest of the selected span and of every file (path, size, mtime) below the tasks'
    roots in it: local runs pass it to MediaExampleGen, so TFX's cache key changes when a span
    or a file arrives (TFX's FileBasedExampleGen driver does the same with its fingerprint)."""
    selection = select(config, data_root)
    digest = hashlib.sha256(f"span={selection.span} version={selection.version}".encode())
    for task in config.tasks:
        root = fs.join(data_root, selection.roots[task.name])
        files = sorted(fs.walk_files(root)) if fs.isdir(root) else [root]
        for path in files:
            if fs.isfile(path):
                name = fs.relative(path, data_root)
                digest.update(f"\n{task.name}:{name}:{fs.size(path)}:{_mtime(path)}".encode())
    return digest.hexdigest()


def _mtime(path: str) -> int:
    """Nanosecond mtime of a local file (a rewrite of equal size changes it); 0 for buckets,
    whose listing then fingerprints by name and size."""
    return 0 if fs.is_remote(path) else os.stat(path).st_mtime_ns
