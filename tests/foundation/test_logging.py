"""The logging convention (core/logs.py): one set-up per process at its entry point, library
code that logs instead of printing, and harmless third-party lines dropped by exact message."""

from __future__ import annotations

import ast
import logging
import pathlib
import re
import warnings

import pytest

from core import env, logs
from pipeline import cli

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ("core", "media", "demo", "transforms", "trainer", "serving", "components", "pipeline")

# Where `print` is allowed: a CLI module (None: all of it) or a module's CLI functions.
PRINTING = {
    "pipeline/cli.py": None,
    "pipeline/serve_demo.py": None,
    "serving/cli.py": None,
    "demo/cli.py": None,
    "demo/vatt_data.py": {"main"},
    "components/media_example_gen/cli.py": None,
    "pipeline/local_runner.py": {"run"},
    "pipeline/kubeflow_runner.py": {"compile"},
    "pipeline/kubeflow_client.py": {"_fail", "submit", "schedule", "runs"},
}
# The entry points that call logs.setup (the benchmarks, outside the packages, do too).
SETTING_UP = {"pipeline/cli.py", "pipeline/serve_demo.py"}


def package_files() -> list[pathlib.Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def calls(tree: ast.AST):
    """(enclosing top-level function or None, dotted name of the callee) of every call."""
    for top in ast.iter_child_nodes(tree):
        function = top.name if isinstance(top, ast.FunctionDef | ast.ClassDef) else None
        for node in ast.walk(top):
            if isinstance(node, ast.Call):
                yield function, ast.unparse(node.func)


def test_library_code_does_not_print():
    found = []
    for path in package_files():
        name = path.relative_to(ROOT).as_posix()
        allowed = PRINTING.get(name, set())
        for function, callee in calls(ast.parse(path.read_text(), name)):
            if callee == "print" and allowed is not None and function not in allowed:
                found.append(f"{name}: print in {function or 'module level'}")
    assert not found, "library code logs instead (core/logs.py):\n" + "\n".join(found)


def test_only_entry_points_configure_logging():
    configuring = {"logs.setup", "logging.basicConfig", "logging.captureWarnings"}
    found = []
    for path in package_files():
        name = path.relative_to(ROOT).as_posix()
        if name == "core/logs.py":
            continue
        for _, callee in calls(ast.parse(path.read_text(), name)):
            if callee in configuring and name not in SETTING_UP or callee.endswith(".addHandler"):
                found.append(f"{name}: {callee}")
    assert not found, found
    for name in SETTING_UP:
        assert "logs.setup" in {c for _, c in calls(ast.parse((ROOT / name).read_text()))}, name


def record(logger: str, message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord(logger, level, __file__, 1, message, None, None)


LOGGED = [entry for entry in logs.HARMLESS if entry.logger != logs.PY_WARNINGS]
WARNED = [entry for entry in logs.HARMLESS if entry.logger == logs.PY_WARNINGS]


@pytest.mark.parametrize("entry", LOGGED, ids=lambda e: e.example[:40])
def test_the_filter_drops_each_listed_line_from_its_logger_only(entry):
    harmless = logs.HarmlessFilter()
    assert not harmless.filter(record(entry.logger, entry.example))
    assert harmless.filter(record("polyvit.trainer", entry.example))
    # A different line from the same logger is kept: the pattern is the message, not a prefix
    # of everything the logger says.
    assert harmless.filter(record(entry.logger, "Something else. " + entry.example))


def test_the_filter_keeps_real_warnings():
    harmless = logs.HarmlessFilter()
    assert harmless.filter(record("polyvit.serving_validator", "the model is NOT pushed: x"))
    assert harmless.filter(record("absl", "ArtifactQuery.property_predicate is not supported. x"))
    assert harmless.filter(
        record("tensorflow", "From a.py:1: some_function (from tensorflow.x) is deprecated")
    )
    assert harmless.filter(record("tensorflow", "5 out of the last 5 calls triggered retracing"))


def test_every_listed_line_says_why_and_has_a_valid_pattern():
    for entry in logs.HARMLESS:
        re.compile(entry.pattern)
        assert entry.why and entry.matches(entry.logger, entry.example), entry


def test_listed_python_warnings_are_ignored_and_others_are_not():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logs.ignore_harmless_warnings()
        for entry in WARNED:
            warnings.warn(entry.example, FutureWarning, stacklevel=1)
        warnings.warn("A future change of polyvit's own", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["A future change of polyvit's own"]


def test_setup_installs_one_handler_however_often_it_is_called():
    root = logging.getLogger()
    before = root.level, logging.getLogger(logs.ROOT_LOGGER).level
    try:
        first = logs.setup()
        assert logs.setup(1) is first
        assert root.handlers.count(first) == 1
        assert logging.getLogger(logs.ROOT_LOGGER).getEffectiveLevel() == logging.DEBUG
        logs.setup(0)
        assert logging.getLogger("polyvit.trainer").getEffectiveLevel() == logging.INFO
        assert logging.getLogger("tfx.some_module").getEffectiveLevel() == logging.WARNING
        assert any(isinstance(f, logs.HarmlessFilter) for f in first.filters)
    finally:
        root.setLevel(before[0])
        logging.getLogger(logs.ROOT_LOGGER).setLevel(before[1])


def test_a_polyvit_warning_reaches_stderr_in_the_convention_format(capsys):
    logs.setup()
    logging.getLogger("polyvit.test").warning("the model is NOT pushed: %s", "reason")
    logging.getLogger("absl").warning("ArtifactQuery.property_predicate is not supported.")
    err = capsys.readouterr().err
    assert re.search(
        r"^\d\d:\d\d:\d\d WARNING polyvit.test: the model is NOT pushed: reason$", err, re.M
    ), err
    assert "property_predicate" not in err


def test_verbosity_is_read_from_the_options_before_the_subcommand():
    assert cli.global_verbosity(["run", "--config", "x.yaml"]) == 0
    assert cli.global_verbosity(["-v", "run", "-v"]) == 1
    assert cli.global_verbosity(["-vv", "config"]) == 2


def test_the_image_sets_the_environment_core_env_sets():
    dockerfile = (ROOT / "Dockerfile").read_text()
    runtime = dockerfile.split("\nFROM ")[-1]
    assigned = dict(re.findall(r"\b([A-Z][A-Z0-9_]+)=(\S+)", runtime.split("\nWORKDIR")[0]))
    for name, value in env.ENVIRONMENT.items():
        assert assigned.get(name) == value, name
