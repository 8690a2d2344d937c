"""The `pretraining` section's value rules: each bad value is refused at load, naming the key."""

import dataclasses
import pathlib

import pytest

from core import config as config_lib

DEMO = str(pathlib.Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")

REJECTED = [
    (["pretraining.steps=0"], "pretraining.steps: must be positive"),
    (["pretraining.temperature=0"], "pretraining.temperature: must be positive"),
    (["pretraining.waveform_patch=-1"], "pretraining.waveform_patch: must be positive"),
    (["pretraining.max_captions=0"], "pretraining.max_captions: must be positive"),
    (["pretraining.keep_tokens=0"], "pretraining.keep_tokens: must be in (0, 1]"),
    (["pretraining.keep_tokens=1.5"], "pretraining.keep_tokens: must be in (0, 1]"),
    (["pretraining.text_weight=-1"], "pretraining.text_weight: must not be negative"),
    (
        ["pretraining.audio_weight=0", "pretraining.text_weight=0"],
        "pretraining.audio_weight: and text_weight must not both be 0",
    ),
    (["pretraining.backbone=both"], "pretraining.backbone: 'both' is not one of"),
    (["pretraining.carry_over=[heads]"], "pretraining.carry_over[0]: 'heads' is not one of"),
    (["pretraining.enabled=true", "pretraining.task=nope"], "pretraining.task: must name a task"),
    (
        ["pretraining.enabled=true", "pretraining.task=digits"],
        "pretraining.task: must be a video task",
    ),
    (
        ["pretraining.enabled=true", "pretraining.task=motion", "pretraining.probe_task=dtmf"],
        "pretraining.probe_task: must name a labelled video task",
    ),
]


@pytest.mark.parametrize("overrides, message", REJECTED, ids=[" ".join(r[0]) for r in REJECTED])
def test_a_bad_pretraining_value_is_refused(overrides, message):
    with pytest.raises(config_lib.ConfigError) as error:
        config_lib.load(DEMO, overrides)
    assert message in str(error.value)


def test_pretraining_on_a_video_task_loads():
    config = config_lib.load(
        DEMO, ["pretraining.enabled=true", "pretraining.task=motion", "pretraining.keep_tokens=1"]
    )
    assert (config.pretraining.task, config.pretraining.keep_tokens) == ("motion", 1.0)
    assert config.pretraining.carry_over == ["tokenizers", "encoder"]


VATT = str(pathlib.Path(__file__).resolve().parents[2] / "configs" / "vatt.yaml")

UNLABELLED_REJECTED = [
    (["tasks.vatt_clips.num_classes=4"], "tasks.vatt_clips.num_classes: an unlabelled task"),
    (["tasks.vatt_clips.label_type=multi"], "tasks.vatt_clips.label_type: an unlabelled task"),
    (["tasks.vatt_clips.eval.min_metric=0.5"], "tasks.vatt_clips.eval.min_metric: an unlabelled"),
    (["pretraining.task=few_moves"], "tasks.vatt_clips.labelled: only the Pretrainer reads"),
    (["pretraining.probe_task=vatt_clips"], "pretraining.probe_task: must name a labelled video"),
    (["tasks.few_moves.labelled=false"], "tasks: at least one labelled task is needed"),
]


@pytest.mark.parametrize(
    "overrides, message", UNLABELLED_REJECTED, ids=[" ".join(r[0]) for r in UNLABELLED_REJECTED]
)
def test_an_unlabelled_task_given_a_head_is_refused(overrides, message):
    with pytest.raises(config_lib.ConfigError) as error:
        config_lib.load(VATT, overrides)
    assert message in str(error.value)


def test_the_unlabelled_pretraining_task_reaches_the_pretrainer_only():
    config = config_lib.load(VATT)
    assert not config.task("vatt_clips").labelled and config.task("vatt_clips").num_classes == 0
    trainer = config_lib.trainer_config(config)
    # The co-training Trainer's heads are the labelled tasks; the Pretrainer still finds its own.
    assert [t.name for t in trainer.tasks] == ["few_moves"]
    assert trainer.task("vatt_clips").modality == "video"
    back = config_lib.from_custom_config(
        config_lib.to_custom_config(trainer), config_lib.TrainerConfig, "test"
    )
    assert [t.name for t in back.unlabelled_tasks] == ["vatt_clips"]
    assert [(t.name, t.labelled) for t in config_lib.ingest_config(config).tasks] == [
        ("vatt_clips", False),
        ("few_moves", True),
    ]
    # With pretraining off the task stays valid (ingested, read by no stage).
    assert not config_lib.load(VATT, ["pretraining.enabled=false"]).pretraining.enabled


def test_a_trainer_slice_with_an_unlabelled_head_is_refused():
    trainer = config_lib.trainer_config(config_lib.load(VATT))
    wrong = dataclasses.replace(
        trainer, tasks=trainer.tasks + trainer.unlabelled_tasks, unlabelled_tasks=[]
    )
    with pytest.raises(config_lib.ConfigError, match=r"tasks\.vatt_clips\.labelled: the co-"):
        config_lib.validate_slice(wrong)
