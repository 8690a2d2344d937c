"""`polyvit ingest SOURCE OUTPUT --modality video|audio|image`: the Beam ingestion, outside TFX.

Builds a one-task IngestConfig (the ingestion's slice of the config) from the flags (every
`ingestion.*` field is a flag, with the config's default) and runs `beam_ingest.ingest`.
Beam options pass through unchanged, so the same command runs on Dataflow, Flink or Spark:

    polyvit ingest --modality video --train ucfTrainTestlist/trainlist01.txt \\
        --eval ucfTrainTestlist/testlist01.txt data/ucf101 out/ \\
        -- --runner=DataflowRunner --project=P --region=R --temp_location=gs://B/tmp

(`--beam-arg=--runner=...` works anywhere; with `--`, put the options before SOURCE OUTPUT:
argparse only joins the arguments after `--` to the first run of positional arguments.)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing

from core.config import (
    ConfigError,
    DataSource,
    IngestConfig,
    Ingestion,
    LabelType,
    Layout,
    TaskData,
)

_MODALITIES = ("video", "audio", "image")


def _flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="task folder, or a CSV file of the task")
    parser.add_argument(
        "output", metavar="OUTPUT", help="folder for Split-<split>/<task>-*-of-* and labels/"
    )
    parser.add_argument("--modality", required=True, choices=_MODALITIES)
    parser.add_argument(
        "--layout", default="folders", choices=typing.get_args(Layout), help="default: folders"
    )
    parser.add_argument("--task-name", default="", help="default: SOURCE's name")
    parser.add_argument(
        "--train", default="", help="train split: sub-folder, split list or CSV, in SOURCE"
    )
    parser.add_argument("--eval", default="", help="eval split, like --train (default: hash)")
    parser.add_argument("--label-names", default="", help="audioset_csv: label id -> name CSV")
    parser.add_argument("--media-dir", default="", help="folder of media named by clip id")
    parser.add_argument(
        "--record-sample-rate",
        type=int,
        default=0,
        help="dmvr_records: the sample rate of records that do not say theirs "
        "(data.sample_rate; default: such records are quarantined)",
    )
    parser.add_argument(
        "--label-type", choices=("single", "multi"), help="default: multi for audioset_csv"
    )
    parser.add_argument(
        "--unlabelled",
        action="store_true",
        help="data without classes (tasks.<t>.labelled: false): records carry no labels, "
        "no vocabulary is written",
    )
    parser.add_argument(
        "--data-root",
        default="",
        help="folder every media path must lie in (default: the folder holding SOURCE)",
    )
    parser.add_argument("--quarantine", default="", help="default: OUTPUT/quarantine")
    defaults = Ingestion()
    hints = typing.get_type_hints(Ingestion)
    for field in dataclasses.fields(Ingestion):
        value = getattr(defaults, field.name)
        if isinstance(value, bool):  # an on/off setting: a flag without a value
            parser.add_argument(
                _flag(field.name),
                dest=field.name,
                action="store_false" if value else "store_true",
                help=f"ingestion.{field.name} (default: {'on' if value else 'off'})",
            )
            continue
        # A Literal setting (compression) offers its values as choices.
        choices = typing.get_args(hints[field.name]) or None
        parser.add_argument(
            _flag(field.name),
            dest=field.name,
            type=type(value),
            default=value,
            choices=choices,
            help=f"ingestion.{field.name} (default: {value})",
        )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="DirectRunner worker processes (default: all cores); ignored by other runners",
    )
    parser.add_argument(
        "--beam-arg",
        dest="beam_arg",
        action="append",
        default=[],
        metavar="ARG",
        help="a Beam pipeline option, e.g. --beam-arg=--runner=FlinkRunner (repeatable); "
        "everything after `--` passes through too",
    )
    parser.add_argument("beam_args", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def _source(args: argparse.Namespace) -> str:
    return os.path.abspath(args.source.rstrip("/"))


def data_root(args: argparse.Namespace) -> str:
    """--data-root, or the folder holding SOURCE."""
    return os.path.abspath(args.data_root) if args.data_root else os.path.dirname(_source(args))


def build_config(args: argparse.Namespace) -> IngestConfig:
    """A one-task IngestConfig from the flags; its data path is relative to `data_root(args)`."""
    source = _source(args)
    name = args.task_name or os.path.splitext(os.path.basename(source))[0]
    label_type: LabelType = args.label_type or (
        "multi" if args.layout == "audioset_csv" else "single"
    )
    ingestion = Ingestion(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Ingestion)})
    task = TaskData(
        name=name,
        modality=args.modality,
        labelled=not args.unlabelled,
        label_type="single" if args.unlabelled else label_type,
        data=DataSource(
            root=os.path.relpath(source, data_root(args)),
            layout=args.layout,
            train=args.train,
            eval=args.eval,
            label_names=args.label_names,
            media_dir=args.media_dir,
            sample_rate=args.record_sample_rate,
        ),
    )
    return IngestConfig(tasks=[task], ingestion=ingestion)


def beam_args(args: argparse.Namespace) -> list[str]:
    """The user's Beam options; on the DirectRunner, one worker process per core by default."""
    passed = list(args.beam_arg) + list(args.beam_args)
    runner = next((a.split("=", 1)[1] for a in passed if a.startswith("--runner=")), "")
    direct = runner in ("", "DirectRunner", "direct")
    if direct and not any(a.startswith("--direct_running_mode") for a in passed):
        if args.workers > 1:
            passed += [
                "--direct_running_mode=multi_processing",
                f"--direct_num_workers={args.workers}",
            ]
        else:
            passed += ["--direct_running_mode=in_memory"]
    return passed


def ingest(args: argparse.Namespace) -> int:
    from components.media_example_gen import beam_ingest, sources

    config = build_config(args)
    output = os.path.abspath(args.output)
    quarantine = (
        os.path.abspath(args.quarantine) if args.quarantine else os.path.join(output, "quarantine")
    )
    try:
        summary = beam_ingest.ingest(
            config,
            output,
            quarantine,
            beam_args(args),
            data_root=data_root(args),
            progress=not args.quiet,
        )
    except (ConfigError, sources.SourceError, beam_ingest.IngestError) as e:
        print(f"polyvit ingest: {e}", file=sys.stderr)
        return 2
    print(f"polyvit ingest: {summary.describe()}")
    for task, vocabulary in summary.vocabularies.items():
        print(f"  {task}: {len(vocabulary)} labels in labels/{task}.txt")
    try:
        summary.check()
    except beam_ingest.IngestError as e:
        print(f"polyvit ingest: {e}", file=sys.stderr)
        return 1
    return 0
