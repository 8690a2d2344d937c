"""`polyvit submit`, `polyvit schedule`, `polyvit runs`: a compiled package on a KFP backend.

Talks to the KFP v2beta1 API through the kfp SDK's `Client`. Everything checkable is checked
before a request leaves: the package parses as a PipelineSpec, `--param` names exist in it and
their values fit the declared types, and a cron expression has KFP's 6 fields (seconds first).

Authentication, first match wins: `--token` or `$KFP_TOKEN` (a bearer token, e.g. from
`gcloud auth print-access-token` or a Dex session); else, inside a cluster, the pod's projected
service-account token (kfp's ServiceAccountTokenVolumeCredentials); else the SDK's own defaults
(in-cluster API address when no host is given, or the kube config).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from core import config as config_lib
from core.cli_args import add_config_args, load_config

TOKEN_ENV = "KFP_TOKEN"
DEFAULT_PACKAGE = "pipeline.yaml"


class SubmitError(ValueError):
    """A submission argument is wrong; the message names the flag, field or file."""


# --------------------------------------------------------------------------------------------
# Cron: KFP (robfig/cron with seconds) takes 6 fields, `second minute hour day month weekday`.


@dataclass(frozen=True)
class _CronField:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # symbolic values, in order from `low`


_CRON_FIELDS = (
    _CronField("second", 0, 59),
    _CronField("minute", 0, 59),
    _CronField("hour", 0, 23),
    _CronField("day of month", 1, 31),
    _CronField(
        "month",
        1,
        12,
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
    ),
    _CronField("day of week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)
_CRON_SHORTCUTS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _cron_value(text: str, spec: _CronField, expression: str) -> int:
    upper = text.upper()
    if upper in spec.names:
        return spec.low + spec.names.index(upper)
    if not text.isdigit():
        raise SubmitError(
            f"cron {expression!r}: {spec.name} field has {text!r}, not a number"
            + (f" or one of {', '.join(spec.names)}" if spec.names else "")
        )
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise SubmitError(
            f"cron {expression!r}: {spec.name} field value {value} is outside "
            f"{spec.low}-{spec.high}"
        )
    return value


def _check_cron_field(text: str, spec: _CronField, expression: str) -> None:
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise SubmitError(f"cron {expression!r}: {spec.name} field has a bad step {part!r}")
        if base in ("*", "?"):
            if base == "?" and spec.name not in ("day of month", "day of week"):
                raise SubmitError(
                    f"cron {expression!r}: '?' is only allowed in the day fields, "
                    f"not in {spec.name}"
                )
            continue
        low, dash, high = base.partition("-")
        first = _cron_value(low, spec, expression)
        if dash and first > _cron_value(high, spec, expression):
            raise SubmitError(f"cron {expression!r}: {spec.name} range {base!r} runs backwards")


def check_cron(expression: str) -> str:
    """Returns the expression if KFP's scheduler accepts it, else raises SubmitError naming the
    bad field. A common mistake is the 5-field Unix form: it is rejected with a hint."""
    expression = expression.strip()
    if expression in _CRON_SHORTCUTS or expression.startswith("@every "):
        return expression
    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        hint = (
            f"; for Unix cron {expression!r} prepend the seconds: '0 {expression}'"
            if len(fields) == 5
            else ""
        )
        raise SubmitError(
            f"cron {expression!r}: KFP needs 6 fields (second minute hour day-of-month month "
            f"day-of-week), got {len(fields)}{hint}"
        )
    for text, spec in zip(fields, _CRON_FIELDS, strict=True):
        _check_cron_field(text, spec, expression)
    return expression


# --------------------------------------------------------------------------------------------
# Packages and parameters.


def read_package(path: str) -> dict[str, Any]:
    """The PipelineSpec (first document) of a compiled package; raises SubmitError if it is not
    one the KFP backend can take."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    try:
        with open(path) as f:
            documents = [d for d in yaml.safe_load_all(f) if d is not None]
    except OSError as e:
        raise SubmitError(f"--package {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise SubmitError(f"--package {path}: not YAML or JSON: {e}") from None
    if not documents or not isinstance(documents[0], dict):
        raise SubmitError(f"--package {path}: empty, not a compiled pipeline")
    if "pipelineSpec" in documents[0]:
        raise SubmitError(
            f"--package {path}: a Vertex PipelineJob, not a PipelineSpec; compile it with "
            "`polyvit compile`"
        )
    try:
        json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
    except json_format.ParseError as e:
        raise SubmitError(f"--package {path}: not a KFP PipelineSpec: {e}") from None
    return documents[0]


def declared_parameters(spec: Mapping[str, Any]) -> dict[str, str]:
    """Pipeline input parameter name -> parameterType (STRING, NUMBER_INTEGER, ...)."""
    params = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return {
        name: body.get("parameterType", body.get("type", "STRING")) for name, body in params.items()
    }


def _typed(name: str, text: str, parameter_type: str) -> Any:
    try:
        if parameter_type in ("NUMBER_INTEGER", "INT"):
            return int(text)
        if parameter_type in ("NUMBER_DOUBLE", "DOUBLE"):
            return float(text)
        if parameter_type == "BOOLEAN":
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        if parameter_type in ("LIST", "STRUCT"):
            return json.loads(text)
    except ValueError:
        raise SubmitError(f"--param {name}={text}: not a valid {parameter_type} value") from None
    return text


def parse_params(pairs: list[str], spec: Mapping[str, Any]) -> dict[str, Any]:
    """`NAME=VALUE` pairs -> run arguments, typed after the package's input definitions."""
    declared = declared_parameters(spec)
    arguments: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise SubmitError(f"--param {pair!r}: expected NAME=VALUE")
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise SubmitError(
                f"--param {name}: the pipeline has no such parameter (it has: {known})"
            )
        arguments[name] = _typed(name, text, declared[name])
    return arguments


# --------------------------------------------------------------------------------------------
# The client.


def client_kwargs(
    host: str,
    token: str,
    namespace: str,
    environ: Mapping[str, str],
    sa_token_path: str | None,
) -> dict[str, Any]:
    """Arguments for `kfp.Client`: host and namespace, plus the first credentials that apply
    (explicit token, $KFP_TOKEN, the pod's service-account token file)."""
    kwargs: dict[str, Any] = {}
    if host:
        kwargs["host"] = host
    if namespace:
        kwargs["namespace"] = namespace
    bearer = token or environ.get(TOKEN_ENV, "")
    if bearer:
        kwargs["existing_token"] = bearer
    elif host and sa_token_path and os.path.exists(sa_token_path):
        # With an explicit host kfp.Client does not look for the in-cluster token itself.
        from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

        kwargs["credentials"] = ServiceAccountTokenVolumeCredentials(sa_token_path)
    return kwargs


def make_client(args: argparse.Namespace, kubeflow: config_lib.Kubeflow):
    import kfp
    from kfp import client as kfp_client

    sa_path = os.environ.get(kfp_client.KF_PIPELINES_SA_TOKEN_ENV) or (
        kfp_client.KF_PIPELINES_SA_TOKEN_PATH
    )
    return kfp.Client(
        **client_kwargs(
            host=args.host or kubeflow.host,
            token=args.token or "",
            namespace=kubeflow.namespace,
            environ=os.environ,
            sa_token_path=sa_path,
        )
    )


def _load(args: argparse.Namespace) -> tuple[config_lib.Config, dict[str, Any], dict[str, Any]]:
    config = load_config(args)
    spec = read_package(args.package)
    arguments = parse_params(args.params, spec)
    return config, spec, arguments


def _add_common(parser: argparse.ArgumentParser, package: bool = True) -> None:
    add_config_args(parser)
    parser.add_argument("--host", default="", help="KFP API endpoint (default: kubeflow.host)")
    parser.add_argument(
        "--token", default="", help=f"bearer token for the KFP API (default: ${TOKEN_ENV})"
    )
    parser.add_argument(
        "--experiment", default=None, help="KFP experiment (default: kubeflow.experiment)"
    )
    if package:
        parser.add_argument(
            "--package",
            default=DEFAULT_PACKAGE,
            help=f"compiled pipeline from `polyvit compile` (default: {DEFAULT_PACKAGE})",
        )
        parser.add_argument(
            "--param",
            dest="params",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="runtime parameter, e.g. --param data_root=gs://b/data "
            "--param train_args='{\"num_steps\": 500}' (repeatable)",
        )
        parser.add_argument("--run-name", default=None, help="display name of the run or job")


def _fail(command: str, error: Exception) -> int:
    print(f"polyvit {command}: {error}", file=sys.stderr)
    return 2


def add_submit_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)


def submit(args: argparse.Namespace) -> int:
    try:
        config, spec, arguments = _load(args)
    except SubmitError as e:
        return _fail("submit", e)
    kubeflow = config.kubeflow
    client = make_client(args, kubeflow)
    result = client.create_run_from_pipeline_package(
        args.package,
        arguments=arguments,
        run_name=args.run_name or spec["pipelineInfo"]["name"],
        experiment_name=args.experiment or kubeflow.experiment,
        namespace=kubeflow.namespace or None,
        pipeline_root=kubeflow.pipeline_root,
        enable_caching=kubeflow.enable_cache,
        service_account=kubeflow.service_account or None,
    )
    print(f"Submitted run {result.run_id} ({args.package}, parameters {arguments or 'default'})")
    return 0


def add_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    # Each scheduled run ingests the newest span by itself: the package fixes no span
    # (ingestion.span -1), MediaExampleGen resolves it when the run starts.
    parser.description = (
        f"{parser.description or 'create a recurring KFP run'}. When tasks' data.root names a "
        "span ({SPAN} or "
        "{YYYY}-{MM}-{DD}), each run ingests the newest span present when it starts "
        "(ingestion.span: -1), with no per-run parameter, and the Trainer warm-starts from "
        "the latest blessed model."
    )
    _add_common(parser)
    parser.add_argument(
        "--cron",
        default=None,
        help="6-field cron, seconds first, e.g. '0 0 3 * * *' for 03:00 daily "
        "(default: kubeflow.schedule_cron)",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=None,
        help="runs of this schedule allowed at once (default: kubeflow.max_concurrency)",
    )


def schedule(args: argparse.Namespace) -> int:
    try:
        config, spec, arguments = _load(args)
        kubeflow = config.kubeflow
        cron = check_cron(args.cron if args.cron is not None else kubeflow.schedule_cron)
        concurrency = (
            args.max_concurrency if args.max_concurrency is not None else kubeflow.max_concurrency
        )
        if concurrency < 1:
            raise SubmitError(f"--max-concurrency: must be at least 1, got {concurrency}")
    except SubmitError as e:
        return _fail("schedule", e)
    client = make_client(args, kubeflow)
    experiment = client.create_experiment(
        name=args.experiment or kubeflow.experiment, namespace=kubeflow.namespace or None
    )
    job = client.create_recurring_run(
        experiment_id=experiment.experiment_id,
        job_name=args.run_name or f"{spec['pipelineInfo']['name']} retraining",
        cron_expression=cron,
        max_concurrency=concurrency,
        no_catchup=True,
        params=arguments,
        pipeline_package_path=args.package,
        pipeline_root=kubeflow.pipeline_root,
        enable_caching=kubeflow.enable_cache,
        service_account=kubeflow.service_account or None,
    )
    print(
        f"Scheduled recurring run {job.recurring_run_id}: cron '{cron}', max {concurrency} at once"
    )
    return 0


def add_runs_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser, package=False)
    parser.add_argument("--limit", type=int, default=10, help="how many recent runs to list")


def run_rows(runs: list[Any]) -> list[tuple[str, str, str, str]]:
    """(run id, state, created, name) per run, newest first as the API returned them."""
    return [
        (
            run.run_id or "",
            str(run.state or "UNKNOWN"),
            run.created_at.isoformat()
            if hasattr(run.created_at, "isoformat")
            else str(run.created_at or ""),
            run.display_name or "",
        )
        for run in runs
    ]


def runs(args: argparse.Namespace) -> int:
    config = load_config(args)
    kubeflow = config.kubeflow
    client = make_client(args, kubeflow)
    experiment_id = None
    if args.experiment:
        experiment_id = client.get_experiment(
            experiment_name=args.experiment, namespace=kubeflow.namespace or None
        ).experiment_id
    response = client.list_runs(
        page_size=args.limit,
        sort_by="created_at desc",
        experiment_id=experiment_id,
        namespace=kubeflow.namespace or None,
    )
    rows = run_rows(response.runs or [])
    if not rows:
        print("No runs.")
        return 0
    print(f"{'RUN ID':<38} {'STATE':<12} {'CREATED':<27} NAME")
    for run_id, state, created, name in rows:
        print(f"{run_id:<38} {state:<12} {created:<27} {name}")
    return 0
