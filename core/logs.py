"""Logging: one convention for the whole project.

- Library code logs, it never prints: `log = logging.getLogger("polyvit.<stage>")` (trainer,
  ingest, serving, serving_validator, ...) and `log.info(...)` for progress and stage
  summaries, `log.warning(...)` only for something the user should act on. A test
  (tests/foundation/test_logging.py) refuses `print(` outside the CLI modules.
- Library code never configures logging. Each process's entry point calls `setup(verbosity)`
  once, first thing: `pipeline.cli.main` (every `polyvit` subcommand, also the
  `polyvit serve` subprocess of the demo), `pipeline.serve_demo.main` and the benchmarks.
  It puts one stderr handler on the root logger: `HH:MM:SS LEVEL logger: message`, the
  `polyvit` loggers at INFO (DEBUG with -v), everybody else at WARNING (INFO with -v).
  Components run inside that process under LocalDagRunner, so their lines use it too. In the
  Kubeflow container TFX's own entry point (kubeflow_v2_run_executor) configures logging
  (absl, INFO), and the `polyvit` loggers propagate to it.
- Third-party lines that carry no action for the user are dropped by EXACT message, here and
  only here: `HARMLESS`, a table of (logger, message pattern, why it is harmless, the line
  as seen). Python warnings of that kind (logger "py.warnings") become `warnings` filters;
  the others pass through `HarmlessFilter` on the handler. Nothing silences a whole logger:
  a new warning from TFX, TF or Beam still shows. With -vv the table is not applied.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import warnings

ROOT_LOGGER = "polyvit"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%H:%M:%S"
PY_WARNINGS = "py.warnings"


@dataclasses.dataclass(frozen=True)
class Harmless:
    """A third-party line to drop: `pattern` must match the START of the formatted message of
    a record of logger `logger` (for "py.warnings": the warning's text)."""

    logger: str
    pattern: str
    why: str
    example: str  # the line as the stack (requirements.lock) writes it; the tests use it

    def matches(self, logger: str, message: str) -> bool:
        return logger == self.logger and re.match(self.pattern, message) is not None


HARMLESS: tuple[Harmless, ...] = (
    Harmless(
        "absl",
        re.escape("ArtifactQuery.property_predicate is not supported.") + "$",
        "TFX 1.16's resolver falls back to filtering the artifacts itself; results are the same",
        "ArtifactQuery.property_predicate is not supported.",
    ),
    Harmless(
        "root",
        re.escape("Multiple datasets found in statistics. Using the default slice dataset.") + "$",
        "TFDV: the statistics hold the default slice and the per-split ones; it uses the "
        "default one, which is the one wanted",
        "Multiple datasets found in statistics. Using the default slice dataset.",
    ),
    Harmless(
        "absl",
        re.escape(
            "Not using the in-place Transform because the following features require " "analyzing: "
        ),
        "preprocessing_fn computes label vocabularies and audio statistics, which need the "
        "full analysis pass by design",
        "Not using the in-place Transform because the following features require analyzing: "
        "('audio/sample_rate', 'clip/label/text', 'task/name', 'WAVEFORM/feature/floats')",
    ),
    Harmless(
        "apache_beam.io.tfrecordio",
        re.escape(
            "Couldn't find python-snappy so the implementation of "
            "_TFRecordUtil._masked_crc32c is not as fast as it could be."
        ),
        "Beam computes TFRecord checksums in pure Python; the records are identical and "
        "python-snappy is not in the pinned stack",
        "Couldn't find python-snappy so the implementation of _TFRecordUtil._masked_crc32c is "
        "not as fast as it could be.",
    ),
    Harmless(
        "tensorflow",
        r"From \S*tensorflow_model_analysis/\S+: tf_record_iterator \(from "
        + re.escape("tensorflow.python.lib.io.tf_record) is deprecated"),
        "TFMA 0.47 reads its own outputs with a deprecated TF API; nothing the project calls",
        "From /venv/site-packages/tensorflow_model_analysis/writers/"
        "metrics_plots_and_validations_writer.py:112: tf_record_iterator (from "
        "tensorflow.python.lib.io.tf_record) is deprecated and will be removed in a future "
        "version.\nInstructions for updating:\nUse eager execution and: \n"
        "`tf.data.TFRecordDataset(path)`",
    ),
    Harmless(
        PY_WARNINGS,
        r"You are using a Python version \(3\.\d+\.\d+\) which Google will stop supporting",
        "google-api-core's end-of-life notice for Python 3.11 (2027); the stack is pinned",
        "You are using a Python version (3.11.7) which Google will stop supporting in new "
        "releases of google.api_core once it reaches its end of life (2027-10-24).",
    ),
    Harmless(
        PY_WARNINGS,
        re.escape("grpcio < 1.83.0 does not support Post-Quantum Cryptography (PQC)."),
        "google-auth's notice about a future minimum grpcio; the stack is pinned",
        "grpcio < 1.83.0 does not support Post-Quantum Cryptography (PQC). Support for non-PQC "
        "environments is deprecated.",
    ),
    Harmless(
        PY_WARNINGS,
        re.escape(
            "Support for google-cloud-storage < 3.0.0 will be removed in a future "
            "version of google-cloud-aiplatform."
        ),
        "google-cloud-aiplatform's notice about a future minimum version; the stack is pinned",
        "Support for google-cloud-storage < 3.0.0 will be removed in a future version of "
        "google-cloud-aiplatform. Please upgrade to google-cloud-storage >= 3.0.0.",
    ),
)


def is_harmless(logger: str, message: str) -> bool:
    return any(entry.matches(logger, message) for entry in HARMLESS)


class HarmlessFilter(logging.Filter):
    """Drops the records `HARMLESS` lists; keeps every other record."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not is_harmless(record.name, record.getMessage())


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (pytest and subprocess pipes swap it)."""

    def __init__(self):
        logging.Handler.__init__(self)

    @property
    def stream(self):
        return sys.stderr


_handler: logging.Handler | None = None
_harmless_filter = HarmlessFilter()


def ignore_harmless_warnings() -> None:
    """`warnings` filters for the "py.warnings" entries of HARMLESS (any category)."""
    for entry in HARMLESS:
        if entry.logger == PY_WARNINGS:
            warnings.filterwarnings("ignore", message=entry.pattern)


def levels(verbosity: int) -> tuple[int, int]:
    """(level of the polyvit loggers, level of everything else) for `-v` given `verbosity`
    times."""
    if verbosity <= 0:
        return logging.INFO, logging.WARNING
    return logging.DEBUG, logging.INFO


def setup(verbosity: int = 0) -> logging.Handler:
    """Configures logging for this process: call once, from an entry point. A second call
    changes the levels only (tests call `pipeline.cli.main` many times)."""
    global _handler
    own_level, other_level = levels(verbosity)
    if _handler is None:
        _handler = _StderrHandler()
        _handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        logging.getLogger().addHandler(_handler)
        logging.captureWarnings(True)
        ignore_harmless_warnings()
    if verbosity >= 2:
        _handler.removeFilter(_harmless_filter)
    else:
        _handler.addFilter(_harmless_filter)
    logging.getLogger().setLevel(other_level)
    logging.getLogger(ROOT_LOGGER).setLevel(own_level)
    return _handler
