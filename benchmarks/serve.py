"""Serving benchmark: gRPC through the local server vs. the same model called in process.

    .venv/bin/python benchmarks/serve.py [--config configs/demo.yaml] [--task digits]
                                         [--seconds 3] [--max-requests 2000]

Exports the config's model (untrained weights: speed does not depend on them), then measures
throughput (examples/s) and p50/p99 request latency with 1 and 8 concurrent clients at batch 1
and 8: in process (Servable.run), over gRPC with batching off, and over gRPC with batching on.
The server runs in its own process (as in production), on loopback. Prints the table and the
two ratios the README quotes: single client at batch 8 over gRPC vs in process, and 8 batch-1
clients with server-side batching on vs off.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from core import env, logs  # noqa: E402, F401  (env: before TensorFlow loads)


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
        poll_seconds=0,
        batching=BatchingOptions(**batching) if batching else None,
    )
    server = ModelServer(options).start()
    ready.put(server.target)
    threading.Event().wait()  # until terminated


def start_server(base, name, batching):
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    process = context.Process(target=_server_process, args=(base, name, batching, ready))
    process.start()
    return process, ready.get(timeout=300)


def measure(call, clients: int, seconds: float, max_requests: int) -> dict:
    """Runs `call()` from `clients` threads for `seconds` (or max_requests in all)."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds
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

    for _ in range(3):  # warm up the path
        call()
    began = time.perf_counter()
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--task", default="")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--max-requests", type=int, default=2000)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, e.g. --set serving.max_batch_size=8",
    )
    args = parser.parse_args(argv)
    logs.setup()  # an entry point: the library's progress lines reach stderr

    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from core import config as config_lib
    from serving.batching import BatchingOptions
    from serving.servable import load_servable

    config = config_lib.load(args.config, args.overrides)
    task = config.task(args.task) if args.task else config.tasks[0]
    if task.modality != "image":
        print(
            f"benchmark: task {task.name} is {task.modality}; pick an image task", file=sys.stderr
        )
        return 2
    serving = config.serving
    base = tempfile.mkdtemp(prefix="serve-bench-")
    print(f"exporting {config.model.preset} model to {base} ...", flush=True)
    path = export_model(config, base, "bench")
    examples = image_examples(8, config.ingestion.short_side)
    servable = load_servable(path, "bench", 1)

    batching = dataclasses.asdict(BatchingOptions.from_config(serving))
    rows = []
    for batch in (1, 8):
        inputs = {"examples": np.array(examples[:batch], dtype=object)}
        for clients in (1, 8):
            result = measure(
                lambda inputs=inputs: servable.run(task.name, inputs),
                clients,
                args.seconds,
                args.max_requests,
            )
            rows.append(("in process", "-", clients, batch, result))
            print(f"  in process   clients={clients} batch={batch}: {result}", flush=True)

    for label, options in (("off", None), ("on", batching)):
        process, target = start_server(base, "bench", options)
        try:
            channel = grpc.insecure_channel(target)
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for batch in (1, 8):
                request = predict_pb2.PredictRequest()
                request.model_spec.name = "bench"
                request.model_spec.signature_name = task.name
                request.inputs["examples"].CopyFrom(
                    tf.make_tensor_proto(examples[:batch], dtype=tf.string)
                )
                for clients in (1, 8):
                    result = measure(
                        lambda request=request, stub=stub: stub.Predict(request, 60),
                        clients,
                        args.seconds,
                        args.max_requests,
                    )
                    rows.append(("gRPC", label, clients, batch, result))
                    print(
                        f"  gRPC batching={label:3s} clients={clients} batch={batch}: {result}",
                        flush=True,
                    )
            channel.close()
        finally:
            process.terminate()
            process.join(30)

    print()
    print(
        f"{'path':10s} {'batching':8s} {'clients':>7s} {'batch':>5s} {'examples/s':>10s} "
        f"{'p50 ms':>8s} {'p99 ms':>8s}"
    )
    for path_name, label, clients, batch, r in rows:
        print(
            f"{path_name:10s} {label:8s} {clients:7d} {batch:5d} {r['rps'] * batch:10.1f} "
            f"{r['p50']:8.2f} {r['p99']:8.2f}"
        )

    def rate(path_name, label, clients, batch):
        for p, lab, c, b, r in rows:
            if (p, lab, c, b) == (path_name, label, clients, batch):
                return r["rps"] * b
        raise KeyError((path_name, label, clients, batch))

    single = rate("gRPC", "off", 1, 8) / rate("in process", "-", 1, 8)
    batched = rate("gRPC", "on", 8, 1) / rate("gRPC", "off", 8, 1)
    print()
    print(
        f"1 client, batch 8: gRPC / in process throughput = {single:.2f} "
        f"(loss {100 * (1 - single):.0f}%; goal: loss <= 15%)"
    )
    print(f"8 clients, batch 1: batching on / off throughput = {batched:.2f}x (goal: >= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
