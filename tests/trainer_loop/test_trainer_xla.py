"""training.jit_compile: the real model's train step of every modality (image, video, audio
single- and multi-label), run by the multi-step loop, compiles with XLA on CPU (the stand-in for
a TPU, which compiles every step) and gives the losses of the uncompiled step.

That XLA is what runs is checked apart: the loop's traced graph calls every step as a function
TensorFlow must compile with XLA (`_XlaMustCompile`, none without jit_compile), and each of
those step functions lowers to HLO (experimental_get_compiler_ir)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from core import config as config_lib
from tests.support import configs
from trainer import schedules, train_loop
from trainer.model import build_model
from transforms.input_pipeline import feature_shape

EXAMPLES = 8


def _config(jit_compile: bool, schedule: str, min_steps: int = 0) -> config_lib.TrainerConfig:
    overrides = {
        **configs.model_overrides(num_layers=1, num_heads=2),
        "training.schedule": schedule,
        "training.steps": 8,
        "training.steps_per_loop": 4,
        "training.log_every": 1,
        "training.checkpoint_every": 8,
        "training.warmup_steps": 0,
        "training.jit_compile": jit_compile,
        "training.jit_compile_min_steps": min_steps,
    }
    for name in ("digits", "motion", "dtmf", "tone_mix"):
        overrides[f"tasks.{name}.batch_size"] = 4
    return config_lib.trainer_config(configs.tiny_config(configs.four_tasks(), overrides))


def _fixed_dataset(file_pattern, task, inputs, *, batch_size, **unused):
    """Random features of the input pipeline's static shape (the model's contract), fixed per
    task, so both runs see the same batches."""
    rng = np.random.default_rng(sum(map(ord, task.name)))
    x = rng.normal(size=(EXAMPLES, *feature_shape(task, inputs))).astype(np.float32)
    if task.label_type == "multi":
        y = (rng.random((EXAMPLES, task.num_classes)) < 0.3).astype(np.float32)
    else:
        y = np.eye(task.num_classes, dtype=np.float32)[np.arange(EXAMPLES) % task.num_classes]
    ds = tf.data.Dataset.from_tensor_slices(({task.modality: x}, y)).repeat()
    return ds.batch(batch_size, drop_remainder=True)


def _losses(tmp_path, jit_compile: bool, schedule: str) -> list[tuple[int, str, float]]:
    config = _config(jit_compile, schedule)
    patterns = {t.name: "in-memory" for t in config.tasks}
    result = train_loop.train(
        config,
        str(tmp_path / f"jit{int(jit_compile)}"),
        patterns,
        build_model_fn=lambda c: build_model(c.model, c.tasks, c.inputs, load_checkpoint=False),
        make_dataset_fn=_fixed_dataset,
    )
    return [(h["step"], h["task"], h["loss"]) for h in result.history]


@pytest.mark.parametrize("schedule", ["task_by_task", "accumulate"])
def test_xla_compiled_steps_give_the_losses_of_uncompiled_ones(tmp_path, schedule):
    tf.keras.utils.set_random_seed(0)
    plain = _losses(tmp_path, False, schedule)
    compiled = _losses(tmp_path, True, schedule)
    assert {task for _, task, _ in plain} == {"digits", "motion", "dtmf", "tone_mix"}
    assert [row[:2] for row in compiled] == [row[:2] for row in plain]
    assert all(np.isfinite(loss) for *_, loss in compiled)
    # XLA fuses and reorders float ops: equal within rounding, not bit for bit.
    np.testing.assert_allclose(
        [row[2] for row in compiled], [row[2] for row in plain], rtol=2e-3, atol=1e-4
    )


def _xla_functions(graph) -> list[str]:
    """Functions of a traced graph's library that TensorFlow must compile with XLA."""
    library = graph.as_graph_def().library.function
    return [f.signature.name for f in library if f.attr["_XlaMustCompile"].b]


def _step_inputs(key: tuple[str, ...], iterators: dict) -> tuple:
    """The replica function's arguments for one step: (features, labels) of a single-task step,
    ({task: (features, labels)},) of a step over several tasks."""
    if len(key) == 1:
        return tuple(next(iterators[key[0]]))
    return ({name: next(iterators[name]) for name in key},)


def _loop_bodies(tmp_path, config, steps_per_task=None):
    """The training loop's step bodies over fixed batches, and their task iterators."""
    strategy = tf.distribute.get_strategy()
    steps = config.training.steps
    state = train_loop.restore(
        config,
        strategy,
        schedules.TaskSchedule(config.tasks, config.training, steps),
        steps,
        lambda c: build_model(c.model, c.tasks, c.inputs, load_checkpoint=False),
        str(tmp_path),
    )
    patterns = {t.name: "in-memory" for t in config.tasks}
    iterators = train_loop.task_iterators(config, strategy, patterns, _fixed_dataset, 0)
    bodies = train_loop.step_bodies(config, strategy, state, iterators, steps_per_task)
    return bodies, iterators


def _compiled_in_loop(config, bodies) -> list[str]:
    multi = train_loop.MultiStep(list(bodies.values()), [t.name for t in config.tasks])
    return _xla_functions(multi.run.get_concrete_function().graph)


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("schedule", ["task_by_task", "accumulate"])
def test_the_loop_runs_every_modality_step_through_xla(tmp_path, schedule, jit_compile):
    config = _config(jit_compile, schedule)
    bodies, iterators = _loop_bodies(tmp_path, config)
    compiled = _compiled_in_loop(config, bodies)
    if not jit_compile:
        assert compiled == []
        return
    # One XLA-compiled function per branch of the loop: every task's step (or the one step over
    # all tasks) runs compiled inside the multi-step call.
    assert len(compiled) == len(bodies) == (4 if schedule == "task_by_task" else 1)
    modalities = {t.name: t.modality for t in config.tasks}
    assert {modalities[name] for key in bodies for name in key} == {"image", "video", "audio"}
    for key, body in bodies.items():
        hlo = body.replica_fn.experimental_get_compiler_ir(*_step_inputs(key, iterators))(
            stage="hlo"
        )
        assert hlo.startswith("HloModule"), key
        assert " dot(" in hlo, key  # the encoder's matmuls, forward and backward


def test_jit_compile_min_steps_leaves_the_short_tasks_uncompiled(tmp_path):
    config = _config(True, "task_by_task", min_steps=100)
    counts = {"digits": 3000, "motion": 300, "dtmf": 99, "tone_mix": 100}
    bodies, iterators = _loop_bodies(tmp_path, config, counts)
    assert len(_compiled_in_loop(config, bodies)) == 3
    dtmf = bodies[("dtmf",)].replica_fn
    assert not hasattr(dtmf, "experimental_get_compiler_ir")  # runs as the loop's plain graph
    hlo = bodies[("tone_mix",)].replica_fn.experimental_get_compiler_ir(
        *_step_inputs(("tone_mix",), iterators)
    )(stage="hlo")
    assert hlo.startswith("HloModule")
