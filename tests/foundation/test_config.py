"""The config is the single source of truth: it round-trips and rejects bad input by key."""

import pathlib

import pytest
import yaml

from core import config as config_lib

REPO = pathlib.Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "configs").glob("*.yaml"))


def _write(tmp_path, data) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _minimal() -> dict:
    return {
        "tasks": {
            "digits": {
                "modality": "image",
                "data": {"root": "digits", "layout": "folders"},
                "num_classes": 10,
            }
        }
    }


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_load_and_round_trip(path, tmp_path):
    config = config_lib.load(str(path))
    again = tmp_path / "again.yaml"
    again.write_text(config_lib.dump(config))
    assert config_lib.load(str(again)) == config


def test_demo_config_has_three_modalities_and_a_multilabel_task():
    config = config_lib.load(str(REPO / "configs/demo.yaml"))
    assert {t.modality for t in config.tasks} == {"image", "video", "audio"}
    assert any(t.label_type == "multi" for t in config.tasks)


def test_polyvit_all_mirrors_the_papers_nine_tasks():
    config = config_lib.load(str(REPO / "configs/polyvit_all.yaml"))
    classes = {t.name: t.num_classes for t in config.tasks}
    assert classes == {
        "imagenet": 1000,
        "cifar10": 10,
        "cifar100": 100,
        "oxford_iiit_pet": 37,
        "resisc45": 45,
        "kinetics400": 400,
        "moments_in_time": 339,
        "vggsound": 309,
        "audioset": 527,
    }
    assert config.model.size().hidden_size == 768
    assert config.training.steps == sum(t.steps for t in config.tasks)


def test_overrides_reach_nested_fields_and_tasks_by_name(tmp_path):
    path = _write(tmp_path, _minimal())
    config = config_lib.load(
        path, ["training.steps=7", "tasks.digits.batch_size=4", "model.overrides.num_layers=3"]
    )
    assert config.training.steps == 7
    assert config.task("digits").batch_size == 4
    assert config.model.size().num_layers == 3


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["training.stepz=3"], "training.stepz"),
        (["tasks.digits.batch_size=many"], "tasks.digits.batch_size"),
        (["tasks.digits.modality=smell"], "tasks.digits.modality"),
        (["training.mixed_precision=3"], "training.mixed_precision"),
        (["tasks.nosuch.batch_size=3"], "tasks.nosuch"),
        (["model.overrides.depth=3"], "model.overrides.depth"),
        (["model.preset=huge"], "model.preset"),
        (["tasks.digits.num_classes=0"], "tasks.digits.num_classes"),
    ],
)
def test_bad_values_fail_naming_the_key(tmp_path, overrides, key):
    path = _write(tmp_path, _minimal())
    with pytest.raises(config_lib.ConfigError, match=key.replace(".", r"\.")):
        config_lib.load(path, overrides)


def test_task_without_data_path_is_rejected(tmp_path):
    data = _minimal()
    del data["tasks"]["digits"]["data"]
    with pytest.raises(config_lib.ConfigError, match=r"tasks\.digits\.data\.root"):
        config_lib.load(_write(tmp_path, data))


def test_unknown_top_level_key_in_yaml_is_rejected(tmp_path):
    data = _minimal()
    data["trainng"] = {"steps": 3}
    with pytest.raises(config_lib.ConfigError, match="trainng: unknown key"):
        config_lib.load(_write(tmp_path, data))


def test_patch_size_must_divide_image_size(tmp_path):
    path = _write(tmp_path, _minimal())
    with pytest.raises(config_lib.ConfigError, match="inputs.image_size"):
        config_lib.load(path, ["inputs.image_size=30"])
