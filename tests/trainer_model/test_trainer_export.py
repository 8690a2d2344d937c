"""SavedModel export: every signature of the contract, called after `tf.saved_model.load` on
real serialized DMVR SequenceExamples (JPEG frames, sine waveforms) and the equivalent
tf.Examples and raw tensors."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from core import config as config_lib
from core import features as keys
from tests.support import configs, records
from trainer.export import (
    CLASSIFY_METHOD,
    PREDICT_METHOD,
    example_to_sequence_example,
    export_saved_model,
    signature_names,
)
from trainer.model import build_model
from transforms import input_pipeline

RATE = 16000
VOCABULARIES = {
    "digits": [f"digit_{i}" for i in range(10)],
    "motion": ["down", "left", "right", "up"],
    "tone_mix": ["a", "b", "c", "d", "e"],
}


def export_config() -> config_lib.TrainerConfig:
    """The Trainer's slice (what run_fn exports with) of a three-modality config."""
    tasks = configs.four_tasks(tone_mix_classes=5)
    del tasks["dtmf"]
    settings = {
        "model.overrides.zero_init_heads": False,  # so that scores differ between inputs
        "ingestion.sample_rate": RATE,
        "inputs.frame_stride": 1,
        "inputs.audio_seconds": 0.25,
        "inputs.num_mel_bins": 16,
        "inputs.eval_clips": 2,  # video and audio average two clips per example
    }
    return config_lib.trainer_config(configs.tiny_config(tasks, settings))


def jpeg_frames(rng, count: int, height: int = 20, width: int = 24) -> list[bytes]:
    return records.random_jpegs(rng, count, height, width, quality=95)


def sine(freq: float, seconds: float) -> np.ndarray:
    return records.sine(freq, seconds, RATE)


def sequence_example(frames=None, waveform=None, name="clip.mp4") -> bytes:
    return records.record(frames=frames, waveform=waveform, sample_rate=RATE, filename=name)


def flat_example(frames=None, waveform=None, name="clip.mp4") -> bytes:
    """The tf.Example the Classify signature takes: the same DMVR keys, flattened."""
    ex = tf.train.Example()
    ex.features.feature[keys.FILENAME].bytes_list.value.append(name.encode())
    if frames is not None:
        ex.features.feature[keys.IMAGE_ENCODED].bytes_list.value.extend(frames)
    if waveform is not None:
        ex.features.feature[keys.SAMPLE_RATE].int64_list.value.append(RATE)
        ex.features.feature[keys.WAVEFORM].float_list.value.extend(waveform.tolist())
    return ex.SerializeToString()


def decoded(frames: list[bytes]) -> np.ndarray:
    return np.stack([tf.io.decode_jpeg(f, channels=3).numpy() for f in frames])


@pytest.fixture(scope="module")
def inputs_by_task():
    """Per task: serialized SequenceExamples, equivalent tf.Examples, raw input name/tensor."""
    rng = np.random.default_rng(0)
    images = [jpeg_frames(rng, 1) for _ in range(3)]
    videos = [jpeg_frames(rng, 9) for _ in range(2)]  # same frame count: one raw tensor
    waves = [sine(440.0, 0.6), sine(1200.0, 0.6)]
    return {
        "digits": (
            [sequence_example(frames=f) for f in images],
            [flat_example(frames=f) for f in images],
            "image",
            np.stack([decoded(f)[0] for f in images]),
        ),
        "motion": (
            [sequence_example(frames=f) for f in videos],
            [flat_example(frames=f) for f in videos],
            "video",
            np.stack([decoded(f) for f in videos]),
        ),
        "tone_mix": (
            [sequence_example(waveform=w) for w in waves],
            [flat_example(waveform=w) for w in waves],
            "waveform",
            np.stack(waves),
        ),
    }


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    config = export_config()
    model = build_model(config.model, config.tasks, config.inputs)
    export_dir = str(tmp_path_factory.mktemp("export") / "1")
    path = export_saved_model(
        model,
        config,
        VOCABULARIES,
        export_dir,
        audio_mean=-3.0,
        audio_std=2.0,
        extra_signatures={"digits_logits": digits_logits(model)},
    )
    return config, model, path


def digits_logits(model):
    """An extra signature over the same variables (as trainer/eval_signatures.py adds)."""

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.float32)])
    def logits(image):
        return {"logits": model({"image": image}, task="digits")}

    return logits.get_concrete_function()


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported[2])


def test_every_contract_signature_is_written_with_its_method(exported, loaded):
    config, _, path = exported
    assert set(loaded.signatures.keys()) == set(signature_names(config)) | {"digits_logits"}
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    defs = saved.meta_graphs[0].signature_def
    for task in config.tasks:
        assert defs[task.name].method_name == PREDICT_METHOD
        assert defs[f"{task.name}_raw"].method_name == PREDICT_METHOD
        assert defs[f"{task.name}_classify"].method_name == CLASSIFY_METHOD
        assert set(defs[task.name].inputs) == {"examples"}
        assert set(defs[task.name].outputs) == {"scores", "classes", "task"}
        assert set(defs[f"{task.name}_classify"].inputs) == {"inputs"}
        assert set(defs[f"{task.name}_classify"].outputs) == {"scores", "classes"}
    assert set(defs["digits_raw"].inputs) == {"image"}
    assert set(defs["motion_raw"].inputs) == {"video"}
    assert set(defs["tone_mix_raw"].inputs) == {"waveform"}
    assert defs["serving_default"].inputs["examples"].dtype == tf.string.as_datatype_enum
    # The fingerprint was rewritten with the method names: it matches saved_model.pb.
    fingerprint = tf.saved_model.experimental.read_fingerprint(path)
    assert fingerprint.saved_model_checksum == saved_model_checksum(path)


def saved_model_checksum(path: str) -> int:
    """Re-fingerprints a copy of the SavedModel's saved_model.pb alone."""
    import shutil
    import tempfile

    from tensorflow.python.saved_model import fingerprinting_utils

    with tempfile.TemporaryDirectory() as copy:
        shutil.copy(os.path.join(path, "saved_model.pb"), copy)
        os.makedirs(os.path.join(copy, "variables"))
        fingerprinting_utils.write_fingerprint(copy)
        return tf.saved_model.experimental.read_fingerprint(copy).saved_model_checksum


@pytest.mark.parametrize("task_name", ["digits", "motion", "tone_mix"])
def test_examples_raw_and_classify_signatures_agree(exported, loaded, inputs_by_task, task_name):
    config, model, _ = exported
    task = config.task(task_name)
    records, flat, raw_name, raw = inputs_by_task[task_name]
    n = len(records)

    out = loaded.signatures[task_name](examples=tf.constant(records))
    scores = out["scores"].numpy()
    assert scores.shape == (n, task.num_classes) and scores.dtype == np.float32
    if task.label_type == "single":
        np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    else:
        assert ((scores > 0) & (scores < 1)).all()
    assert not np.allclose(scores[0], scores[1])  # the inputs really reach the model
    classes = out["classes"].numpy().astype(str)
    assert classes.shape == (n, task.num_classes)
    assert (classes == np.array(VOCABULARIES[task_name])[None]).all()
    assert list(out["task"].numpy().astype(str)) == [task_name] * n

    raw_out = loaded.signatures[f"{task_name}_raw"](**{raw_name: tf.constant(raw)})
    np.testing.assert_allclose(raw_out["scores"], scores, atol=1e-5)
    assert (raw_out["classes"].numpy() == out["classes"].numpy()).all()

    cls_out = loaded.signatures[f"{task_name}_classify"](inputs=tf.constant(flat))
    np.testing.assert_allclose(cls_out["scores"], scores, atol=1e-6)
    assert (cls_out["classes"].numpy() == out["classes"].numpy()).all()

    # The exported graph computes what the Python model computes on the pipeline's features.
    features = input_pipeline.preprocess_serialized(
        tf.constant(records),
        task,
        config.inputs,
        num_clips=1 if task.modality == "image" else 2,
        audio_mean=-3.0,
        audio_std=2.0,
    )[task.modality]
    if task.modality != "image":
        features = tf.reshape(features, [-1, *features.shape[2:]])
    logits = model({task.modality: features}, task=task_name).numpy()
    logits = logits.reshape(n, -1, task.num_classes)
    expected = (
        (tf.nn.softmax(logits) if task.label_type == "single" else tf.nn.sigmoid(logits))
        .numpy()
        .mean(axis=1)
    )
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_serving_default_is_the_first_tasks_examples_signature(loaded, inputs_by_task):
    records = tf.constant(inputs_by_task["digits"][0])
    np.testing.assert_allclose(
        loaded.signatures["serving_default"](examples=records)["scores"],
        loaded.signatures["digits"](examples=records)["scores"],
    )


def test_example_to_sequence_example_matches_the_dmvr_record():
    rng = np.random.default_rng(1)
    frames = jpeg_frames(rng, 3)
    wave = sine(300.0, 0.01)
    converted = example_to_sequence_example(
        tf.constant([flat_example(frames=frames), flat_example(frames=frames[:1])]), "video"
    ).numpy()
    for got, want in zip(converted, [frames, frames[:1]], strict=True):
        lists = tf.train.SequenceExample.FromString(got).feature_lists.feature_list
        assert [f.bytes_list.value[0] for f in lists[keys.IMAGE_ENCODED].feature] == want
    audio = example_to_sequence_example(tf.constant([flat_example(waveform=wave)]), "audio")
    parsed = tf.train.SequenceExample.FromString(audio.numpy()[0])
    values = parsed.feature_lists.feature_list[keys.WAVEFORM].feature[0].float_list.value
    np.testing.assert_array_equal(np.array(values, np.float32), wave)
    assert parsed.context.feature[keys.FILENAME].bytes_list.value[0] == b"clip.mp4"


def test_export_rejects_a_vocabulary_of_the_wrong_size(exported, tmp_path):
    config, model, _ = exported
    bad = dict(VOCABULARIES, motion=["left", "right"])
    with pytest.raises(ValueError, match="vocabulary of task 'motion' has 2 labels"):
        export_saved_model(model, config, bad, str(tmp_path / "x"))
    with pytest.raises(ValueError, match="no label vocabulary for task 'digits'"):
        export_saved_model(model, config, {}, str(tmp_path / "y"))


def test_extra_signatures_share_the_variables_and_may_not_collide(exported, loaded, tmp_path):
    _, model, _ = exported
    image = tf.random.normal((2, 16, 16, 3))
    np.testing.assert_allclose(
        loaded.signatures["digits_logits"](image=image)["logits"],
        model({"image": image}, task="digits"),
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="'digits_raw' collides"):
        export_saved_model(
            model,
            exported[0],
            VOCABULARIES,
            str(tmp_path / "z"),
            extra_signatures={"digits_raw": digits_logits(model)},
        )
