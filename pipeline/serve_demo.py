"""The last step of `make demo`: serve the pushed model and ask it about one file per modality.

Runs the real commands a user would: `polyvit serve` on the push directory (a subprocess, on a
free loopback port), waits for the gRPC health service to say SERVING, then one `polyvit predict`
on a demo image, video and audio file (one client process), after a line of their true labels.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from core import cli_args, logs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pick_files(data_root: str) -> list[tuple[str, str]]:
    """(path, true label) of one eval-split file per modality, from the demo manifest."""
    with open(os.path.join(data_root, "manifest.json")) as f:
        datasets = json.load(f)["datasets"]
    chosen: list[tuple[str, str, str]] = []
    for _, dataset in sorted(datasets.items()):
        if dataset["modality"] in {m for m, _, _ in chosen}:
            continue
        for item in dataset["files"]:
            # The whole file goes to the model, so for the DTMF clips pick one whose key tone
            # covers the file's middle (the eval crop) and that has no distractor key.
            if item.get("split", "eval") == "train" or item.get("distractor"):
                continue
            if "start" in item and dataset["layout"] == "dmvr_csv":
                middle = item["duration"] / 2
                if not item["start"] <= middle <= item["end"]:
                    continue
            label = item.get("label") or ",".join(item.get("label_names", []))
            chosen.append((dataset["modality"], os.path.join(data_root, item["path"]), label))
            break
    return [(path, label) for _, path, label in chosen]


def wait_until_serving(target: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.5)
    raise TimeoutError(f"the model server at {target} did not become ready in {timeout_s:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli_args.add_config_args(parser)
    parser.add_argument("--data-root", default=None, help="demo media (default: data_root)")
    parser.add_argument("--startup-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    logs.setup()
    config = cli_args.load_config(args)
    data_root = args.data_root or config.data_root
    model_path = os.path.join(config.serving.push_dir, config.serving.model_name)
    if not os.path.isdir(model_path) or not os.listdir(model_path):
        print(f"No model was pushed to {model_path} (not blessed?): nothing to serve.")
        return 1
    target = f"127.0.0.1:{free_port()}"
    polyvit = [sys.executable, "-m", "pipeline.cli"]
    common = ["--config", args.config, *(x for o in args.overrides for x in ("--set", o))]
    server = subprocess.Popen(
        [*polyvit, "serve", *common, "--port", target.split(":")[1], "--metrics-port", "0"]
    )
    try:
        wait_until_serving(target, args.startup_timeout)
        files = pick_files(data_root)
        print("\nTrue labels:")
        for path, label in files:
            print(f"  {path}: {label}")
        paths = [path for path, _ in files]
        # One client process for every file: each process start loads the client's stack.
        print(f"$ polyvit predict --server {target} {' '.join(paths)}", flush=True)
        subprocess.run([*polyvit, "predict", *common, "--server", target, *paths], check=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
