"""The `polyvit` command line answers --help for every subcommand without loading TensorFlow."""

import pathlib
import subprocess
import sys

import pytest

from pipeline import cli

DEMO = pathlib.Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


@pytest.mark.parametrize("command", sorted(cli.SUBCOMMANDS))
def test_every_subcommand_prints_help(command):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", command, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert cli.SUBCOMMANDS[command][1] in " ".join(result.stdout.split())


def test_config_subcommand_names_the_bad_key(capsys):
    code = cli.main(["config", "--config", str(DEMO), "--set", "training.stepz=1"])
    assert code == 2
    assert "training.stepz: unknown key" in capsys.readouterr().err


def test_config_subcommand_prints_resolved_values(capsys):
    assert cli.main(["config", "--config", str(DEMO), "--set", "training.steps=9"]) == 0
    assert "steps: 9" in capsys.readouterr().out


# Each subcommand that reads a config, with the arguments it needs besides the config.
CONFIG_COMMANDS = {
    "config": [],
    "run": [],
    "compile": ["--output", "pipeline.yaml"],
    "submit": [],
    "schedule": [],
    "runs": [],
    "serve": [],
    "predict": ["clip.mp4"],
}


def test_every_config_reading_subcommand_is_listed():
    import argparse

    readers = set()
    for command in cli.SUBCOMMANDS:
        parser, _ = cli.build_parser(command)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if any("--config" in a.option_strings for a in sub.choices[command]._actions):
            readers.add(command)
    assert readers == set(CONFIG_COMMANDS)


@pytest.mark.parametrize("command", sorted(CONFIG_COMMANDS))
@pytest.mark.parametrize(
    "problem, expected",
    [("missing", "missing.yaml: cannot read the config"), ("bad_key", "training.stepz: unknown")],
)
def test_every_subcommand_reports_a_config_problem_the_same_way(
    command, problem, expected, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    argv = [command, *CONFIG_COMMANDS[command]]
    if problem == "missing":
        argv += ["--config", "missing.yaml"]
    else:
        argv += ["--config", str(DEMO), "--set", "training.stepz=1"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"polyvit {command}: ") and expected in err, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written
