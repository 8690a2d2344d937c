"""Tiny configs and feature shapes shared by the trainer model tests."""

from core import config as config_lib

# Shapes the input pipeline produces for the configs below (feature_shape contract).
FEATURE_SHAPES = {"image": (16, 16, 3), "video": (4, 16, 16, 3), "audio": (21, 12, 1)}


def tiny_config(**model_overrides) -> config_lib.Config:
    """Three modalities, four tasks (one multi-label), a 2-layer width-32 encoder."""
    overrides = {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "mlp_dim": 64}
    overrides.update(model_overrides)
    return config_lib.from_dict(
        {
            "tasks": {
                "digits": {"modality": "image", "data": {"root": "d"}, "num_classes": 10},
                "motion": {"modality": "video", "data": {"root": "m"}, "num_classes": 4},
                "dtmf": {"modality": "audio", "data": {"root": "a"}, "num_classes": 12},
                "tone_mix": {
                    "modality": "audio",
                    "data": {"root": "t"},
                    "num_classes": 6,
                    "label_type": "multi",
                },
            },
            "model": {"preset": "tiny", "overrides": {"patch_size": 4, **overrides}},
            "inputs": {"image_size": 16, "video_size": 16, "num_frames": 4},
        }
    )
