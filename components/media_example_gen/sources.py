"""Lists a task's clips from its raw data layout: pure parsing, no decoding.

`list_task_sources(task, data_root, eval_fraction)` reads the task's folders or CSV files and
returns the clips to decode, each with its labels and split, plus a quarantine record for every
row that cannot become a clip (missing file, path outside the data root, bad times, unknown
label). Layouts are described in `core/config.py` (`Layout`).

Determinism: the label vocabulary is `sorted(set(train labels))`, and when the dataset gives no
split, a hash of the media file's path (relative to the data root) decides, so every clip of one
video lands in the same split whatever the machine or run.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import posixpath

from core.config import DataSource, TaskData, narrowed
from core.features import EVAL, TRAIN
from media import errors, fs
from media.errors import MediaError, QuarantineRecord

# Split names used in datasets' own split columns, mapped to ours.
_SPLIT_ALIASES = {
    "train": TRAIN,
    "training": TRAIN,
    "trainval": TRAIN,
    "val": EVAL,
    "valid": EVAL,
    "validate": EVAL,
    "validation": EVAL,
    "eval": EVAL,
    "test": EVAL,
}


RECORDS_LAYOUT = "dmvr_records"


class SourceError(ValueError):
    """The task's data as a whole is unusable (no such folder, CSV without its columns)."""


@dataclasses.dataclass(frozen=True)
class SourceClip:
    """One stretch of one media file to decode (it may yield several clips when long)."""

    path: str  # media file, normalized (absolute for local files)
    start_s: float | None  # where to start decoding; None: the file's start
    end_s: float | None  # where to stop; None: the file's end
    labels: tuple[str, ...]
    caption: str
    split: str
    source_id: str  # how the dataset names this clip (path or CSV row), for messages
    # Where an already-cut file sits in its source video (AudioSet, Kinetics, VGGSound): added
    # to the record's timestamps, which are otherwise relative to the file.
    time_offset_s: float = 0.0


@dataclasses.dataclass
class TaskSources:
    task: str
    clips: list[SourceClip]
    quarantined: list[QuarantineRecord]
    vocabulary: list[str]
    # False (`tasks.<t>.labelled: false`): clips without labels, no vocabulary file.
    labelled: bool = True

    def label_indices(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.vocabulary)}


@dataclasses.dataclass(frozen=True)
class _Row:
    """A parsed entry before split assignment and label checks."""

    source_id: str
    split: str | None  # None: decided by hash
    path: str = ""
    labels: tuple[str, ...] = ()
    caption: str = ""
    start_s: float | None = None
    end_s: float | None = None
    time_offset_s: float = 0.0
    error: MediaError | None = None


# --------------------------------------------------------------------------------------------
# Shared helpers.


def hash_split(key: str, eval_fraction: float) -> str:
    """Deterministic split of one source file: the same key always lands in the same split."""
    value = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2.0**64
    return EVAL if value < eval_fraction else TRAIN


def _resolve(base: str, written: str, data_root: str) -> str:
    """The media path a dataset names, checked to lie in the data root and to exist."""
    path = fs.normalize(fs.join(base, written))
    if not fs.is_within(path, data_root):
        raise MediaError(
            errors.PATH_ESCAPES_ROOT, f"{written!r} resolves outside the data root", path
        )
    if not fs.isfile(path):
        raise MediaError(errors.MISSING_FILE, f"{written!r} does not exist", path)
    return path


def _parse_time(text: str, what: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise MediaError(errors.BAD_TIME_RANGE, f"{what} {text!r} is not a number") from None
    if value != value or value < 0:  # NaN or negative
        raise MediaError(errors.BAD_TIME_RANGE, f"{what} {text!r} must be >= 0")
    return value


def _check_range(start: float | None, end: float | None) -> None:
    if start is not None and end is not None and end <= start:
        raise MediaError(errors.BAD_TIME_RANGE, f"end {end:g} s is not after start {start:g} s")


def _split_of(value: str, where: str) -> str:
    split = _SPLIT_ALIASES.get(value.strip().lower())
    if split is None:
        raise MediaError(errors.BAD_ROW, f"{where}: unknown split {value!r}")
    return split


def _csv_files(data: DataSource, task_root: str) -> list[tuple[str, str | None]]:
    """(csv path, split) pairs; split None means "from the file's split column, else hash"."""
    if data.train and data.eval and data.train == data.eval:
        return [(fs.join(task_root, data.train), None)]
    if data.train:
        files = [(fs.join(task_root, data.train), TRAIN if data.eval else None)]
        if data.eval:
            files.append((fs.join(task_root, data.eval), EVAL))
        return files
    if data.eval:
        raise SourceError(f"{task_root}: data.eval is set but data.train is not")
    if fs.isfile(task_root):  # the task root is the CSV itself
        return [(task_root, None)]
    raise SourceError(f"{task_root}: a CSV layout needs data.train (the CSV file)")


def _read_csv_text(path: str) -> str:
    if not fs.isfile(path):
        raise SourceError(f"{path}: CSV file not found")
    return fs.read_text(path)


def _base_dir(task_root: str) -> str:
    """Folder that relative paths in a task's files are resolved against."""
    if fs.isfile(task_root):
        return (
            posixpath.dirname(task_root) if fs.is_remote(task_root) else os.path.dirname(task_root)
        )
    return task_root


# --------------------------------------------------------------------------------------------
# folders: <class>/<file> (any depth below the class folder), optional split folders/lists.


def _class_rows(folder: str, split: str | None, skip: set[str], data_root: str) -> list[_Row]:
    """Every file below `folder`/<class>/, labelled by its class folder."""
    if not fs.isdir(folder):
        raise SourceError(f"{folder}: folder not found")
    rows = []
    for name in fs.listdir(folder):
        class_dir = fs.join(folder, name)
        if name in skip or not fs.isdir(class_dir):
            continue  # split folders and loose files (READMEs, split lists) are not classes
        for path in fs.walk_files(class_dir):
            path = fs.normalize(path)
            rows.append(
                _Row(source_id=fs.relative(path, data_root), split=split, path=path, labels=(name,))
            )
    return rows


def _media_dir(data: DataSource, base: str) -> str:
    """Where a CSV layout's media are: `data.media_dir` under the task folder, else the folder."""
    return fs.join(base, data.media_dir) if data.media_dir else base


def _split_list_rows(list_path: str, base: str, split: str, data_root: str) -> list[_Row]:
    """UCF101-style split list: `<class>/<file> [index]` per line, relative to the task root."""
    rows = []
    for lineno, line in enumerate(fs.read_text(list_path).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        written = line.split()[0]
        source_id = f"{os.path.basename(list_path)}:{lineno}"
        hint = fs.normalize(fs.join(base, written))
        parts = written.replace("\\", "/").split("/")
        try:
            if len(parts) < 2:
                raise MediaError(errors.BAD_ROW, f"{written!r} has no class folder")
            path = _resolve(base, written, data_root)
            rows.append(_Row(source_id=source_id, split=split, path=path, labels=(parts[0],)))
        except MediaError as e:
            rows.append(_Row(source_id, split, e.path or hint, error=e))
    return rows


def _file_rows(folder: str, split: str | None, skip: set[str], data_root: str) -> list[_Row]:
    """Every file below `folder` (sub-folders in `skip` left out), with no label."""
    if not fs.isdir(folder):
        raise SourceError(f"{folder}: folder not found")
    rows = []
    for name in fs.listdir(folder):
        if name in skip or name.startswith("."):
            continue
        here = fs.join(folder, name)
        for path in fs.walk_files(here) if fs.isdir(here) else [here]:
            path = fs.normalize(path)
            rows.append(_Row(source_id=fs.relative(path, data_root), split=split, path=path))
    return rows


def _unlabelled_folder_rows(data: DataSource, task_root: str, data_root: str) -> list[_Row]:
    """An unlabelled task's folders: every file below the task folder (any depth, no class
    folders), or below its `train` / `eval` sub-folders; with only `eval`, the files beside it
    are the train split; with neither, a hash decides."""
    specs = {TRAIN: data.train, EVAL: data.eval}
    for split, value in specs.items():
        if value and fs.isfile(fs.join(task_root, value)):
            raise SourceError(
                f"{fs.join(task_root, value)}: an unlabelled folders task takes {split} "
                "sub-folders, not split lists"
            )
    dirs = {s: fs.join(task_root, v) for s, v in specs.items() if v}
    if set(dirs) == {TRAIN, EVAL}:
        return [r for s, p in dirs.items() for r in _file_rows(p, s, set(), data_root)]
    if TRAIN in dirs:
        return _file_rows(dirs[TRAIN], None, set(), data_root)
    if EVAL in dirs:
        skip = {data.eval.strip("/").split("/")[0]}
        return _file_rows(dirs[EVAL], EVAL, set(), data_root) + _file_rows(
            task_root, TRAIN, skip, data_root
        )
    return _file_rows(task_root, None, set(), data_root)


def _folder_rows(data: DataSource, task_root: str, data_root: str) -> list[_Row]:
    specs = {TRAIN: data.train, EVAL: data.eval}
    lists = {
        s: fs.join(task_root, v) for s, v in specs.items() if v and fs.isfile(fs.join(task_root, v))
    }
    dirs = {s: fs.join(task_root, v) for s, v in specs.items() if v and s not in lists}
    if lists and dirs:
        raise SourceError(f"{task_root}: data.train and data.eval must both be folders or lists")
    if lists:
        rows = [r for s, p in lists.items() for r in _split_list_rows(p, task_root, s, data_root)]
        missing = [s for s in specs if s not in lists]
        if missing:  # the other split is every class file the given list does not name
            listed = {r.path for r in rows}
            # A folder holding the lists themselves (UCF101's ucfTrainTestlist/) is no class.
            skip = {v.replace("\\", "/").split("/")[0] for v in specs.values() if "/" in v}
            rows += [
                dataclasses.replace(r, split=missing[0])
                for r in _class_rows(task_root, None, skip, data_root)
                if r.path not in listed
            ]
        return rows
    if set(dirs) == {TRAIN, EVAL}:
        return [r for s, p in dirs.items() for r in _class_rows(p, s, set(), data_root)]
    if TRAIN in dirs:  # only a train folder: hash-split it
        return _class_rows(dirs[TRAIN], None, set(), data_root)
    if EVAL in dirs:  # only an eval folder: the class folders beside it are the train split
        skip = {data.eval.strip("/").split("/")[0]}
        return _class_rows(dirs[EVAL], EVAL, set(), data_root) + _class_rows(
            task_root, TRAIN, skip, data_root
        )
    return _class_rows(task_root, None, set(), data_root)


# --------------------------------------------------------------------------------------------
# dmvr_csv: video_path,start,end[,label][,caption] with a header; `path` accepted too.


def _dmvr_row(
    cells: dict[str, str], source_id: str, split: str | None, media_base: str, data_root: str
) -> _Row:
    if not cells["path"]:
        raise MediaError(errors.BAD_ROW, "empty path")
    start = _parse_time(cells.get("start", ""), "start")
    end = _parse_time(cells.get("end", ""), "end")
    _check_range(start, end)
    label = cells.get("label", "")
    return _Row(
        source_id=source_id,
        split=split,
        path=_resolve(media_base, cells["path"], data_root),
        labels=(label,) if label else (),
        caption=cells.get("caption", ""),
        start_s=start,
        end_s=end,
    )


def _dmvr_csv_rows(data: DataSource, task_root: str, data_root: str) -> list[_Row]:
    base = _base_dir(task_root)
    media_base = _media_dir(data, base)
    rows = []
    for csv_path, split in _csv_files(data, task_root):
        reader = csv.DictReader(io.StringIO(_read_csv_text(csv_path)))
        columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        path_col = columns.get("video_path") or columns.get("path")
        if path_col is None or "start" not in columns or "end" not in columns:
            raise SourceError(
                f"{csv_path}: a dmvr_csv file needs a header with video_path (or path), start "
                f"and end columns; found {list(columns)}"
            )
        name = os.path.basename(csv_path)
        for lineno, record in enumerate(reader, 2):
            cells = {key: (record.get(column) or "").strip() for key, column in columns.items()}
            cells["path"] = (record.get(path_col) or "").strip()
            source_id = f"{name}:{lineno}"
            hint = fs.normalize(fs.join(media_base, cells["path"])) if cells["path"] else source_id
            try:
                rows.append(_dmvr_row(cells, source_id, split, media_base, data_root))
            except MediaError as e:
                rows.append(_Row(source_id, split, e.path or hint, error=e))
    return rows


# --------------------------------------------------------------------------------------------
# Clip-id layouts (AudioSet, Kinetics, VGGSound): rows name a clip id; the already-cut media
# file is found in media_dir by its stem, `<id>.<ext>` or `<id>_<anything>.<ext>`.


class MediaIndex:
    """Finds a clip's media file by id among the files below a folder (listed once)."""

    def __init__(self, folder: str):
        if not fs.isdir(folder):
            raise SourceError(f"{folder}: media folder not found")
        self.folder = folder
        self._exact: dict[str, list[str]] = {}
        self._by_prefix: dict[str, list[tuple[str, str]]] = {}
        for path in fs.walk_files(folder):
            stem = os.path.splitext(posixpath.basename(path))[0]
            self._exact.setdefault(stem, []).append(path)
            for i, char in enumerate(stem):
                if char == "_" and i > 0:
                    self._by_prefix.setdefault(stem[:i], []).append((stem[i + 1 :], path))

    def find(self, clip_id: str, start_s: float | None = None) -> str:
        exact = self._exact.get(clip_id, [])
        if len(exact) == 1:
            return fs.normalize(exact[0])
        candidates = (
            [(rest, p) for rest, p in self._by_prefix.get(clip_id, [])]
            if not exact
            else [("", p) for p in exact]
        )
        if len(candidates) > 1 and start_s is not None:
            # Downloaders append the start second (Kinetics: <id>_000010_000020).
            timed = [(r, p) for r, p in candidates if _leading_int(r) == int(start_s)]
            candidates = timed or candidates
        if len(candidates) == 1:
            return fs.normalize(candidates[0][1])
        if not candidates:
            raise MediaError(
                errors.MISSING_FILE,
                f"no media file for clip id {clip_id!r} ({clip_id}.* or {clip_id}_*.*)",
                fs.join(self.folder, clip_id),
            )
        names = sorted(posixpath.basename(p) for _, p in candidates)
        raise MediaError(
            errors.AMBIGUOUS_MEDIA,
            f"clip id {clip_id!r} matches {len(names)} files: {names[:3]}",
            fs.join(self.folder, clip_id),
        )


def _leading_int(text: str) -> int | None:
    digits = text.split("_")[0]
    try:
        return int(digits)
    except ValueError:
        return None


def _id_row(
    source_id: str,
    split: str | None,
    media: MediaIndex,
    clip_id: str,
    start: str,
    end: str,
    labels: tuple[str, ...],
    data_root: str,
) -> _Row:
    try:
        if not clip_id:
            raise MediaError(errors.BAD_ROW, "empty clip id")
        start_s = _parse_time(start, "start")
        end_s = _parse_time(end, "end")
        _check_range(start_s, end_s)
        path = media.find(clip_id, start_s)
        if not fs.is_within(path, data_root):
            raise MediaError(errors.PATH_ESCAPES_ROOT, "media_dir is outside the data root", path)
    except MediaError as e:
        return _Row(source_id, split, e.path or fs.join(media.folder, clip_id), error=e)
    # The file is the already-cut segment: decode all of it, keep the CSV time as the offset.
    return _Row(source_id, split, path, labels, time_offset_s=start_s or 0.0)


def _audioset_label_names(path: str) -> dict[str, str]:
    """class_labels_indices.csv: index,mid,display_name -> {mid: display_name}."""
    reader = csv.DictReader(io.StringIO(_read_csv_text(path)))
    columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
    if "mid" not in columns or "display_name" not in columns:
        raise SourceError(f"{path}: needs mid and display_name columns; found {list(columns)}")
    return {
        r[columns["mid"]].strip(): r[columns["display_name"]].strip()
        for r in reader
        if r.get(columns["mid"])
    }


def _audioset_rows(data: DataSource, task_root: str, data_root: str) -> list[_Row]:
    base = _base_dir(task_root)
    names = _audioset_label_names(fs.join(base, data.label_names)) if data.label_names else None
    media = MediaIndex(_media_dir(data, base))
    rows = []
    for csv_path, split in _csv_files(data, task_root):
        name = os.path.basename(csv_path)
        lines = fs.read_text(csv_path).splitlines()
        for lineno, fields in enumerate(csv.reader(lines, skipinitialspace=True), 1):
            if not fields or fields[0].startswith("#") or fields[0].strip().upper() == "YTID":
                continue
            source_id = f"{name}:{lineno}"
            if len(fields) < 4:
                error = MediaError(errors.BAD_ROW, f"expected 4 fields, got {len(fields)}")
                rows.append(_Row(source_id, split, source_id, error=error))
                continue
            clip_id, start, end, label_ids = (f.strip() for f in fields[:4])
            mids = sorted({m.strip() for m in label_ids.split(",") if m.strip()})
            unknown = [m for m in mids if names is not None and m not in names]
            if unknown:
                error = MediaError(
                    errors.UNKNOWN_LABEL, f"label ids {unknown} not in {data.label_names}"
                )
                rows.append(_Row(source_id, split, fs.join(media.folder, clip_id), error=error))
                continue
            labels = tuple(sorted({names[m] if names is not None else m for m in mids}))
            rows.append(_id_row(source_id, split, media, clip_id, start, end, labels, data_root))
    return rows


def _kinetics_rows(data: DataSource, task_root: str, data_root: str) -> list[_Row]:
    """label,youtube_id,time_start,time_end,split[,is_cc] (the test CSV may lack label)."""
    base = _base_dir(task_root)
    media = MediaIndex(_media_dir(data, base))
    rows = []
    for csv_path, split in _csv_files(data, task_root):
        reader = csv.DictReader(io.StringIO(_read_csv_text(csv_path)))
        columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        if not {"youtube_id", "time_start", "time_end"} <= set(columns):
            raise SourceError(
                f"{csv_path}: a kinetics_csv file needs youtube_id, time_start and time_end "
                f"columns; found {list(columns)}"
            )
        name = os.path.basename(csv_path)
        for lineno, r in enumerate(reader, 2):
            source_id = f"{name}:{lineno}"
            cells = {key: (r.get(column) or "").strip() for key, column in columns.items()}
            get = lambda col, cells=cells: cells.get(col, "")
            row_split = split
            if row_split is None and get("split"):
                try:
                    row_split = _split_of(get("split"), source_id)
                except MediaError as e:
                    rows.append(_Row(source_id, None, source_id, error=e))
                    continue
            label = get("label")
            rows.append(
                _id_row(
                    source_id,
                    row_split,
                    media,
                    get("youtube_id"),
                    get("time_start"),
                    get("time_end"),
                    (label,) if label else (),
                    data_root,
                )
            )
    return rows


def _vggsound_rows(data: DataSource, task_root: str, data_root: str) -> list[_Row]:
    """No header: youtube_id,start_seconds,label,train|test."""
    base = _base_dir(task_root)
    media = MediaIndex(_media_dir(data, base))
    rows = []
    for csv_path, split in _csv_files(data, task_root):
        name = os.path.basename(csv_path)
        lines = fs.read_text(csv_path).splitlines()
        for lineno, fields in enumerate(csv.reader(lines), 1):
            if not fields or not "".join(fields).strip():
                continue
            source_id = f"{name}:{lineno}"
            if len(fields) < 3:
                error = MediaError(errors.BAD_ROW, f"expected 4 fields, got {len(fields)}")
                rows.append(_Row(source_id, split, source_id, error=error))
                continue
            clip_id, start, label = (f.strip() for f in fields[:3])
            row_split = split
            if row_split is None and len(fields) > 3 and fields[3].strip():
                try:
                    row_split = _split_of(fields[3], source_id)
                except MediaError as e:
                    rows.append(_Row(source_id, None, source_id, error=e))
                    continue
            labels = (label,) if label else ()
            rows.append(_id_row(source_id, row_split, media, clip_id, start, "", labels, data_root))
    return rows


_LAYOUTS = {
    "folders": _folder_rows,
    "dmvr_csv": _dmvr_csv_rows,
    "audioset_csv": _audioset_rows,
    "kinetics_csv": _kinetics_rows,
    "vggsound_csv": _vggsound_rows,
}


# --------------------------------------------------------------------------------------------
# Public entry point.


def _quarantine(task: str, row: _Row, error: MediaError) -> QuarantineRecord:
    return QuarantineRecord(
        file=row.path or row.source_id,
        task=task,
        reason=error.reason,
        detail=f"{row.source_id}: {error.detail}" if row.source_id != row.path else error.detail,
        split=row.split or "",
    )


def assign_splits(task: str, rows: list[_Row], data_root: str, eval_fraction: float) -> TaskSources:
    """Hash-splits rows without a split, builds the vocabulary, quarantines unknown labels."""
    quarantined, good = [], []
    for row in rows:
        if row.error is not None:
            quarantined.append(_quarantine(task, row, row.error))
            continue
        split = row.split or hash_split(fs.relative(row.path, data_root), eval_fraction)
        good.append((row, split))
    vocabulary = sorted({label for r, split in good if split == TRAIN for label in r.labels})
    known = set(vocabulary)
    clips = []
    for row, split in good:
        unknown = [label for label in row.labels if label not in known]
        if unknown:
            error = MediaError(errors.UNKNOWN_LABEL, f"labels {unknown} never occur in train")
            quarantined.append(_quarantine(task, row, error))
            continue
        clips.append(narrowed(SourceClip, row, split=split))
    return TaskSources(task=task, clips=clips, quarantined=quarantined, vocabulary=vocabulary)


# --------------------------------------------------------------------------------------------
# dmvr_records: existing DMVR TFRecord shards. One SourceClip per shard file; the workers
# read, validate and re-key its records (media.dmvr.rekey_record).


def record_name(path: str, index: int) -> str:
    """How quarantine files and messages name one record: `<file>#<index in the file>`."""
    return f"{path}#{index}"


def record_split(serialized: bytes, where: str, data_root: str, eval_fraction: float) -> str:
    """The split of a record whose file has none: a hash of its `video/filename` (clips of one
    video stay together, as for raw media), else of its name (`where`)."""
    from media import dmvr

    try:
        filename = dmvr.parse_sequence_example(serialized).filename
    except Exception:  # an unparseable record is quarantined by the worker; any split will do
        filename = ""
    return hash_split(filename or fs.relative(where, data_root), eval_fraction)


def _record_files(data: DataSource, task_root: str, data_root: str) -> list[tuple[str, str]]:
    """(shard, split) pairs; split "" means "per record, by hash"."""
    if data.train and data.train == data.eval:
        raise SourceError(f"{task_root}: train and eval name the same files {data.train!r}")
    patterns = [(data.train or "*", TRAIN if data.eval else "")]
    if data.eval:
        patterns.append((data.eval, EVAL))
    files = []
    for pattern, split in patterns:
        found = sorted(p for p in fs.glob(fs.join(task_root, pattern)) if fs.isfile(p))
        if not found:
            raise SourceError(f"{task_root}: no record files match {pattern!r}")
        for path in found:
            if not fs.is_within(fs.normalize(path), data_root):
                raise SourceError(f"{path}: outside the data root")
            files.append((fs.normalize(path), split))
    return files


def _list_record_sources(
    task: TaskData, task_root: str, data_root: str, eval_fraction: float, labels: bool = True
):
    """The shards of a dmvr_records task and the vocabulary: sorted label texts of its train
    records (the driver reads those records' labels once, before the pipeline runs; not at
    all with `labels` off, for an unlabelled task)."""
    from media import dmvr

    shards = _record_files(task.data, task_root, data_root)
    texts: set[str] = set()
    for path, split in shards:
        if split == EVAL or not labels:
            continue
        for index, serialized in enumerate(dmvr.iter_tfrecord(path)):
            where = record_name(path, index)
            if split or record_split(serialized, where, data_root, eval_fraction) == TRAIN:
                texts.update(dmvr.record_label_texts(serialized))
    clips = [
        SourceClip(path, None, None, (), "", split, fs.relative(path, data_root))
        for path, split in shards
    ]
    return TaskSources(task=task.name, clips=clips, quarantined=[], vocabulary=sorted(texts))


def list_task_sources(task: TaskData, data_root: str, eval_fraction: float) -> TaskSources:
    """All clips of one task with labels and splits, and the rows that cannot be clips.
    dmvr_records: one clip per record file, with the vocabulary of its train records.
    An unlabelled task (`labelled: false`): its clips carry no labels (a CSV's label column,
    when it has one, is ignored) and it has no vocabulary."""
    task_root = fs.join(data_root, task.data.root)
    if not fs.exists(task_root):
        raise SourceError(f"tasks.{task.name}.data.root: {task_root} does not exist")
    if task.data.layout == RECORDS_LAYOUT:
        if not task.labelled:
            listing = _list_record_sources(task, task_root, data_root, eval_fraction, False)
            return dataclasses.replace(listing, labelled=False)
        return _list_record_sources(task, task_root, data_root, eval_fraction)
    if not task.labelled:
        layout = (
            _unlabelled_folder_rows
            if task.data.layout == "folders"
            else _unlabelled(_LAYOUTS[task.data.layout])
        )
        rows = layout(task.data, task_root, data_root)
        return dataclasses.replace(
            assign_splits(task.name, rows, data_root, eval_fraction), labelled=False
        )
    rows = _LAYOUTS[task.data.layout](task.data, task_root, data_root)
    return assign_splits(task.name, rows, data_root, eval_fraction)


def _unlabelled(layout):
    """A CSV layout's rows with their labels dropped."""

    def rows(data: DataSource, task_root: str, data_root: str) -> list[_Row]:
        return [dataclasses.replace(r, labels=()) for r in layout(data, task_root, data_root)]

    return rows
