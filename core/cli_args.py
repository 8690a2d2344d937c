"""The one way every `polyvit` subcommand takes and loads its config.

`add_config_args` adds `--config` and `--set`; `load_config` reads them. A missing or bad
config raises `ConfigError` naming the file or key; `pipeline.cli.main` reports it the same
way for every subcommand (`polyvit <command>: <message>`, exit 2).
"""

from __future__ import annotations

import argparse

from core import config as config_lib

DEFAULT_CONFIG = "configs/demo.yaml"


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"YAML config file (default: {DEFAULT_CONFIG})"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.steps=500 or "
        "--set tasks.digits.batch_size=16 (repeatable)",
    )


def load_config(args: argparse.Namespace) -> config_lib.Config:
    """The validated Config that `--config` and `--set` name; raises ConfigError."""
    return config_lib.load(args.config, args.overrides)
