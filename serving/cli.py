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
from serving.client import PolyvitClient, Prediction
from serving.server import ModelServer, ServerOptions

log = logging.getLogger("polyvit.serving")

# --------------------------------------------------------------------------------------------
# polyvit serve


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    cli_args.add_config_args(parser)
    parser.add_argument(
        "--model-base-path",
        help="folder holding <model_name>/<version>/ " "(default: serving.push_dir)",
    )
    parser.add_argument("--model-name", help="model name (default: serving.model_name)")
    parser.add_argument("--port", type=int, help="gRPC port (default: serving.port)")
    parser.add_argument("--host", help="address to bind (default: serving.host, loopback)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus /metrics port; 0 = off")
    parser.add_argument("--poll-seconds", type=float, help="how often to look for new versions")
    parser.add_argument(
        "--enable-batching",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="merge concurrent requests into batches (default: serving.enable_batching)",
    )
    parser.add_argument("--max-batch-size", type=int)
    parser.add_argument("--batch-timeout-micros", type=int)
    parser.add_argument("--num-batch-threads", type=int)


_FLAG_FIELDS = (
    "model_base_path",
    "model_name",
    "port",
    "host",
    "metrics_port",
    "poll_seconds",
    "enable_batching",
    "max_batch_size",
    "batch_timeout_micros",
    "num_batch_threads",
)


def serve(args: argparse.Namespace) -> int:
    config = cli_args.load_config(args)
    flags = {k: getattr(args, k) for k in _FLAG_FIELDS if getattr(args, k, None) is not None}
    try:
        options = ServerOptions.from_config(config.serving, **flags)
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
    print(f"polyvit serve: {options.model_name} on {server.target}", flush=True)
    stopping.wait()
    server.stop()
    return 0


# --------------------------------------------------------------------------------------------
# polyvit predict


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    cli_args.add_config_args(parser)
    parser.add_argument("--server", help="HOST:PORT (default: 127.0.0.1:<serving.port>)")
    parser.add_argument("--model", help="model name (default: serving.model_name)")
    parser.add_argument("--task", help="task signature (default: every task of the file's kind)")
    parser.add_argument("--top-k", type=int, help="labels to print (default: serving.top_k)")
    parser.add_argument("--json", action="store_true", help="print JSON lines for machines")
    parser.add_argument("--timeout", type=float, help="seconds per call (default: config)")
    parser.add_argument("files", nargs="+", metavar="FILE", help="video, audio or image files")


def format_prediction(prediction: Prediction) -> str:
    clips = f", {prediction.clips} clips" if prediction.clips != 1 else ""
    lines = [f"{prediction.file}  [{prediction.task}, version {prediction.model_version}{clips}]"]
    lines += [f"  {score:7.4f}  {label}" for label, score in prediction.top_k]
    return "\n".join(lines)


def predict(args: argparse.Namespace) -> int:
    from media.errors import MediaError

    config = cli_args.load_config(args)
    serving = config.serving
    client = PolyvitClient(
        args.server or f"127.0.0.1:{serving.port}",
        args.model or serving.model_name,
        timeout=args.timeout or serving.client_timeout_seconds,
        retries=serving.client_retries,
        backoff=serving.client_backoff_seconds,
        max_message_mb=serving.max_message_mb,
        ingestion=config.ingestion,
    )
    k = serving.top_k if args.top_k is None else args.top_k
    failed = 0
    with client:
        for path in args.files:
            try:
                predictions = client.predict_file(path, args.task, k)
            except (ValueError, MediaError) as e:
                print(f"polyvit predict: {e}", file=sys.stderr)
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
