"""Runs VATT's losses under MirroredStrategy on two logical CPUs (a fresh process: TensorFlow
only splits a device before it initialises). Prints one JSON line: replica count, what each
replica gathered, its offset, and the summed replica shares of both losses.

    python vatt_replica_worker.py BATCH_JSON
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import core.env  # noqa: E402, F401, I001
import tensorflow as tf  # noqa: E402

from trainer.vatt import losses  # noqa: E402


def main(path: str) -> int:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with open(path) as f:
        batch = json.load(f)
    tensors = {k: tf.constant(v, tf.float32) for k, v in batch.items()}
    dataset = tf.data.Dataset.from_tensor_slices(tensors).batch(6)
    (local,) = list(strategy.experimental_distribute_dataset(dataset))

    @tf.function
    def step(x):
        gathered = losses.gather_global(x["video"])
        nce = losses.nce_loss(x["video"], x["audio"], 0.1, x["mask"])
        mil = losses.mil_nce_loss(x["video"], x["text"], 0.1, mask=x["mask"])
        return gathered.values, gathered.offset, nce, mil

    values, offsets, nce, mil = strategy.run(step, args=(local,))
    per_replica = strategy.experimental_local_results
    out = {
        "replicas": strategy.num_replicas_in_sync,
        "gathered": [v.numpy().tolist() for v in per_replica(values)],
        "offsets": [int(o) for o in per_replica(offsets)],
        "nce": float(strategy.reduce("SUM", nce, axis=None)),
        "mil": float(strategy.reduce("SUM", mil, axis=None)),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
