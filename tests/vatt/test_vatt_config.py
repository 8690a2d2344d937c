"""The `pretraining` section's value rules: each bad value is refused at load, naming the key."""

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
        "pretraining.probe_task: must name a video task",
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
