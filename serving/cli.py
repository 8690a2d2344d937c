"""`polyvit serve` and `polyvit predict`: argument parsing and terminal output only.

The server (`serving.server`) and the client (`serving.client`) are libraries; this module maps
flags and the config onto them and reports errors as one line each.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from dataclasses import asdict

import grpc

from core import cli_args
from serving.client import PolyvitClient, PolyvitRestClient, Prediction, RestError
from serving.server import ModelServer, ServerOptions

log = logging.getLogger("polyvit.serving")
REST_PORT = 8501  # TF Serving's conventional REST port

# --------------------------------------------------------------------------------------------
# polyvit serve


def parse_bool(text: str) -> bool:
    """TF Serving's boolean flag values (`--enable_batching=true`)."""
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_channel_arguments(text: str) -> tuple[tuple[str, int | str], ...]:
    """`--grpc_channel_arguments=key=value,key=value`: integers where they parse as one."""
    pairs: list[tuple[str, int | str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{item!r}: expected key=value")
        pairs.append((key, int(value) if value.lstrip("-").isdigit() else value))
    return tuple(pairs)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """TF Serving's flag spellings (tensorflow_model_server), with hyphenated aliases."""
    cli_args.add_config_args(parser)
    parser.add_argument(
        "--model_base_path",
        "--model-base-path",
        dest="model_base_path",
        help="the model's versions folder, holding <version>/saved_model.pb (TF Serving's "
        "meaning; default: <serving.push_dir>/<model name>). A folder that holds "
        "<model_name>/<version>/ instead is still accepted, with a warning",
    )
    parser.add_argument(
        "--model_name",
        "--model-name",
        dest="model_name",
        help="model name (default: serving.model_name)",
    )
    parser.add_argument(
        "--model_config_file",
        "--model-config-file",
        dest="model_config_file",
        help="TF Serving's ModelServerConfig in text format: several models, version policies "
        "(latest/all/specific) and version labels; excludes --model_base_path",
    )
    parser.add_argument("--port", type=int, help="gRPC port (default: serving.port)")
    parser.add_argument(
        "--rest_api_port",
        "--rest-api-port",
        dest="rest_api_port",
        type=int,
        help="port of TF Serving's REST API; 0 (the default) = no REST API",
    )
    parser.add_argument(
        "--rest_api_timeout_in_ms",
        dest="rest_api_timeout_in_ms",
        type=int,
        help="how long a REST connection may stall before it is dropped (default 30000)",
    )
    parser.add_argument("--host", help="address to bind (default: serving.host, loopback)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus /metrics port; 0 = off")
    parser.add_argument(
        "--monitoring_config_file",
        "--monitoring-config-file",
        dest="monitoring_config_file",
        help="TF Serving's MonitoringConfig (text): Prometheus metrics on the REST port",
    )
    parser.add_argument(
        "--file_system_poll_wait_seconds",
        "--poll-seconds",
        dest="poll_seconds",
        type=float,
        help="how often to look for new versions (default: serving.poll_seconds)",
    )
    parser.add_argument(
        "--enable_batching",
        dest="enable_batching",
        nargs="?",
        const=True,
        type=parse_bool,
        help="merge concurrent requests into batches (TF Serving's spelling: "
        "--enable_batching or --enable_batching=false)",
    )
    parser.add_argument(
        "--enable-batching",
        dest="enable_batching",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="as --enable_batching (default: serving.enable_batching)",
    )
    parser.add_argument(
        "--batching_parameters_file",
        "--batching-parameters-file",
        dest="batching_parameters_file",
        help="TF Serving's BatchingParameters (text); fields it leaves out take TF Serving's "
        "defaults",
    )
    parser.add_argument("--max-batch-size", type=int)
    parser.add_argument("--batch-timeout-micros", type=int)
    parser.add_argument("--num-batch-threads", type=int)
    parser.add_argument(
        "--grpc_channel_arguments",
        dest="grpc_options",
        type=parse_channel_arguments,
        help="gRPC server arguments, key=value,... (e.g. grpc.max_receive_message_length=N)",
    )
    parser.add_argument(
        "--grpc_max_threads",
        dest="grpc_workers",
        type=int,
        help="threads answering gRPC calls (default: serving.grpc_workers)",
    )


_FLAG_FIELDS = (
    "model_base_path",
    "model_name",
    "model_config_file",
    "port",
    "host",
    "metrics_port",
    "monitoring_config_file",
    "poll_seconds",
    "enable_batching",
    "batching_parameters_file",
    "max_batch_size",
    "batch_timeout_micros",
    "num_batch_threads",
    "grpc_options",
    "grpc_workers",
)


def server_flags(args: argparse.Namespace) -> dict:
    """ServerOptions.from_config keyword arguments from the parsed flags."""
    flags = {k: getattr(args, k) for k in _FLAG_FIELDS if getattr(args, k, None) is not None}
    if args.rest_api_port:  # TF Serving: 0 (or absent) means no REST API
        flags["rest_api_port"] = args.rest_api_port
    if args.rest_api_timeout_in_ms is not None:
        flags["rest_api_timeout_seconds"] = args.rest_api_timeout_in_ms / 1000 or None
    return flags


def serve(args: argparse.Namespace) -> int:
    config = cli_args.load_config(args)
    try:
        options = ServerOptions.from_config(config.serving, **server_flags(args))
        server = ModelServer(options).start()
    except (ValueError, OSError) as e:
        print(f"polyvit serve: {e}", file=sys.stderr)
        return 2
    stopping = threading.Event()

    def on_signal(signum, frame):
        log.info("signal %d: shutting down gracefully", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rest = f", REST on {server.rest_url}" if server.rest_port else ""
    names = ", ".join(m.name for m in options.models)
    print(f"polyvit serve: {names} on {server.target}{rest}", flush=True)
    stopping.wait()
    server.stop()
    return 0


# --------------------------------------------------------------------------------------------
# polyvit predict


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    cli_args.add_config_args(parser)
    parser.add_argument(
        "--server",
        help="HOST:PORT (default: 127.0.0.1:<serving.port>, or 127.0.0.1:8501 with --rest)",
    )
    parser.add_argument(
        "--rest", action="store_true", help="use TF Serving's REST API instead of gRPC"
    )
    parser.add_argument("--model", help="model name (default: serving.model_name)")
    parser.add_argument("--task", help="task signature (default: every task of the file's kind)")
    parser.add_argument("--top-k", type=int, help="labels to print (default: serving.top_k)")
    parser.add_argument("--json", action="store_true", help="print JSON lines for machines")
    parser.add_argument("--timeout", type=float, help="seconds per call (default: config)")
    parser.add_argument(
        "--embed",
        action="store_true",
        help="VATT: print each video's embeddings (video-audio, audio, video-text spaces)",
    )
    parser.add_argument(
        "--rank-captions",
        metavar="'A|B|C'",
        help="VATT: rank these captions ('|'-separated) for each video, best first",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="video, audio or image files")


def format_prediction(prediction: Prediction) -> str:
    clips = f", {prediction.clips} clips" if prediction.clips != 1 else ""
    lines = [f"{prediction.file}  [{prediction.task}, version {prediction.model_version}{clips}]"]
    lines += [f"  {score:7.4f}  {label}" for label, score in prediction.top_k]
    return "\n".join(lines)


def format_vatt(result) -> str:
    """serving.embeddings' Embedding or Ranking as terminal lines."""
    head = f"{result.file}  [version {result.model_version}, {result.clips} clips]"
    if hasattr(result, "ranked"):
        return "\n".join([head] + [f"  {score:7.4f}  {text}" for text, score in result.ranked])
    lines = [head]
    for space, vector in result.vectors.items():
        shown = " ".join(f"{v:.4f}" for v in vector)
        lines.append(f"  {space} ({len(vector)}): {shown}")
    return "\n".join(lines)


def predict(args: argparse.Namespace) -> int:
    from media.errors import MediaError

    config = cli_args.load_config(args)
    serving = config.serving
    client_class = PolyvitRestClient if args.rest else PolyvitClient
    default_server = f"127.0.0.1:{REST_PORT if args.rest else serving.port}"
    client = client_class(
        args.server or default_server,
        args.model or serving.model_name,
        timeout=args.timeout or serving.client_timeout_seconds,
        retries=serving.client_retries,
        backoff=serving.client_backoff_seconds,
        max_message_mb=serving.max_message_mb,
        ingestion=config.ingestion,
    )
    k = serving.top_k if args.top_k is None else args.top_k
    failed = 0
    if args.embed or args.rank_captions:
        from serving import embeddings

        if args.embed and args.rank_captions:
            print(
                "polyvit predict: --embed and --rank-captions exclude each other", file=sys.stderr
            )
            return 2
        try:
            captions = embeddings.split_captions(args.rank_captions) if args.rank_captions else []
        except ValueError as e:
            print(f"polyvit predict: {e}", file=sys.stderr)
            return 2
    with client:
        for path in args.files:
            try:
                if args.embed or args.rank_captions:
                    result = (
                        embeddings.rank_file(client, path, captions)
                        if captions
                        else embeddings.embed_file(client, path)
                    )
                    print(json.dumps(asdict(result)) if args.json else format_vatt(result))
                    continue
                predictions = client.predict_file(path, args.task, k)
            except (ValueError, MediaError) as e:
                print(f"polyvit predict: {e}", file=sys.stderr)
                failed += 1
                continue
            except RestError as e:
                print(f"polyvit predict: {path}: {e}", file=sys.stderr)
                failed += 1
                continue
            except grpc.RpcError as e:
                print(f"polyvit predict: {path}: {e.code().name}: {e.details()}", file=sys.stderr)
                failed += 1
                continue
            for prediction in predictions:
                if args.json:
                    record = asdict(prediction)
                    record["top_k"] = [
                        {"label": label, "score": score} for label, score in prediction.top_k
                    ]
                    print(json.dumps(record), flush=True)
                else:
                    print(format_prediction(prediction), flush=True)
    return 1 if failed else 0
