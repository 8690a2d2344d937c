"""Two extra SavedModel signatures that let TFMA evaluate the co-trained model in ONE pass.

TFMA feeds a model the raw serialized records of the eval split, every task's records mixed.
Each record belongs to one task, and the model has one head per task, so:

  tfma_eval    examples: string [None] (serialized DMVR SequenceExamples of ANY task)
               -> one output per task T: `T` float32 [None, C_T], the task's scores (softmax
               or sigmoid) for the records of task T and zeros for every other record.
               Records are grouped by `task/name` in the graph, each group preprocessed with
               the input pipeline's eval path (`preprocess_serialized`, inputs.eval_clips clips
               for video and audio, clip scores averaged as PolyViT/VATT report) and run
               through its head; the scores are scattered back to the records' positions.
  tfma_labels  examples: string [None] -> per task T: `label_T` float32 [None, C_T] (one-hot or
               multi-hot from clip/label/index; zeros for other tasks' records) and `weight_T`
               float32 [None] (1 for task T's records, 0 otherwise). TFMA runs it as a
               ModelSpec.preprocessing_function_names entry and reads label and example-weight
               keys from its outputs (transformed features), so each record counts only for
               its own task's output.

A record whose task is not in the config makes both signatures fail, naming the task: it
would otherwise be silently left out of every metric. Records of the config's unlabelled tasks
(pretraining data, in the same eval split) are known: they get zero scores and weigh 0 for
every output.

`extra_signatures(model, config, vocabularies, audio_mean, audio_std)` returns both, ready to
merge into trainer/export.py's signature dict.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from core import features as keys
from core.config import Task, TrainerConfig
from trainer.export import average_clips, check_vocabularies, scores_from_logits
from transforms import input_pipeline

EVAL_SIGNATURE = "tfma_eval"
TASK_OUTPUT = "__task__"  # the record's task name, beside the per-task scores
LABELS_SIGNATURE = "tfma_labels"
EXAMPLES_INPUT = "examples"


def label_key(task: str) -> str:
    return f"label_{task}"


def weight_key(task: str) -> str:
    return f"weight_{task}"


def record_tasks(examples: tf.Tensor) -> tf.Tensor:
    """string [N]: the `task/name` of each serialized SequenceExample ("" when absent)."""
    context, _, _ = tf.io.parse_sequence_example(
        examples,
        context_features={keys.TASK: tf.io.FixedLenFeature([], tf.string, default_value="")},
    )
    return context[keys.TASK]


def _check_known_tasks(tasks: tf.Tensor, config: TrainerConfig) -> tf.Operation:
    names = [t.name for t in config.tasks + config.unlabelled_tasks]
    known = tf.reduce_any(tf.equal(tasks[:, None], tf.constant(names)[None, :]), axis=1)
    unknown = tf.boolean_mask(tasks, tf.logical_not(known))
    return tf.debugging.Assert(
        tf.reduce_all(known),
        [f"{keys.TASK}: records of tasks that are not in the config {names}:", unknown],
        summarize=10,
    )


def _scatter(rows: tf.Tensor, values: tf.Tensor, total: tf.Tensor, width: int) -> tf.Tensor:
    """values [n, width] placed at `rows` of a zero [total, width] tensor."""
    return tf.scatter_nd(rows[:, None], values, tf.stack([total, width]))


def _by_task(examples: tf.Tensor, config: TrainerConfig, per_task) -> tuple[dict, dict]:
    """({task: per_task(task, the task's records) scattered back to [N, C]},
    {task: int32 positions of the task's records}) for every task of the config."""
    tasks = record_tasks(examples)
    total = tf.shape(examples)[0]
    with tf.control_dependencies([_check_known_tasks(tasks, config)]):
        tasks = tf.identity(tasks)
    outputs, positions = {}, {}
    for task in config.tasks:
        rows = tf.cast(tf.reshape(tf.where(tf.equal(tasks, task.name)), [-1]), tf.int32)
        mine = tf.gather(examples, rows)
        # Run the head only when the batch holds records of the task (an empty batch would
        # still trace fine, but costs a model call per task per batch for nothing).
        values = tf.cond(
            tf.size(rows) > 0,
            functools.partial(per_task, task, mine),
            lambda task=task: tf.zeros([0, task.num_classes], tf.float32),
        )
        outputs[task.name] = _scatter(rows, values, total, task.num_classes)
        positions[task.name] = rows
    return outputs, positions


def _clips_for(task: Task, config: TrainerConfig) -> int:
    return 1 if task.modality == "image" else config.inputs.eval_clips


def task_scores(
    model, task: Task, config: TrainerConfig, examples: tf.Tensor, audio_mean, audio_std
) -> tf.Tensor:
    """float32 [n, C]: scores of one task's records, averaged over the eval clips."""
    clips = _clips_for(task, config)
    features = input_pipeline.preprocess_serialized(
        examples,
        task,
        config.inputs,
        num_clips=clips,
        audio_mean=audio_mean,
        audio_std=audio_std,
    )
    x = features[task.modality]
    if clips > 1:  # [n, K, ...] -> [n * K, ...], an example's clips adjacent
        x = tf.reshape(x, [-1, *x.shape[2:]])
    logits = model({task.modality: x}, task=task.name, training=False)
    scores = average_clips(scores_from_logits(logits, task.label_type), clips)
    return tf.ensure_shape(scores, [None, task.num_classes])


def task_labels(task: Task, examples: tf.Tensor) -> tf.Tensor:
    """float32 [n, C]: one-hot / multi-hot labels of one task's records (clip/label/index)."""
    return tf.map_fn(
        lambda record: input_pipeline.record_labels(record, task),
        examples,
        fn_output_signature=tf.TensorSpec([task.num_classes], tf.float32),
    )


def extra_signatures(
    model,
    config: TrainerConfig,
    vocabularies: dict[str, list[str]],
    audio_mean: float = 0.0,
    audio_std: float = 1.0,
) -> dict[str, tf.types.experimental.ConcreteFunction]:
    """{"tfma_eval": ..., "tfma_labels": ...} concrete functions over the model's variables.

    The caller's SavedModel must track the model's variables (trainer/export.py's module does).
    `vocabularies` are checked against the config so that a mismatched model fails at export,
    not in TFMA.
    """
    check_vocabularies(config, vocabularies)
    audio_mean, audio_std = float(audio_mean), float(audio_std)
    spec = tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)

    def scores_of(task, examples):
        return task_scores(model, task, config, examples, audio_mean, audio_std)

    @tf.function(input_signature=[spec])
    def tfma_eval(examples):
        scores, _ = _by_task(examples, config, scores_of)
        # TFMA turns a signature with ONE output into a bare array, and then finds no output
        # named after the task; this extra output keeps the predictions a dict for a
        # single-task config too. No metric reads it.
        scores[TASK_OUTPUT] = record_tasks(examples)
        return scores

    @tf.function(input_signature=[spec])
    def tfma_labels(examples):
        labels, positions = _by_task(examples, config, lambda task, mine: task_labels(task, mine))
        total = tf.shape(examples)[0]
        result = {}
        for task in config.tasks:
            rows = positions[task.name]
            result[label_key(task.name)] = labels[task.name]
            result[weight_key(task.name)] = tf.scatter_nd(
                rows[:, None], tf.ones_like(rows, tf.float32), total[None]
            )
        return result

    return {
        EVAL_SIGNATURE: tfma_eval.get_concrete_function(),
        LABELS_SIGNATURE: tfma_labels.get_concrete_function(),
    }
