"""Serving benchmark: gRPC and REST through the local server vs. the same model called in process.

    .venv/bin/python benchmarks/serve.py [--config configs/demo.yaml] [--task digits]
                                         [--sizes tiny,small@64] [--seconds 3]
                                         [--max-requests 2000] [--rounds 3]

For each size (a model preset, optionally `@<inputs.image_size>`: the default `small@64` is
the realistic size, where the model's own compute is a real share of a request), exports the
config's model (untrained weights: speed does not depend on them) and measures throughput
(examples/s) and p50/p99 request latency with 1 and 8 concurrent clients at batch 1 and 8: in
process (Servable.run), then over gRPC and over REST with batching off, then 8 batch-1 clients
over both with batching on. The servers run in processes of their own (as in production), on
loopback. Every figure is measured `--rounds` times, the rounds in turn (the machine is shared:
a burst of other load then falls on all kinds of figure alike), and the table shows medians
with the range. Prints one table with each row's throughput as a ratio to the in-process figure
at the same clients and batch, then the two goals, each MET or NOT MET: one client at batch 8
over gRPC reaches at least 0.85 of in process, and 8 batch-1 clients get at least 1.5x with
batching on; then the ceiling of the second (what merging 8 batch-1 requests into one batch-8
call wins in process), the processor and the load average at the start and end.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import http.client
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from core import cli_args, env, logs  # noqa: E402, F401  (env: before TensorFlow loads)

CLIENTS = (1, 8)
BATCHES = (1, 8)


@dataclasses.dataclass(frozen=True)
class Size:
    preset: str
    image_size: int | None = None  # None: the config's inputs.image_size

    @property
    def label(self) -> str:
        return self.preset if self.image_size is None else f"{self.preset}@{self.image_size}"

    def overrides(self) -> list[str]:
        values = [f"model.preset={self.preset}"]
        if self.image_size is not None:
            values.append(f"inputs.image_size={self.image_size}")
        return values


def parse_sizes(text: str) -> list[Size]:
    """`tiny,small@64` -> sizes: a model preset, optionally `@` the input image size."""
    sizes = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        preset, _, image = item.partition("@")
        sizes.append(Size(preset, int(image) if image else None))
    if not sizes:
        raise ValueError("--sizes: name at least one model preset")
    return sizes


def export_model(config, base: str, name: str) -> str:
    from core import config as config_lib
    from serving import layout
    from trainer.export import export_saved_model
    from trainer.model import build_model

    vocabularies = {t.name: [f"{t.name}_{i}" for i in range(t.num_classes)] for t in config.tasks}
    path = layout.version_dir(base, name, 1)
    model = build_model(config.model, config.tasks, config.inputs)
    export_saved_model(model, config_lib.trainer_config(config), vocabularies, path)
    return path


def image_examples(count: int, size: int, seed: int = 0) -> list[bytes]:
    import tensorflow as tf

    from media.decode import DecodedClip
    from media.dmvr import ClipMetadata, build_sequence_example

    rng = np.random.default_rng(seed)
    examples = []
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        jpeg = tf.io.encode_jpeg(pixels, quality=90).numpy()
        clip = DecodedClip(0.0, 0.0, [jpeg], 0.0, size, size, None, 0)
        meta = ClipMetadata(task="bench", filename=f"{i}.png", start_us=0, end_us=0)
        examples.append(build_sequence_example(clip, meta).SerializeToString())
    return examples


def _server_process(base, name, batching, ready):
    from serving.batching import BatchingOptions
    from serving.model_config import ModelConfig
    from serving.server import ModelServer, ServerOptions

    options = ServerOptions(
        models=(ModelConfig(name, os.path.join(base, name)),),
        port=0,
        rest_api_port=0,
        poll_seconds=0,
        batching=BatchingOptions(**batching) if batching else None,
    )
    server = ModelServer(options).start()
    ready.put((server.target, server.rest_url, server.serve_metrics_on_any_port()))
    threading.Event().wait()  # until terminated


def start_server(base, name, batching):
    """The server in its own process; returns it with its gRPC target, REST URL and metrics
    port."""
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    process = context.Process(target=_server_process, args=(base, name, batching, ready))
    process.start()
    target, rest_url, metrics_port = ready.get(timeout=300)
    return process, target, rest_url, metrics_port


def batch_totals(metrics_port: int) -> tuple[float, float]:
    """(model calls, rows) the server has run so far, from its /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30) as r:
        lines = r.read().decode().splitlines()
    values = dict(line.rsplit(" ", 1) for line in lines if line.startswith("polyvit_serving_batch"))
    return (
        float(values["polyvit_serving_batch_size_count"]),
        float(values["polyvit_serving_batch_size_sum"]),
    )


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used, from /proc; None where there is none.
    Unlike throughput it hardly moves with other jobs' load on a shared machine."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def grpc_call(target: str, model: str, task: str, examples: list[bytes]) -> Callable[[], object]:
    """One Predict of `examples` per call, as `polyvit predict` sends it (one shared channel)."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = task
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto(examples, dtype=tf.string))
    return lambda: stub.Predict(request, 60)


def rest_call(url: str, model: str, task: str, examples: list[bytes]) -> Callable[[], object]:
    """One POST :predict per call on a kept-alive connection per client thread."""
    host_port = url.split("://", 1)[1]
    body = json.dumps(
        {
            "signature_name": task,
            "inputs": {"examples": [{"b64": base64.b64encode(e).decode()} for e in examples]},
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    path = f"/v1/models/{model}:predict"
    local = threading.local()

    def call():
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(host_port, timeout=60)
        local.connection.request("POST", path, body, headers)
        response = local.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"REST predict: HTTP {response.status}: {payload[:200]!r}")
        return json.loads(payload)

    return call


def measure(call, clients: int, seconds: float, max_requests: int) -> dict:
    """Runs `call()` from `clients` threads for `seconds` (or max_requests in all)."""
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def worker():
        barrier.wait()
        while time.perf_counter() < stop_at:
            with lock:
                if len(latencies) >= max_requests:
                    return
            start = time.perf_counter()
            call()
            with lock:
                latencies.append(time.perf_counter() - start)

    for _ in range(3):  # warm up the path (the first call may trace the model: not timed)
        call()
    began = time.perf_counter()
    stop_at = began + seconds
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    lat = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
    }


@dataclasses.dataclass(frozen=True)
class Row:
    size: str
    path: str  # in process, gRPC, REST
    batching: str  # -, off, on
    clients: int
    batch: int
    result: dict

    @property
    def examples_per_second(self) -> float:
        return self.result["rps"] * self.batch


def matching(rows: list[Row], key: tuple) -> list[Row]:
    return [r for r in rows if (r.size, r.path, r.batching, r.clients, r.batch) == key]


def rate(rows: list[Row], size: str, path: str, batching: str, clients: int, batch: int) -> float:
    """The median examples/s over the rounds (the machine is shared: one round can be slow)."""
    found = matching(rows, (size, path, batching, clients, batch))
    if not found:
        raise KeyError((size, path, batching, clients, batch))
    return float(np.median([r.examples_per_second for r in found]))


def bench_size(args, size: Size, base_config: str, rows: list[Row]) -> None:
    from core import config as config_lib
    from serving.batching import BatchingOptions
    from serving.servable import load_servable

    config = config_lib.load(base_config, size.overrides() + args.overrides)
    task = config.task(args.task) if args.task else config.tasks[0]
    if task.modality != "image":
        raise SystemExit(f"benchmark: task {task.name} is {task.modality}; pick an image task")
    base = tempfile.mkdtemp(prefix="serve-bench-")
    print(f"[{size.label}] exporting the {config.model.preset} model to {base} ...", flush=True)
    version_path = export_model(config, base, "bench")
    examples = image_examples(max(BATCHES), config.ingestion.short_side)
    servable = load_servable(version_path, "bench", 1)

    def record(path, batching, clients, batch, call, metrics_port=None, pid=None):
        before = batch_totals(metrics_port) if metrics_port else None
        cpu_before = cpu_seconds(pid) if pid else time.process_time()
        result = measure(call, clients, args.seconds, args.max_requests)
        if before is not None:  # rows per model call: how well batching merged requests
            after = batch_totals(metrics_port)
            calls, rows_run = after[0] - before[0], after[1] - before[1]
            result["rows_per_model_call"] = round(rows_run / max(calls, 1), 2)
        cpu_after = cpu_seconds(pid) if pid else time.process_time()
        if cpu_before is not None and cpu_after is not None:
            # The server's CPU per example (warm-up calls included: 3 of some hundreds); in
            # process, this process's (the model calls and the loop around them).
            examples_run = (result["requests"] + 3) * batch
            result["cpu_ms_per_example"] = round(1000 * (cpu_after - cpu_before) / examples_run, 3)
        rows.append(Row(size.label, path, batching, clients, batch, result))
        print(
            f"  [{size.label}] {path:10s} batching={batching:3s} clients={clients} "
            f"batch={batch}: {result}",
            flush=True,
        )

    batching = dataclasses.asdict(BatchingOptions.from_config(config.serving))
    servers = {}  # batching off, and on with the config's values; both up for all rounds
    for label, options in (("off", None), ("on", batching)):
        servers[label] = start_server(base, "bench", options)
    try:
        # Rounds in turn over in process, batching off and on, so that a burst of other load
        # on the machine falls on every kind of figure alike; the table takes medians.
        for _ in range(args.rounds):
            for batch in BATCHES:
                inputs = {"examples": np.array(examples[:batch], dtype=object)}
                for clients in CLIENTS:
                    call = lambda i=inputs: servable.run(task.name, i)  # noqa: E731
                    record("in process", "-", clients, batch, call)
            for label, (process, target, rest_url, metrics_port) in servers.items():
                for path, make_call, where in (
                    ("gRPC", grpc_call, target),
                    ("REST", rest_call, rest_url),
                ):
                    for batch in BATCHES if label == "off" else (1,):
                        call = make_call(where, "bench", task.name, examples[:batch])
                        for clients in CLIENTS if label == "off" else (max(CLIENTS),):
                            record(path, label, clients, batch, call, metrics_port, process.pid)
    finally:
        for process, *_ in servers.values():
            process.terminate()
            process.join(30)


def print_table(rows: list[Row]) -> None:
    print()
    print(
        f"{'size':10s} {'path':10s} {'batching':8s} {'clients':>7s} {'batch':>5s} "
        f"{'examples/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} {'/ in proc':>9s} "
        f"{'cpu ms/ex':>9s}"
    )
    seen = []
    for row in rows:
        key = (row.size, row.path, row.batching, row.clients, row.batch)
        if key in seen:
            continue
        seen.append(key)
        found = matching(rows, key)
        reference = rate(rows, row.size, "in process", "-", row.clients, row.batch)
        value = rate(rows, *key)
        p50 = np.median([r.result["p50"] for r in found])
        p99 = np.median([r.result["p99"] for r in found])
        cpu = [r.result["cpu_ms_per_example"] for r in found if "cpu_ms_per_example" in r.result]
        cpu_text = f"{np.median(cpu):9.2f}" if cpu else f"{'-':>9s}"
        spread = ""
        if len(found) > 1:
            low = min(r.examples_per_second for r in found)
            high = max(r.examples_per_second for r in found)
            spread = f"   ({low:.0f}-{high:.0f})"
        print(
            f"{row.size:10s} {row.path:10s} {row.batching:8s} {row.clients:7d} {row.batch:5d} "
            f"{value:10.1f} {p50:8.2f} {p99:8.2f} {value / reference:9.2f} {cpu_text}{spread}"
        )


def cpu_per_example(rows: list[Row], *key) -> float:
    values = [r.result.get("cpu_ms_per_example", np.nan) for r in matching(rows, key)]
    return float(np.median(values)) if values else float("nan")


def verdict(value: float, goal: float) -> str:
    return "MET" if value >= goal else "NOT MET"


def rows_per_call(rows: list[Row], *key) -> float:
    values = [r.result["rows_per_model_call"] for r in matching(rows, key)]
    return float(np.median(values)) if values else float("nan")


def print_goals(rows: list[Row], sizes: list[Size]) -> None:
    """The issue's two goals per size, each MET or NOT MET, and what bounds the second."""
    for size in sizes:
        s = size.label
        print(f"\nGoals at {s} (medians of the rounds):")
        for path in ("gRPC", "REST"):
            single = rate(rows, s, path, "off", 1, 8) / rate(rows, s, "in process", "-", 1, 8)
            goal = f"(goal >= 0.85: {verdict(single, 0.85)})" if path == "gRPC" else "(no goal)"
            print(f"  {path:4s} 1 client at batch 8, / in process:         {single:5.2f}  {goal}")
        for path in ("gRPC", "REST"):
            batched = rate(rows, s, path, "on", 8, 1) / rate(rows, s, path, "off", 8, 1)
            merged = rows_per_call(rows, s, path, "on", 8, 1)
            print(
                f"  {path:4s} 8 clients at batch 1, batching on / off: {batched:5.2f}x "
                f"(goal >= 1.5x: {verdict(batched, 1.5)}; {merged:.1f} rows per model call)"
            )
        # What batching can win at most: merging 8 batch-1 requests turns them into one
        # batch-8 call, so on / off cannot beat (in process 1 x batch 8) / (path off, 8 x 1).
        merged = rate(rows, s, "in process", "-", 1, 8)
        apart = rate(rows, s, "in process", "-", 8, 1)
        print(
            f"  Ceiling: in process, one batch-8 call does {merged / apart:.2f}x the examples/s "
            f"of 8 concurrent batch-1 calls, so merging can win about that much; batching "
            f"on / off is bounded by {merged / rate(rows, s, 'gRPC', 'off', 8, 1):.2f}x over "
            f"gRPC and {merged / rate(rows, s, 'REST', 'off', 8, 1):.2f}x over REST (one "
            "batch-8 call in process over 8 batch-1 clients with batching off)"
        )
        # CPU per example hardly depends on other jobs' load, unlike examples/s.
        cpu = {
            name: cpu_per_example(rows, s, path, batching, clients, batch)
            for name, path, batching, clients, batch in (
                ("apart", "in process", "-", 8, 1),
                ("merged", "in process", "-", 1, 8),
                ("off", "gRPC", "off", 8, 1),
                ("on", "gRPC", "on", 8, 1),
            )
        }
        print(
            f"  CPU ms per example (less load-sensitive): in process {cpu['apart']:.2f} at "
            f"8 x batch 1, {cpu['merged']:.2f} at batch 8; the gRPC server at 8 x batch 1: "
            f"{cpu['off']:.2f} batching off, {cpu['on']:.2f} on ({cpu['off'] / cpu['on']:.2f}x "
            "less with batching: the gain where the server alone is CPU-bound)"
        )


def machine() -> str:
    """The processor (lscpu's model name) and its core count, for quoting the figures."""
    name = "unknown processor"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli_args.add_config_args(parser)
    parser.add_argument("--task", default="")
    parser.add_argument(
        "--sizes",
        default="tiny,small@64",
        help="model presets to measure, each optionally @<inputs.image_size>",
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--max-requests", type=int, default=2000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure every figure this many times, in turn; the table shows medians",
    )
    args = parser.parse_args(argv)
    logs.setup()  # an entry point: the library's progress lines reach stderr
    try:
        sizes = parse_sizes(args.sizes)
    except ValueError as e:
        print(f"benchmark: {e}", file=sys.stderr)
        return 2
    began = time.perf_counter()
    load_before = load_average()
    rows: list[Row] = []
    for size in sizes:
        bench_size(args, size, args.config, rows)
    print_table(rows)
    print_goals(rows, sizes)
    print(
        f"\n{machine()}; load average (1/5/15 min) {load_before} at the start, "
        f"{load_average()} at the end; {args.rounds} rounds of {args.seconds:g} s per figure; "
        f"{time.perf_counter() - began:.0f} s in all. Other jobs on the same cores lower "
        "examples/s unevenly between figures: quote the ratios with this load."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
