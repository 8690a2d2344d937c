"""`polyvit make-demo-data DIR [--scale small|full] [--seed 0] [--span N | --vatt]`."""

from __future__ import annotations

import argparse
import sys
import time

from demo import presets

# Seconds between progress lines: a terminal redraws one line, a log gets a line each time.
_PROGRESS_EVERY = {"tty": 0.5, "log": 5.0}


def add_make_demo_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="folder to write the datasets into")
    parser.add_argument(
        "--scale",
        choices=sorted(presets.SCALES),
        default="full",
        help="small: a few files per class, for tests (seconds); full: enough to train the "
        "demo model to high accuracy (default: full)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed gives the same bytes"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace dataset folders in DIR even if make-demo-data did not write them",
    )
    parser.add_argument(
        "--span",
        type=int,
        default=None,
        metavar="N",
        help="write DIR/span-N instead: the newest earlier span plus about 10%% new media "
        "(a whole generation if there is none); for configs/demo_spans.yaml",
    )
    parser.add_argument(
        "--vatt",
        action="store_true",
        help="write DIR/vatt instead: moving digits whose soundtrack and captions describe "
        "them, unlabelled pretraining clips and a few labelled ones; for configs/vatt.yaml "
        "(--scale small: a handful of clips, for tests)",
    )


class _ProgressPrinter:
    """Prints `dataset: done/total files` to stderr now and then, and when a dataset is done."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.every = _PROGRESS_EVERY["tty" if self.tty else "log"]
        self.last = time.perf_counter()

    def __call__(self, dataset: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - self.last >= self.every:
            self.last = now
            end = "\r" if self.tty and done < total else "\n"
            print(f"  {dataset}: {done}/{total} files", end=end, file=sys.stderr, flush=True)


def summary_table(results) -> str:
    """One line per dataset: name, modality, files per split, seconds taken."""
    header = ("dataset", "modality", "files", "seconds")
    lines = [
        (
            r.name,
            r.modality,
            " ".join(f"{split}={n}" for split, n in r.files_per_split.items()),
            f"{r.seconds:.1f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *lines]
    )


def make_demo_data(args: argparse.Namespace) -> int:
    from demo.generate import generate

    began = time.perf_counter()
    if args.span is not None and args.vatt:
        print("polyvit make-demo-data: --span and --vatt exclude each other", file=sys.stderr)
        return 2
    if args.span is not None:
        return _make_span(args, began)
    if args.vatt:
        return _make_vatt(args, began)
    print(f"Writing the {args.scale} demo datasets (seed {args.seed}) to {args.dir}", flush=True)
    try:
        results = generate(
            args.dir, args.scale, args.seed, force=args.force, progress=_ProgressPrinter()
        )
    except (FileExistsError, ValueError) as e:
        print(f"polyvit make-demo-data: {e}", file=sys.stderr)
        return 2
    print(summary_table(results))
    print(
        f"Done in {time.perf_counter() - began:.1f} s; every file is listed in "
        f"{args.dir}/{presets.MANIFEST}"
    )
    return 0


def _make_span(args: argparse.Namespace, began: float) -> int:
    from demo.spans import make_span

    try:
        result, _ = make_span(
            args.dir, args.span, args.scale, args.seed, progress=_ProgressPrinter()
        )
    except (FileExistsError, ValueError) as e:
        print(f"polyvit make-demo-data: {e}", file=sys.stderr)
        return 2
    base = "a whole generation" if result.base_span is None else f"span {result.base_span} plus"
    added = ", ".join(f"{name}={n}" for name, n in result.added.items())
    print(f"Span {result.span} in {result.path}: {base} new files {added}")
    print(f"Done in {time.perf_counter() - began:.1f} s")
    return 0


# `--vatt --scale small`: enough clips for the pipeline to run (tests), not to learn.
_VATT_SMALL = {"pretrain_clips": 12, "eval_clips": 8, "labelled_per_class": 2, "eval_per_class": 2}


def _make_vatt(args: argparse.Namespace, began: float) -> int:
    from demo import vatt_data

    sizes = _VATT_SMALL if args.scale == "small" else {}
    print(f"Writing the VATT demo data (seed {args.seed}) to {args.dir}/{vatt_data.ROOT}")
    counts = vatt_data.generate(args.dir, seed=args.seed, progress=_ProgressPrinter(), **sizes)
    for name, count in counts.items():
        print(f"  {vatt_data.ROOT}/{name}: {count} clips")
    print(f"Done in {time.perf_counter() - began:.1f} s")
    return 0
