"""The tfma_eval / tfma_labels signatures on a tiny exported model with mixed-task records:
per-task scores equal the per-task serving path, zeros elsewhere; labels and weights per task."""

from __future__ import annotations

import evaluation_records as records
import numpy as np
import pytest
import tensorflow as tf

from core import config as config_lib
from trainer import eval_signatures
from trainer.export import average_clips, scores_from_logits
from trainer.model import build_model
from transforms import input_pipeline


def mixed_records(count: int = 3) -> tuple[list[bytes], list[str]]:
    rng = np.random.default_rng(7)
    tasks = [task for i in range(count) for task in records.VOCABULARIES]
    tasks = tasks[1:] + tasks[:1]  # interleaved, not grouped, and not starting with task 0
    return [records.make_record(task, i, rng) for i, task in enumerate(tasks)], tasks


@pytest.fixture(scope="module")
def loaded(models):
    return tf.saved_model.load(models["a"][1])


def test_eval_signature_scores_each_task_on_its_own_records(loaded):
    config = records.tiny_config()
    serialized, tasks = mixed_records()
    tf.keras.utils.set_random_seed(1)  # the seed models["a"] was made with
    model = build_model(config.model, config.tasks, config.inputs)
    outputs = loaded.signatures["tfma_eval"](examples=tf.constant(serialized))
    assert sorted(outputs) == sorted([*records.VOCABULARIES, eval_signatures.TASK_OUTPUT])
    assert [t.decode() for t in outputs[eval_signatures.TASK_OUTPUT].numpy()] == tasks
    for task in config.tasks:
        scores = outputs[task.name].numpy()
        assert scores.shape == (len(serialized), task.num_classes)
        mine = [i for i, t in enumerate(tasks) if t == task.name]
        others = [i for i, t in enumerate(tasks) if t != task.name]
        assert np.all(scores[others] == 0.0)
        # The same records through the serving preprocessing and the model, outside TFMA.
        clips = 1 if task.modality == "image" else config.inputs.eval_clips
        features = input_pipeline.preprocess_serialized(
            tf.constant([serialized[i] for i in mine]),
            task,
            config.inputs,
            num_clips=clips,
            audio_mean=3.0,
            audio_std=2.0,
        )[task.modality]
        if clips > 1:
            features = tf.reshape(features, [-1, *features.shape[2:]])
        logits = model({task.modality: features}, task=task.name)
        expected = average_clips(scores_from_logits(logits, task.label_type), clips).numpy()
        np.testing.assert_allclose(scores[mine], expected, rtol=1e-5, atol=1e-6)
        if task.label_type == "single":
            np.testing.assert_allclose(scores[mine].sum(-1), 1.0, rtol=1e-5)


def test_labels_signature_gives_labels_and_weights_per_task(loaded):
    serialized, tasks = mixed_records()
    outputs = loaded.signatures["tfma_labels"](examples=tf.constant(serialized))
    config = records.tiny_config()
    for task in config.tasks:
        labels = outputs[eval_signatures.label_key(task.name)].numpy()
        weights = outputs[eval_signatures.weight_key(task.name)].numpy()
        assert weights.tolist() == [float(t == task.name) for t in tasks]
        for i, t in enumerate(tasks):
            expected = np.zeros(task.num_classes)
            if t == task.name:
                for label in records.labels_for(t, i):
                    expected[records.VOCABULARIES[t].index(label)] = 1.0
            np.testing.assert_array_equal(labels[i], expected)


def test_a_batch_without_some_tasks_and_an_empty_batch(loaded):
    serialized, tasks = mixed_records(1)
    only_digits = [r for r, t in zip(serialized, tasks, strict=False) if t == "digits"]
    outputs = loaded.signatures["tfma_eval"](examples=tf.constant(only_digits))
    assert outputs["motion"].shape == (1, 4) and np.all(outputs["motion"].numpy() == 0)
    empty = loaded.signatures["tfma_eval"](examples=tf.constant([], tf.string))
    assert empty["tone_mix"].shape == (0, 6)


def test_records_of_an_unknown_task_fail_naming_it(loaded):
    rng = np.random.default_rng(0)
    record = records.make_record("digits", 0, rng).replace(b"digits", b"zzzzzz")
    with pytest.raises(tf.errors.InvalidArgumentError, match="zzzzzz"):
        loaded.signatures["tfma_eval"](examples=tf.constant([record]))


def test_extra_signatures_check_the_vocabularies():
    config = config_lib.trainer_config(records.tiny_config())
    model = build_model(config.model, config.tasks, config.inputs)
    with pytest.raises(ValueError, match="no label vocabulary for task 'motion'"):
        eval_signatures.extra_signatures(model, config, {"digits": list("0123456789")})
    bad = dict(records.VOCABULARIES, dtmf=["a", "b"])
    with pytest.raises(ValueError, match="tasks.dtmf.num_classes is 3"):
        eval_signatures.extra_signatures(model, config, bad)


def test_records_of_an_unlabelled_task_are_known_and_weigh_nothing():
    """The eval split also holds the pretraining task's records (labelled: false): TFMA feeds
    them, and they count for no output instead of failing as an unknown task."""
    import dataclasses

    from core.config import Task

    config = config_lib.trainer_config(records.tiny_config())
    clips = Task(name="clips", modality="video", labelled=False)
    config = dataclasses.replace(config, unlabelled_tasks=[clips])
    model = build_model(config.model, config.tasks, config.inputs)
    signatures = eval_signatures.extra_signatures(model, config, records.VOCABULARIES)
    rng = np.random.default_rng(0)
    digits = records.make_record("digits", 0, rng)
    record = tf.train.SequenceExample.FromString(records.make_record("motion", 0, rng))
    record.context.feature["task/name"].bytes_list.value[:] = [b"clips"]
    for key in ("clip/label/index", "clip/label/text"):
        del record.context.feature[key]
    unlabelled = record.SerializeToString()
    batch = tf.constant([unlabelled, digits])
    scores = signatures["tfma_eval"](examples=batch)
    labels = signatures["tfma_labels"](examples=batch)
    for task in config.tasks:
        assert np.all(scores[task.name].numpy()[0] == 0.0)
        assert labels[eval_signatures.weight_key(task.name)].numpy()[0] == 0.0
    assert labels[eval_signatures.weight_key("digits")].numpy()[1] == 1.0
