"""The Beam pipeline: list sources (redistributed) -> decode -> encode -> TFRecords + quarantine.

`ingest(config, output_dir, quarantine_dir, beam_pipeline_args, data_root=...)` is the one entry
point, used by `polyvit ingest` and by the MediaExampleGen TFX executor. `config` is the
ingestion's slice of the config, a `core.config.IngestConfig` (the tasks' data and the
`ingestion` section): nothing else of the config reaches it. It writes

    <output_dir>/Split-<split>/<task>-SSSSS-of-NNNNN.tfrecord   TFRecords of DMVR SequenceExamples
                                                         (`.gz` with ingestion.compression=gzip)
    <output_dir>/labels/<task>.txt                       label vocabulary, one per line, sorted
    <quarantine_dir>/quarantine.jsonl                    one JSON line per refused input
    <quarantine_dir>/counts.jsonl                        clips written per task and split, and
                                                         refusals per task and reason
    <quarantine_dir>/processed.txt                       the number of every input the workers
                                                         finished, one per line (its check below)

and returns an `IngestSummary`. Bad inputs never stop the run: the caller decides with
`summary.check()`, which fails only when the bad fraction passes `ingestion.max_bad_fraction`,
after everything good has been written. An input that comes out neither written nor quarantined
(a runner that loses elements) fails the run, naming it: nothing is lost silently. The same
counts are Beam metrics (namespace `polyvit.ingest`), so runner UIs (Dataflow, Flink, Spark)
show them while the job runs.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import threading
import time
import uuid

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from components.media_example_gen import decode_cache, sources
from core import features
from core.config import IngestConfig, Ingestion, TaskData
from media import decode, dmvr, errors, fs
from media.errors import MediaError, QuarantineRecord

METRICS_NAMESPACE = "polyvit.ingest"
log = logging.getLogger("polyvit.ingest")
# How often the driver logs the workers' progress.
PROGRESS_SECONDS = 10.0
QUARANTINE_FILE = "quarantine.jsonl"
COUNTS_FILE = "counts.jsonl"
PROCESSED_FILE = "processed.txt"
_QUARANTINE_TAG = "quarantine"
_REUSED_TAG = "reused"  # one task name per file whose clips came from the decode cache
_READ_TAG = "read"  # dmvr_records: one task name per record read (the records are the inputs)
_DONE_TAG = "done"  # WorkItem.number of each item once its clips or its refusal are out
# How many refused files the summary (and a failure message) names.
_FIRST_BAD = 10


class IngestError(RuntimeError):
    """Too many bad inputs (or unusable output): the message names files and reasons."""


@dataclasses.dataclass(frozen=True)
class WorkItem:
    """One source clip with what the workers need to decode and label it."""

    task: str
    modality: str
    clip: sources.SourceClip
    label_indices: tuple[int, ...]
    # dmvr_records: the clip is a shard of existing records, validated and re-keyed by these.
    rules: dmvr.RekeyRules | None = None
    number: int = 0  # its place in the run's list of items (the check that none is lost)


@dataclasses.dataclass
class IngestSummary:
    output_dir: str
    quarantine_dir: str
    max_bad_fraction: float
    inputs: int = 0  # source clips listed (good and bad)
    written: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)  # (task, split)
    quarantined: dict[str, int] = dataclasses.field(default_factory=dict)  # reason -> inputs
    quarantined_by_task: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    first_bad: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (file, reason)
    vocabularies: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    reused: int = 0  # media files whose clips came from the decode cache, not decoded again

    @property
    def clips_written(self) -> int:
        return sum(self.written.values())

    @property
    def bad_inputs(self) -> int:
        return sum(self.quarantined.values())

    @property
    def bad_fraction(self) -> float:
        return self.bad_inputs / self.inputs if self.inputs else 0.0

    @property
    def quarantine_file(self) -> str:
        return fs.join(self.quarantine_dir, QUARANTINE_FILE)

    def properties(self) -> dict[str, int]:
        """Flat counts for artifact properties: written/<task>/<split>, quarantined/<reason>."""
        props = {f"written/{t}/{s}": n for (t, s), n in sorted(self.written.items())}
        props.update({f"quarantined/{r}": n for r, n in sorted(self.quarantined.items())})
        props["inputs"] = self.inputs
        return props

    def describe(self) -> str:
        per_split: collections.Counter[str] = collections.Counter()
        for (_, split), n in self.written.items():
            per_split[split] += n
        splits = ", ".join(f"{s} {n}" for s, n in sorted(per_split.items())) or "none"
        text = f"wrote {self.clips_written} clips ({splits}) from {self.inputs} inputs"
        if self.reused:
            text += f" ({self.reused} files reused from the decode cache)"
        if self.bad_inputs:
            reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.quarantined.items()))
            text += f"; quarantined {self.bad_inputs} ({reasons}), listed in {self.quarantine_file}"
        return text

    def check(self) -> None:
        """Raises IngestError naming files when more than max_bad_fraction of inputs were bad."""
        if self.bad_fraction <= self.max_bad_fraction:
            return
        named = "; ".join(f"{file}: {reason}" for file, reason in self.first_bad)
        more = self.bad_inputs - len(self.first_bad)
        raise IngestError(
            f"{self.bad_inputs} of {self.inputs} inputs ({self.bad_fraction:.1%}) were bad, more "
            f"than ingestion.max_bad_fraction={self.max_bad_fraction:g}. First: {named}"
            + (f" (and {more} more)" if more > 0 else "")
            + f". All are listed with details in {self.quarantine_file}."
        )


# --------------------------------------------------------------------------------------------
# Pure steps (tested without Beam).


def clip_metadata(item: WorkItem, clip: decode.DecodedClip, data_root: str) -> dmvr.ClipMetadata:
    offset = item.clip.time_offset_s
    return dmvr.ClipMetadata(
        task=item.task,
        filename=fs.relative(item.clip.path, data_root),  # portable: no machine paths
        start_us=round((clip.start_s + offset) * 1e6),
        end_us=round((clip.end_s + offset) * 1e6),
        labels=item.clip.labels,
        label_indices=item.label_indices,
        caption=item.clip.caption,
    )


def work_items(task: TaskData, listing: sources.TaskSources) -> list[WorkItem]:
    if task.data.layout == sources.RECORDS_LAYOUT:
        rules = dmvr.RekeyRules(
            task.name,
            task.modality,
            tuple(listing.vocabulary),
            task.data.sample_rate,
            labelled=task.labelled,
        )
        return [WorkItem(task.name, task.modality, clip, (), rules) for clip in listing.clips]
    index = listing.label_indices()
    return [
        WorkItem(task.name, task.modality, clip, tuple(index[label] for label in clip.labels))
        for clip in listing.clips
    ]


# --------------------------------------------------------------------------------------------
# Progress: each worker writes its running counts to a small file; the driver sums them.


class _ProgressFile:
    """A worker's cumulative counts, rewritten at most once a second (any file system)."""

    def __init__(self, folder: str):
        self.path = fs.join(folder, f"{uuid.uuid4().hex}.json")
        self.counts: collections.Counter[str] = collections.Counter()
        self._last = 0.0

    def add(self, **counts: int) -> None:
        self.counts.update(counts)
        if time.monotonic() - self._last > 1.0:
            self.flush()

    def flush(self) -> None:
        self._last = time.monotonic()
        try:
            fs.write_text(self.path, json.dumps(self.counts))
        except OSError:
            pass  # progress is best-effort; the real counts come from the pipeline's outputs


class _ProgressLogger(threading.Thread):
    """Driver side: sums the workers' progress files and logs a progress line every
    `PROGRESS_SECONDS` (runs shorter than that log none)."""

    def __init__(self, folder: str, total: int, listed_bad: int):
        super().__init__(daemon=True)
        self.folder, self.total, self.listed_bad = folder, total, listed_bad
        self._done = threading.Event()
        self._start = time.monotonic()

    def line(self) -> str:
        counts: collections.Counter[str] = collections.Counter()
        for path in fs.glob(fs.join(self.folder, "*.json")):
            try:
                counts.update(json.loads(fs.read_text(path)))
            except (OSError, ValueError):
                continue  # being rewritten: read it next time
        elapsed = max(time.monotonic() - self._start, 1e-6)
        done, clips = counts["inputs"], counts["clips"]
        rate = clips / elapsed
        eta = (self.total - done) * elapsed / done if done else float("nan")
        return (
            f"ingest: {done}/{self.total} inputs, {clips} clips written, "
            f"{counts['quarantined'] + self.listed_bad} quarantined, {rate:.1f} clips/s"
            + (f", ETA {eta:.0f} s" if done else "")
        )

    def run(self) -> None:
        while not self._done.wait(PROGRESS_SECONDS):
            log.info("%s", self.line())

    def stop(self) -> None:
        self._done.set()
        self.join()


# --------------------------------------------------------------------------------------------
# Beam transforms.


class DecodeClipsFn(beam.DoFn):
    """WorkItem -> (task, split, serialized SequenceExample) per clip; a refused input -> a
    QuarantineRecord. A shard of existing records (dmvr_records) -> the same per good record
    (re-keyed), a QuarantineRecord per bad one, and one `read` count per record.

    Decoding and encoding are one step, so that a record's bytes go from here straight to the
    writer in the same fused stage: merging two record outputs with a Flatten made Beam's
    portable runner materialize every record (megabytes each) in the driver and send it back."""

    def __init__(
        self,
        ingestion: Ingestion,
        progress_dir: str = "",
        data_root: str = "",
        cache_dir: str = "",
    ):
        self.ingestion = ingestion
        self.progress_dir = progress_dir
        self.data_root = data_root
        self.cache_dir = cache_dir
        self._progress = None
        self._cache = None

    def setup(self):
        if self.progress_dir:
            self._progress = _ProgressFile(self.progress_dir)
        if self.cache_dir:
            self._cache = decode_cache.DecodeCache(self.cache_dir)

    def process(self, item: WorkItem):
        yield from self._records(item) if item.rules is not None else self._media(item)
        yield beam.pvalue.TaggedOutput(_DONE_TAG, item.number)

    def _media(self, item: WorkItem):
        clip = item.clip
        produced = 0
        try:
            # The per-file decode, through the decode cache when there is one.
            clips, reused = decode_cache.cached_clips(
                self._cache,
                decode.iter_clips,
                clip.path,
                item.modality,
                self.ingestion,
                clip.start_s,
                clip.end_s,
            )
            if reused:
                yield beam.pvalue.TaggedOutput(_REUSED_TAG, item.task)
            for decoded in clips:
                produced += 1
                self._count(clips=1)
                yield encode_clip(item, decoded, self.data_root, self.ingestion.sample_rate)
        except MediaError as e:
            detail = e.detail + (f" (after {produced} good clips)" if produced else "")
            self._count(quarantined=1)
            yield beam.pvalue.TaggedOutput(
                _QUARANTINE_TAG,
                QuarantineRecord(clip.path, item.task, e.reason, detail, clip.split),
            )
        self._count(inputs=1)

    def _records(self, item: WorkItem):
        path, index = item.clip.path, -1
        try:
            for index, serialized in enumerate(dmvr.iter_tfrecord(path)):
                where = sources.record_name(path, index)
                split = item.clip.split or sources.record_split(
                    serialized, where, self.data_root, self.ingestion.eval_fraction
                )
                yield beam.pvalue.TaggedOutput(_READ_TAG, item.task)
                try:
                    assert item.rules is not None
                    rekeyed = dmvr.rekey_record(serialized, item.rules, where)
                except MediaError as e:
                    self._count(quarantined=1)
                    yield beam.pvalue.TaggedOutput(
                        _QUARANTINE_TAG,
                        QuarantineRecord(where, item.task, e.reason, e.detail, split),
                    )
                    continue
                self._count(clips=1)
                Metrics.counter(METRICS_NAMESPACE, f"written/{item.task}/{split}").inc()
                yield item.task, split, rekeyed
        except Exception as e:  # noqa: BLE001 - TensorFlow's DataLossError and I/O errors alike
            self._count(quarantined=1)
            yield beam.pvalue.TaggedOutput(_READ_TAG, item.task)
            yield beam.pvalue.TaggedOutput(
                _QUARANTINE_TAG,
                QuarantineRecord(
                    path,
                    item.task,
                    errors.CORRUPT_CONTAINER,
                    f"the TFRecord file breaks after {index + 1} records: {e}",
                    item.clip.split,
                ),
            )
        self._count(inputs=1)

    def _count(self, **counts: int) -> None:
        if self._progress is not None:
            self._progress.add(**counts)

    def finish_bundle(self):
        if self._progress is not None:
            self._progress.flush()


def encode_clip(
    item: WorkItem, clip: decode.DecodedClip, data_root: str, sample_rate: int
) -> tuple[str, str, bytes]:
    if item.modality == "video":
        # DMVR's audio-visual readers need a waveform in every video record: silence, marked.
        clip = dmvr.with_silent_audio(clip, sample_rate)
    example = dmvr.build_sequence_example(clip, clip_metadata(item, clip, data_root))
    Metrics.counter(METRICS_NAMESPACE, f"written/{item.task}/{item.clip.split}").inc()
    return item.task, item.clip.split, example.SerializeToString()


def record_files(compression: str) -> tuple[str, str]:
    """(file suffix, Beam compression type) of `ingestion.compression`. The compression is
    named explicitly: Beam's AUTO would also pick it from the suffix, but saying it keeps the
    two from drifting apart."""
    beam_type = CompressionTypes.GZIP if compression == "gzip" else CompressionTypes.UNCOMPRESSED
    return features.record_suffix(compression), beam_type


def _count_quarantined(record: QuarantineRecord) -> QuarantineRecord:
    Metrics.counter(METRICS_NAMESPACE, f"quarantined/{record.task}/{record.reason}").inc()
    return record


def _tally_line(kv) -> str:
    (kind, task, key), count = kv
    return json.dumps({"kind": kind, "task": task, "key": key, "count": count}, sort_keys=True)


def build_pipeline(
    root: beam.Pipeline,
    items: list[WorkItem],
    listed_bad: list[QuarantineRecord],
    ingestion: Ingestion,
    task_names: list[str],
    data_root: str,
    output_dir: str,
    quarantine_dir: str,
    progress_dir: str = "",
    cache_dir: str = "",
) -> None:
    """Adds the ingestion transforms to `root` (no I/O happens until the pipeline runs)."""
    # Create already redistributes its elements (a Reshuffle inside it, for more than one):
    # a second Reshuffle would only add a grouping stage and its round trips to the workers.
    decoded = (
        root
        | "ListSources" >> beam.Create(items)
        | "Decode"
        >> beam.ParDo(DecodeClipsFn(ingestion, progress_dir, data_root, cache_dir)).with_outputs(
            _QUARANTINE_TAG, _READ_TAG, _REUSED_TAG, _DONE_TAG, main="records"
        )
    )
    _ = (
        decoded[_DONE_TAG]
        | "DoneToText" >> beam.Map(str)
        | "WriteDone"
        >> beam.io.WriteToText(
            fs.join(quarantine_dir, PROCESSED_FILE), num_shards=1, shard_name_template=""
        )
    )
    records = decoded.records

    # One output per (task, split), so that every task's files are named after it.
    targets = [(task, s) for task in task_names for s in features.SPLITS]
    parts = records | "ByTaskSplit" >> beam.Partition(
        lambda r, n: targets.index((r[0], r[1])), len(targets)
    )
    suffix, compression = record_files(ingestion.compression)
    for (task, split), part in zip(targets, parts, strict=True):
        _ = (
            part
            | f"Bytes[{task}/{split}]" >> beam.Map(lambda r: r[2])
            | f"Write[{task}/{split}]"
            >> beam.io.WriteToTFRecord(
                fs.join(features.split_dir(output_dir, split), task),
                file_name_suffix=suffix,
                compression_type=compression,
            )
        )

    quarantined = (
        (root | "ListedBad" >> beam.Create(listed_bad), decoded[_QUARANTINE_TAG])
        | "AllBad" >> beam.Flatten()
        | "CountBad" >> beam.Map(_count_quarantined)
    )
    _ = (
        quarantined
        | "BadToJson" >> beam.Map(QuarantineRecord.to_json)
        | "WriteQuarantine"
        >> beam.io.WriteToText(
            fs.join(quarantine_dir, QUARANTINE_FILE), num_shards=1, shard_name_template=""
        )
    )
    tallies = (
        records | "WrittenKeys" >> beam.Map(lambda r: (("written", r[0], r[1]), 1)),
        quarantined | "BadKeys" >> beam.Map(lambda q: (("quarantined", q.task, q.reason), 1)),
        decoded[_READ_TAG] | "ReadKeys" >> beam.Map(lambda task: (("read", task, ""), 1)),
        decoded[_REUSED_TAG] | "ReusedKeys" >> beam.Map(lambda task: (("reused", task, ""), 1)),
    )
    _ = (
        tallies
        | "AllTallies" >> beam.Flatten()
        | "Tally" >> beam.CombinePerKey(sum)
        | "TallyToJson" >> beam.Map(_tally_line)
        | "WriteCounts"
        >> beam.io.WriteToText(
            fs.join(quarantine_dir, COUNTS_FILE), num_shards=1, shard_name_template=""
        )
    )


# --------------------------------------------------------------------------------------------
# Driver.


def _refuse_existing_records(task_names: list[str], output_dir: str) -> None:
    for task in task_names:
        for split in features.SPLITS:
            found = fs.glob(features.task_file_pattern(output_dir, split, task))
            if found:
                raise IngestError(
                    f"{output_dir} already holds records of task {task!r} ({found[0]}); "
                    "write to an empty folder so that old and new shards do not mix"
                )


def _write_vocabularies(listings: list[sources.TaskSources], output_dir: str) -> None:
    for listing in listings:
        if not listing.labelled:  # no classes, no vocabulary (nor a Trainer head)
            continue
        text = "".join(f"{label}\n" for label in listing.vocabulary)
        fs.write_text(features.vocabulary_path(output_dir, listing.task), text)


def lost_items(items: list[WorkItem], processed_text: str) -> list[WorkItem]:
    """The items whose number is not among the processed ones (one per line)."""
    done = {int(line) for line in processed_text.split()}
    return [item for item in items if item.number not in done]


def _check_none_lost(items: list[WorkItem], quarantine_dir: str) -> None:
    """Fails the run when the runner dropped inputs: they were neither written nor quarantined
    (seen with Beam's multi-process DirectRunner while another run shared the machine)."""
    path = fs.join(quarantine_dir, PROCESSED_FILE)
    lost = lost_items(items, fs.read_text(path) if fs.exists(path) else "")
    if lost:
        named = "; ".join(item.clip.path for item in lost[:_FIRST_BAD])
        more = f" (and {len(lost) - _FIRST_BAD} more)" if len(lost) > _FIRST_BAD else ""
        raise IngestError(
            f"{len(lost)} of {len(items)} inputs came out of the Beam pipeline neither written "
            f"nor quarantined (the runner lost them): {named}{more}. The output is incomplete; "
            "ingest again into an empty folder."
        )


def _read_summary(summary: IngestSummary) -> IngestSummary:
    counts_path = fs.join(summary.quarantine_dir, COUNTS_FILE)
    for line in fs.read_text(counts_path).splitlines() if fs.exists(counts_path) else []:
        tally = json.loads(line)
        if tally["kind"] == "written":
            summary.written[(tally["task"], tally["key"])] = tally["count"]
        elif tally["kind"] == "read":  # records of dmvr_records tasks: each one an input
            summary.inputs += tally["count"]
        elif tally["kind"] == "reused":  # files whose clips came from the decode cache
            summary.reused += tally["count"]
        else:
            summary.quarantined_by_task[(tally["task"], tally["key"])] = tally["count"]
            summary.quarantined[tally["key"]] = (
                summary.quarantined.get(tally["key"], 0) + tally["count"]
            )
    bad_path = summary.quarantine_file
    lines = fs.read_text(bad_path).splitlines() if fs.exists(bad_path) else []
    records = [QuarantineRecord.from_json(line) for line in lines if line.strip()]
    records.sort(key=lambda r: (r.file, r.reason))
    summary.first_bad = [(r.file, r.reason) for r in records[:_FIRST_BAD]]
    return summary


def ingest(
    config: IngestConfig,
    output_dir: str,
    quarantine_dir: str,
    beam_pipeline_args: list[str] | None = None,
    *,
    data_root: str,
    progress: bool = True,
    cache_dir: str = "",
) -> IngestSummary:
    """Decodes every task of `config` into DMVR TFRecords under `output_dir` (see module doc).

    The tasks' data paths are relative to `data_root`. No `beam_pipeline_args`: Beam's defaults
    (the DirectRunner). Raises SourceError/ConfigError when a task's data as a whole is
    unusable; bad individual inputs are only counted and quarantined: call `summary.check()`
    to apply `ingestion.max_bad_fraction`.
    """
    task_names = [task.name for task in config.tasks]
    _refuse_existing_records(task_names, output_dir)
    listings = [
        sources.list_task_sources(task, data_root, config.ingestion.eval_fraction)
        for task in config.tasks
    ]
    items = [
        dataclasses.replace(item, number=number)
        for number, item in enumerate(
            item
            for task, listing in zip(config.tasks, listings, strict=True)
            for item in work_items(task, listing)
        )
    ]
    listed_bad = [record for listing in listings for record in listing.quarantined]
    _write_vocabularies(listings, output_dir)
    fs.makedirs(quarantine_dir)

    progress_dir = fs.join(quarantine_dir, f".progress-{uuid.uuid4().hex[:8]}") if progress else ""
    printer = None
    if progress:
        fs.makedirs(progress_dir)
        printer = _ProgressLogger(progress_dir, len(items), len(listed_bad))
        printer.start()
    try:
        with beam.Pipeline(options=PipelineOptions(list(beam_pipeline_args or []))) as root:
            build_pipeline(
                root,
                items,
                listed_bad,
                config.ingestion,
                task_names,
                data_root,
                output_dir,
                quarantine_dir,
                progress_dir,
                cache_dir,
            )
    finally:
        if printer is not None:
            printer.stop()
            fs.remove_tree(progress_dir)
    _check_none_lost(items, quarantine_dir)
    summary = IngestSummary(
        output_dir=output_dir,
        quarantine_dir=quarantine_dir,
        max_bad_fraction=config.ingestion.max_bad_fraction,
        # Shards of dmvr_records are not inputs: their records are (counted while read).
        inputs=sum(1 for item in items if item.rules is None) + len(listed_bad),
        vocabularies={listing.task: listing.vocabulary for listing in listings},
    )
    return _read_summary(summary)
