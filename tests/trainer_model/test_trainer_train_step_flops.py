"""The benchmark's analytic FLOP count equals the matmul FLOPs of the model's actual graph."""

from __future__ import annotations

import importlib.util
import math
import os

import tensorflow as tf

from tests.support.configs import FEATURE_SHAPES, model_config
from trainer.model import build_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_benchmark():
    path = os.path.join(ROOT, "benchmarks", "train_step.py")
    spec = importlib.util.spec_from_file_location("train_step_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def static_shape(tensor) -> list[int]:
    return [int(d) for d in tensor.shape]


def op_flops(op) -> int:
    """2 per multiply-add of a MatMul, BatchMatMulV2 or Einsum with static shapes."""
    if op.type == "MatMul":
        a, b = (static_shape(t) for t in op.inputs)
        m = a[1] if op.get_attr("transpose_a") else a[0]
        n = b[0] if op.get_attr("transpose_b") else b[1]
        k = a[0] if op.get_attr("transpose_a") else a[1]
        return 2 * m * k * n
    if op.type == "BatchMatMulV2":
        out = static_shape(op.outputs[0])
        a = static_shape(op.inputs[0])
        k = a[-2] if op.get_attr("adj_x") else a[-1]
        return 2 * math.prod(out) * k
    if op.type == "Einsum":
        # Every distinct index is summed or kept once: 2 * product of all index sizes.
        equation = op.get_attr("equation").decode()
        sizes = {}
        for spec, tensor in zip(equation.split("->")[0].split(","), op.inputs, strict=True):
            sizes.update(zip(spec, static_shape(tensor), strict=True))
        return 2 * math.prod(sizes.values())
    return 0


def test_analytic_forward_flops_match_the_graph():
    bench = load_benchmark()
    # One modality layer and one shared layer: both kinds of block are counted.
    config = model_config(modality_layers=1, num_layers=1)
    model = build_model(config.model, config.tasks, feature_shapes=FEATURE_SHAPES)
    for task in config.tasks:
        shape = FEATURE_SHAPES[task.modality]
        modality, name = task.modality, task.name
        fn = tf.function(lambda x, m=modality, t=name: model({m: x}, task=t))
        graph = fn.get_concrete_function(tf.TensorSpec((1, *shape))).graph
        counted = sum(op_flops(op) for op in graph.get_operations())
        tokenizer = model.tokenizers[task.modality]
        patch_dim = math.prod(tokenizer.patch) * shape[-1]
        expected = bench.forward_flops(
            config.model.size(), tokenizer.num_tokens, patch_dim, task.num_classes
        )
        assert counted == expected, task.name
        assert (
            bench.train_step_flops(
                config.model.size(), tokenizer.num_tokens, patch_dim, task.num_classes
            )
            == 3 * expected
        )
