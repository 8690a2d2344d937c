"""Runs the training loop in a fresh process (the tests kill it, or give it two logical CPUs,
which TensorFlow only allows before it initialises its devices).

    python trainer_loop_worker.py train MODEL_DIR SCHEDULE STEPS SLEEP_SECONDS
    python trainer_loop_worker.py equivalence OUT_JSON SCHEDULE[,SCHEDULE...] STEPS
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# core.env first: it sets the environment TensorFlow reads when it loads.
import core.env  # noqa: E402, F401, I001
import tensorflow as tf  # noqa: E402
import trainer_loop_standins as standins  # noqa: E402

from core import logs  # noqa: E402
from trainer import train_loop  # noqa: E402


def run(config, model_dir, strategy=None, sleep_seconds=0.0):
    patterns = {t.name: "in-memory" for t in config.tasks}
    return train_loop.train(
        config,
        model_dir,
        patterns,
        patterns,
        strategy=strategy,
        build_model_fn=standins.build_standin_model,
        make_dataset_fn=functools.partial(
            standins.make_standin_dataset, sleep_seconds=sleep_seconds
        ),
    )


def main(argv):
    logs.setup()  # an entry point: the progress lines (the resume test reads them) reach stderr
    mode = argv[1]
    if mode == "train":
        model_dir, schedule, steps, sleep = argv[2], argv[3], int(argv[4]), float(argv[5])
        config = standins.standin_config(schedule, steps, checkpoint_every=5, log_every=5)
        result = run(config, model_dir, sleep_seconds=sleep)
        print("RESULT " + json.dumps({"start_step": result.start_step, "step": result.step}))
        return 0
    if mode == "equivalence":
        out, schedules, steps = argv[2], argv[3].split(","), int(argv[4])
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        losses = {}
        for schedule in schedules:
            config = standins.standin_config(schedule, steps, log_every=1)
            for name, strategy in (
                ("default", tf.distribute.get_strategy()),
                ("mirrored", mirrored),
            ):
                result = run(config, tempfile.mkdtemp(), strategy=strategy)
                assert result.num_replicas == (2 if name == "mirrored" else 1)
                history = [[h["step"], h["task"], h["loss"]] for h in result.history]
                losses.setdefault(schedule, {})[name] = history
        with open(out, "w") as f:
            json.dump(losses, f)
        return 0
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
