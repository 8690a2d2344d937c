"""Train-step throughput of the PolyViT model, per modality, against the machine's matmul speed.

For the first task of each modality in the config (default: the demo), times a train step
(forward, the task's loss, backward, the configured optimizer's update) on random inputs of
the input pipeline's feature shape and the task's batch size, and prints

    modality | task | batch | tokens | examples/s | GFLOP/s | matmul | / matmul

FLOPs are counted analytically (`train_step_flops`: 2 per multiply-add of every matmul of the
forward pass, times 3 for forward + backward), and divided by the fp32 `tf.matmul` FLOP/s of a
2048 x 2048 product (`matmul`, GFLOP/s) timed in alternation with each row's train step, so
the ratio is comparable across machines and both sides see a shared machine's same load.
The issue's goal for the demo model is a ratio of at least 0.5.

    python benchmarks/train_step.py [--config configs/demo.yaml] [--seconds 6] [--xla]
        [--loop-steps 600] [--realistic]

`--realistic` times the same table at a realistic size instead of the config's: ViT-S/16 on
224 px images, 8-frame 224 px clips in 2 x 16 x 16 tubelets and 4 s, 128-bin log-mel
spectrograms in 16 x 16 patches (197, 785 and 201 tokens), batches of 8, 2 and 4; the issue's
goal there is at least 0.5 of the matmul FLOP/s for every modality.

First a row for the training loop itself: its steps/s over the config's task mix (the
schedule's task sequence, `training.steps_per_loop` steps per traced call, inputs a fixed batch
per task) beside the isolated steps' mix; the issue's goal is a ratio of at least 0.9.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import core.env  # noqa: E402,F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)
from core import cli_args, logs  # noqa: E402

logs.setup()  # an entry point, before the stack's imports warn about anything

# isort: split
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from trainer.losses import per_example_loss  # noqa: E402
from trainer.model import build_model, parameter_groups  # noqa: E402
from trainer.optimizers import build_optimizer  # noqa: E402


def forward_flops(size, num_tokens: int, patch_dim: int, num_classes: int) -> int:
    """Matmul FLOPs of one example's forward pass (2 per multiply-add).

    size: a core.config.ModelSize; num_tokens includes the class token; patch_dim is the
    flattened patch length (prod(patch) * channels)."""
    n, d, m = num_tokens, size.hidden_size, size.mlp_dim
    embed = 2 * (n - 1) * patch_dim * d
    attention = 2 * 4 * n * d * d + 2 * 2 * n * n * d  # q, k, v, out; scores and weighted sum
    mlp = 2 * 2 * n * d * m
    layers = size.num_layers + size.modality_layers
    return embed + layers * (attention + mlp) + 2 * d * num_classes


def train_step_flops(size, num_tokens: int, patch_dim: int, num_classes: int) -> int:
    """Forward + backward: the backward pass costs about twice the forward's matmuls."""
    return 3 * forward_flops(size, num_tokens, patch_dim, num_classes)


def run_for(fn, seconds: float) -> tuple[int, float]:
    """Calls `fn` (which blocks until its result is ready) for about `seconds`: (calls, time)."""
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return calls, time.perf_counter() - start


def make_matmul(n: int = 2048):
    """An n x n fp32 matmul, ready to time: (function, FLOPs per call)."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul().numpy()
    return lambda: matmul().numpy(), 2 * n**3


def make_train_step(model, task, optimizer, jit: bool):
    """The co-training loop's single-task step without the distribution plumbing: the project's
    loss (trainer.losses) and optimizer (trainer.optimizers), gradients of the task's variables."""

    @tf.function(jit_compile=jit)
    def step(features, labels):
        with tf.GradientTape() as tape:
            logits = model(features, task=task.name, training=True)
            loss = tf.reduce_mean(per_example_loss(task, labels, logits)) * task.loss_weight
        variables = task_variables(model, task.name)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    return step


def task_variables(model, task_name: str) -> list:
    """What one task's step trains: the shared encoder, its modality's and its own head's."""
    groups = parameter_groups(model)
    modality = model.modality_of(task_name)
    return groups["shared"] + groups[f"modality/{modality}"] + groups[f"task/{task_name}"]


def interleaved(step, matmul, seconds: float, rounds: int = 4) -> dict[str, float]:
    """Alternates timing the train step and the reference matmul, so both see the same load
    on a shared machine: {"steps", "step_seconds", "matmuls", "matmul_seconds"}."""
    step()  # trace and compile
    step()
    totals = dict.fromkeys(("steps", "step_seconds", "matmuls", "matmul_seconds"), 0.0)
    for _ in range(rounds):
        calls, elapsed = run_for(step, seconds / rounds)
        totals["steps"] += calls
        totals["step_seconds"] += elapsed
        calls, elapsed = run_for(matmul, seconds / rounds / 2)
        totals["matmuls"] += calls
        totals["matmul_seconds"] += elapsed
    return totals


def benchmark(config, seconds: float, jit: bool) -> list[dict]:
    from transforms.input_pipeline import feature_shape

    model = build_model(config.model, config.tasks, config.inputs, load_checkpoint=False)
    matmul, matmul_flops = make_matmul()
    size = config.model.size()
    rows = []
    first_task = {}
    for task in config.tasks:
        first_task.setdefault(task.modality, task)
    for modality, task in first_task.items():
        shape = feature_shape(task, config.inputs)
        batch = task.batch_size
        features = {modality: tf.random.normal((batch, *shape))}
        labels = tf.one_hot(tf.range(batch) % task.num_classes, task.num_classes)
        optimizer = build_optimizer(
            config.training, config.training.learning_rate, model.trainable_variables
        )
        train_step = make_train_step(model, task, optimizer, jit)
        run_step = functools.partial(lambda f, x, y: f(x, y).numpy(), train_step, features, labels)
        timing = interleaved(run_step, matmul, seconds)
        tokenizer = model.tokenizers[modality]
        patch_dim = math.prod(tokenizer.patch) * shape[-1]
        flops = train_step_flops(size, tokenizer.num_tokens, patch_dim, task.num_classes)
        examples_per_s = timing["steps"] * batch / timing["step_seconds"]
        achieved = flops * examples_per_s
        reference = timing["matmuls"] * matmul_flops / timing["matmul_seconds"]
        rows.append(
            {
                "modality": modality,
                "task": task.name,
                "batch": batch,
                "tokens": tokenizer.num_tokens,
                "examples/s": examples_per_s,
                "GFLOP/s": achieved / 1e9,
                "matmul": reference / 1e9,
                "/ matmul": achieved / reference,
            }
        )
        print(
            f"  {modality}: {timing['steps']:.0f} steps in {timing['step_seconds']:.1f} s",
            flush=True,
        )
    return rows


def _constant_dataset(features: dict, labels):
    """make_dataset's signature: one fixed batch repeated (no input cost in the loop's row)."""

    def make(file_pattern, task, inputs, *, batch_size, **unused):
        return tf.data.Dataset.from_tensors(
            ({task.modality: features[task.name][:batch_size]}, labels[task.name][:batch_size])
        ).repeat()

    return make


def loop_benchmark(config, seconds: float, steps: int) -> dict:
    """The training loop's own steps/s (trainer.train_loop: restore, the task iterators, the
    multi-step call over the schedule's task sequence, `training.steps_per_loop` steps per
    call) against the isolated steps of the same task mix: the harmonic mean of each task's
    isolated steps/s, weighted by its share of the schedule."""
    import tempfile

    from core import config as config_lib
    from trainer import schedules, train_loop
    from transforms.input_pipeline import feature_shape

    trainer_config = config_lib.trainer_config(config)
    training = trainer_config.training
    strategy = tf.distribute.get_strategy()
    schedule = schedules.TaskSchedule(trainer_config.tasks, training, training.steps)
    model_dir = tempfile.mkdtemp(prefix="polyvit-loop-bench-")
    state = train_loop.restore(
        trainer_config,
        strategy,
        schedule,
        training.steps,
        lambda c: build_model(c.model, c.tasks, c.inputs, load_checkpoint=False),
        model_dir,
    )
    features, labels, isolated = {}, {}, {}
    for task in trainer_config.tasks:
        shape = feature_shape(task, config.inputs)
        features[task.name] = tf.random.normal((task.batch_size, *shape))
        classes = task.num_classes
        labels[task.name] = tf.one_hot(tf.range(task.batch_size) % classes, classes)
        optimizer = state.optimizer or state.task_optimizers[task.name]  # every_task: per task
        # The isolated steps compiled as the loop's are (training.jit_compile and its
        # jit_compile_min_steps): a like-for-like mix.
        jit = train_loop.jit_compiled(training, schedule.steps_per_task()[task.name])
        step = make_train_step(state.model, task, optimizer, jit)
        x, y = {task.modality: features[task.name]}, labels[task.name]
        step(x, y).numpy()
        calls, elapsed = run_for(lambda s=step, x=x, y=y: s(x, y).numpy(), seconds / 4)
        isolated[task.name] = calls / elapsed
    patterns = {t.name: "constant" for t in trainer_config.tasks}
    iterators = train_loop.task_iterators(
        trainer_config, strategy, patterns, _constant_dataset(features, labels), 0
    )
    bodies = train_loop.step_bodies(
        trainer_config, strategy, state, iterators, schedule.steps_per_task()
    )
    keys = list(bodies)
    multi = train_loop.MultiStep([bodies[k] for k in keys], [t.name for t in trainer_config.tasks])
    ids = np.array([keys.index(schedule.tasks_at(i)) for i in range(steps)], np.int32)
    per_loop = training.steps_per_loop
    chunks = [tf.constant(ids[i : i + per_loop]) for i in range(0, steps, per_loop)]
    multi.run(chunks[0])[0].numpy()  # trace
    start = time.perf_counter()
    for chunk in chunks:
        multi.run(chunk)[0].numpy()
    loop_rate = steps / (time.perf_counter() - start)
    share = {name: count / training.steps for name, count in schedule.steps_per_task().items()}
    mix = 1.0 / sum(share[name] / isolated[name] for name in share)
    return {
        "steps_per_loop": per_loop,
        "jit_compile": training.jit_compile,
        "isolated": isolated,
        "isolated mix steps/s": mix,
        "loop steps/s": loop_rate,
        "loop / mix": loop_rate / mix,
    }


# The realistic size: PolyViT's ViT-S/16 inputs (overrides of the config's model and inputs).
REALISTIC = [
    "model.preset=vit_s16",
    "inputs.image_size=224",
    "inputs.video_size=224",
    "inputs.num_frames=8",
    "inputs.num_mel_bins=128",
    "inputs.audio_seconds=4.0",
]
REALISTIC_BATCH = {"image": 8, "video": 2, "audio": 4}  # a few seconds per step on 2 cores


def realistic(config):
    """The config at the realistic size: REALISTIC's model and inputs, REALISTIC_BATCH."""
    import dataclasses

    from core import config as config_lib

    sized = config_lib.from_dict(config_lib.apply_overrides(config_lib.to_dict(config), REALISTIC))
    tasks = [dataclasses.replace(t, batch_size=REALISTIC_BATCH[t.modality]) for t in sized.tasks]
    return dataclasses.replace(sized, tasks=tasks)


def print_table(rows: list[dict]) -> None:
    header = list(rows[0])
    print(" | ".join(f"{h:>10}" for h in header))
    print("-|-".join("-" * 10 for _ in header))
    for row in rows:
        cells = [f"{v:>10.2f}" if isinstance(v, float) else f"{v!s:>10}" for v in row.values()]
        print(" | ".join(cells))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cli_args.add_config_args(parser)
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per modality")
    parser.add_argument("--xla", action="store_true", help="also time the XLA-compiled step")
    parser.add_argument(
        "--loop-steps", type=int, default=600, help="steps of the loop's row (0: no loop row)"
    )
    parser.add_argument(
        "--realistic", action="store_true", help="ViT-S/16 at 224 px etc. (no loop row)"
    )
    args = parser.parse_args(argv)
    config = cli_args.load_config(args)
    if args.realistic:
        config = realistic(config)
    print(f"model preset {config.model.preset}: {config.model.size()}")
    if args.loop_steps and not args.realistic:
        loop = loop_benchmark(config, args.seconds, args.loop_steps)
        print("\ntraining loop over the task mix (trainer.train_loop, one replica):")
        print(
            "  isolated steps/s per task: "
            + ", ".join(f"{name} {rate:.1f}" for name, rate in loop["isolated"].items())
        )
        print(
            f"  steps_per_loop {loop['steps_per_loop']}, jit_compile {loop['jit_compile']}: "
            f"loop {loop['loop steps/s']:.1f} steps/s, "
            f"isolated mix {loop['isolated mix steps/s']:.1f} steps/s, "
            f"loop / mix {loop['loop / mix']:.2f}",
            flush=True,
        )
    for jit in (False, True) if args.xla else (False,):
        print(f"\ntrain step ({'XLA' if jit else 'tf.function'}):", flush=True)
        print_table(benchmark(config, args.seconds, jit))


if __name__ == "__main__":
    main()
