"""The `polyvit` command line: one entry point for every stage of the pipeline.

Subcommands import their implementation lazily, so `polyvit --help` answers at once without
loading TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from core import cli_args, env, logs  # noqa: F401  (env: before TensorFlow loads)

# Each subcommand: (module that implements it, one-line help). For a subcommand `foo-bar` the
# module has `add_foo_bar_arguments(parser)` and `foo_bar(args) -> int`.
SUBCOMMANDS = {
    "make-demo-data": (
        "demo.cli",
        "write the built-in demo media (images, video, audio) to a folder",
    ),
    "run": (
        "pipeline.local_runner",
        "run the whole pipeline locally (LocalDagRunner, SQLite MLMD)",
    ),
    "ingest": (
        "components.media_example_gen.cli",
        "decode raw media into DMVR TFRecords with Beam, outside TFX",
    ),
    "compile": ("pipeline.kubeflow_runner", "compile the pipeline for Kubeflow Pipelines"),
    "submit": ("pipeline.kubeflow_client", "submit a compiled pipeline to a KFP backend"),
    "schedule": ("pipeline.kubeflow_client", "create a recurring (scheduled) KFP run"),
    "runs": ("pipeline.kubeflow_client", "list recent KFP runs and their states"),
    "serve": ("serving.cli", "serve exported models over TF Serving's gRPC API"),
    "predict": ("serving.cli", "send media files to a model server, print top-k labels"),
    "config": ("pipeline.cli", "check a config and print it resolved (after --set overrides)"),
}


def build_parser(command: str | None = None) -> tuple[argparse.ArgumentParser, dict]:
    """Builds the parser; only `command`'s module is imported (it may load TensorFlow)."""
    parser = argparse.ArgumentParser(
        prog="polyvit",
        description="One TFX pipeline from raw video, audio and images to a served multimodal "
        "transformer. Start with `make demo`, or: polyvit make-demo-data demo_data && "
        "polyvit run --config configs/demo.yaml",
    )
    add_global_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    handlers = {}
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name != command:
            continue
        module = importlib.import_module(module_name)
        function = name.replace("-", "_")
        getattr(module, f"add_{function}_arguments")(sp)
        handlers[name] = getattr(module, function)
    return parser, handlers


def add_global_arguments(parser: argparse.ArgumentParser) -> None:
    """Options before the subcommand: `polyvit -v run ...`."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log lines: -v the project's debug lines and other libraries' info lines, "
        "-vv also the third-party lines core/logs.py drops as harmless",
    )


def global_verbosity(argv: list[str]) -> int:
    """-v count among the options before the subcommand (read before the subcommand's module,
    and with it TensorFlow, is imported, so that logging is set up first)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_global_arguments(parser)
    command_at = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    known, _ = parser.parse_known_args(argv[:command_at])
    return known.verbose


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    cli_args.add_config_args(parser)


def config(args: argparse.Namespace) -> int:
    from core import config as config_lib

    print(config_lib.dump(cli_args.load_config(args)), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logs.setup(global_verbosity(argv))
    command = next((a for a in argv if not a.startswith("-")), None)
    parser, handlers = build_parser(command if command in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from core.config import ConfigError

    try:
        return int(handlers[args.command](args) or 0)
    except ConfigError as e:
        # Every subcommand reports a missing or bad config the same way.
        print(f"polyvit {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
