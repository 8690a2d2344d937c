"""Every rule about a config value, in one table: each row is a `--set`-style override of
configs/demo.yaml and what loading it must say. The rules live in core.config.validate, so
`polyvit config`, `run` and `compile` refuse a bad value before anything runs."""

import dataclasses
import pathlib

import pytest
import yaml

from core import config as config_lib
from pipeline import cli

DEMO = str(pathlib.Path(__file__).resolve().parents[2] / "configs" / "demo.yaml")


def _row(*overrides_then_message: str):
    *overrides, message = overrides_then_message
    return pytest.param(list(overrides), message, id=" ".join(overrides))


# (overrides..., the message fragment, which starts with the full key)
REJECTED = [
    # tasks
    _row("tasks.digits.num_classes=0", "tasks.digits.num_classes: must be positive, got 0"),
    _row("tasks.digits.batch_size=-4", "tasks.digits.batch_size: must be positive, got -4"),
    _row("tasks.digits.data.root=''", "tasks.digits.data.root: the task has no data path"),
    _row("tasks.tone_mix.label_type=single", "tasks.tone_mix.label_type: audioset_csv data"),
    _row("tasks.digits.lr_multiplier=-1", "tasks.digits.lr_multiplier: must not be negative"),
    _row(
        "tasks.digits.weight_decay_multiplier=-1",
        "tasks.digits.weight_decay_multiplier: must not be negative",
    ),
    _row("training.schedule=every_batch", "training.schedule: 'every_batch' is not one of"),
    _row("tasks.digits.loss_weight=-0.5", "tasks.digits.loss_weight: must not be negative"),
    _row("tasks.digits.sampling_weight=-1", "tasks.digits.sampling_weight: must not be negative"),
    _row("tasks.digits.steps=-1", "tasks.digits.steps: must not be negative"),
    _row("tasks.digits.label_smoothing=1.0", "tasks.digits.label_smoothing: must be in [0, 1)"),
    _row("tasks.dtmf.eval.min_metric=2.0", "tasks.dtmf.eval.min_metric: must be in [0, 1]"),
    _row("tasks.dtmf.data.sample_rate=-1", "tasks.dtmf.data.sample_rate: must not be negative"),
    _row(
        "tasks.motion.data.layout=dmvr_records",
        "tasks.motion.data.media_dir=videos",
        "tasks.motion.data.media_dir: dmvr_records reads no media files",
    ),
    # ingestion
    _row("ingestion.fps=0", "ingestion.fps: must be positive, got 0"),
    _row("ingestion.short_side=0", "ingestion.short_side: must be positive"),
    _row("ingestion.clip_seconds=-1", "ingestion.clip_seconds: must be positive"),
    _row("ingestion.sample_rate=0", "ingestion.sample_rate: must be positive"),
    _row("ingestion.max_resolution=0", "ingestion.max_resolution: must be positive"),
    _row("ingestion.jpeg_quality=200", "ingestion.jpeg_quality: must be in [1, 100], got 200"),
    _row("ingestion.jpeg_quality=0", "ingestion.jpeg_quality: must be in [1, 100], got 0"),
    _row("ingestion.span=-2", "ingestion.span: must be -1 (the newest) or >= 0, got -2"),
    _row("continuous.span_window=0", "continuous.span_window: must be >= 1"),
    _row("ingestion.eval_fraction=1.0", "ingestion.eval_fraction: must be in [0, 1)"),
    _row("ingestion.eval_fraction=-0.1", "ingestion.eval_fraction: must be in [0, 1)"),
    _row("ingestion.max_bad_fraction=1.5", "ingestion.max_bad_fraction: must be in [0, 1]"),
    _row("ingestion.compression=zlib", "ingestion.compression: 'zlib' is not one of"),
    _row("ingestion.skip_nonref_frames=3", "ingestion.skip_nonref_frames: expected true or false"),
    # model
    _row("model.preset=huge", "model.preset: unknown preset 'huge'"),
    _row("model.overrides.depth=3", "model.overrides.depth: unknown model size field"),
    _row("model.overrides.num_heads=0", "model.overrides.num_heads: must be positive, got 0"),
    _row("model.overrides.hidden_size=0", "model.overrides.hidden_size: must be positive"),
    _row("model.overrides.num_layers=0", "model.overrides.num_layers: must be positive"),
    _row("model.overrides.mlp_dim=0", "model.overrides.mlp_dim: must be positive"),
    _row("model.overrides.patch_size=0", "model.overrides.patch_size: must be positive"),
    _row("model.overrides.tubelet_frames=0", "model.overrides.tubelet_frames: must be positive"),
    _row("model.overrides.layer_norm_epsilon=0", "model.overrides.layer_norm_epsilon: must be"),
    _row("model.overrides.modality_layers=-1", "model.overrides.modality_layers: must not be"),
    _row("model.overrides.dropout=1.0", "model.overrides.dropout: must be in [0, 1)"),
    _row("model.overrides.attention_dropout=-0.1", "model.overrides.attention_dropout: must be"),
    _row("model.overrides.num_heads=3", "model: hidden_size must be divisible by num_heads"),
    _row("model.video_encoding=tokens", "model.video_encoding: 'tokens' is not one of"),
    _row("model.late_fusion=max", "model.late_fusion: 'max' is not one of"),
    _row(
        "model.video_encoding=frames",
        "inputs.video_size=40",
        "inputs.video_size: must equal inputs.image_size (32) with model.video_encoding=frames",
    ),
    # inputs: shapes and crops
    _row("inputs.image_size=30", "inputs.image_size: 30 is not a multiple of the patch size 8"),
    _row("inputs.video_size=36", "inputs.video_size: 36 is not a multiple of the patch size 8"),
    _row("inputs.num_frames=7", "inputs.num_frames: must be a multiple of model tubelet_frames"),
    _row("inputs.image_size=0", "inputs.image_size: must be positive"),
    _row("inputs.video_size=-8", "inputs.video_size: must be positive"),
    _row("inputs.num_frames=0", "inputs.num_frames: must be positive"),
    _row("inputs.frame_stride=0", "inputs.frame_stride: must be positive"),
    _row("inputs.crop_min_area=0", "inputs.crop_min_area / crop_max_area: need 0 < min"),
    _row("inputs.crop_max_area=0.5", "inputs.crop_min_area / crop_max_area: need 0 < min"),
    _row("inputs.crop_max_area=1.5", "inputs.crop_min_area / crop_max_area: need 0 < min"),
    _row("inputs.crop_max_aspect=0.5", "inputs.crop_max_aspect: must be >= 1, got 0.5"),
    _row("inputs.eval_crop_fraction=0", "inputs.eval_crop_fraction: must be in (0, 1]"),
    _row("inputs.eval_crop_fraction=1.2", "inputs.eval_crop_fraction: must be in (0, 1]"),
    _row("inputs.eval_clips=0", "inputs.eval_clips: must be positive, got 0"),
    _row("inputs.shuffle_buffer=0", "inputs.shuffle_buffer: must be positive"),
    _row("inputs.mixup_alpha=-0.1", "inputs.mixup_alpha: must not be negative"),
    # inputs: audio framing (16 kHz: a 25 ms window is 400 samples)
    _row("inputs.audio_sample_rate=0", "inputs.audio_sample_rate: must be positive"),
    _row("inputs.num_mel_bins=0", "inputs.num_mel_bins: must be positive"),
    _row("inputs.audio_window_ms=0", "inputs.audio_window_ms / audio_hop_ms"),
    _row("inputs.audio_hop_ms=0.01", "inputs.audio_window_ms / audio_hop_ms"),
    _row("inputs.audio_seconds=0.01", "inputs.audio_seconds: 0.01 s is shorter than one window"),
    _row("inputs.mel_max_hz=9000", "inputs.mel_min_hz / mel_max_hz: need 0 <= 20.0 < 9000.0"),
    _row("inputs.mel_min_hz=-1", "inputs.mel_min_hz / mel_max_hz"),
    _row("inputs.mel_min_hz=8000", "inputs.mel_min_hz / mel_max_hz"),
    _row("inputs.mel_min_hz=300", "inputs.mel_max_hz=200", "inputs.mel_min_hz / mel_max_hz"),
    _row("inputs.freq_masks=-1", "inputs.freq_masks: must not be negative"),
    _row("inputs.freq_mask_bins=-1", "inputs.freq_mask_bins: must not be negative"),
    _row("inputs.time_masks=-1", "inputs.time_masks: must not be negative"),
    _row("inputs.time_mask_frames=-1", "inputs.time_mask_frames: must not be negative"),
    # training
    _row("training.steps=0", "training.steps: must be positive, got 0"),
    _row("training.log_every=0", "training.log_every: must be positive, got 0"),
    _row("training.steps_per_loop=0", "training.steps_per_loop: must be positive, got 0"),
    _row("training.checkpoint_every=-1", "training.checkpoint_every: must be positive"),
    _row("training.checkpoints_to_keep=0", "training.checkpoints_to_keep: must be positive"),
    _row("training.learning_rate=0", "training.learning_rate: must be positive"),
    _row("training.adam_epsilon=0", "training.adam_epsilon: must be positive"),
    _row("training.warmup_steps=-5", "training.warmup_steps: must not be negative, got -5"),
    _row("training.grad_clip_norm=-1", "training.grad_clip_norm: must not be negative"),
    _row("training.weight_decay=-0.1", "training.weight_decay: must not be negative"),
    _row("training.eval_steps=-1", "training.eval_steps: must not be negative"),
    _row("training.eval_batch_size=-1", "training.eval_batch_size: must not be negative"),
    _row(
        "training.jit_compile_min_steps=-1",
        "training.jit_compile_min_steps: must not be negative",
    ),
    _row("training.seed=-1", "training.seed: must not be negative"),
    _row("training.momentum=1.5", "training.momentum: must be in [0, 1]"),
    _row("training.adam_beta1=1.0", "training.adam_beta1: must be in [0, 1)"),
    _row("training.adam_beta2=-0.1", "training.adam_beta2: must be in [0, 1)"),
    # training.strategy against where the Trainer runs
    _row("training.strategy=tpu", "training.strategy: tpu needs kubeflow.trainer_accelerator"),
    _row(
        "kubeflow.trainer_accelerator=tpu",
        "training.strategy=mirrored",
        "training.strategy: mirrored cannot drive a TPU",
    ),
    # evaluation
    _row("evaluation.max_regression=-0.1", "evaluation.max_regression: must not be negative"),
    # serving
    _row("serving.port=70000", "serving.port: must be in [0, 65535], got 70000"),
    _row("serving.port=-1", "serving.port: must be in [0, 65535]"),
    _row("serving.metrics_port=65536", "serving.metrics_port: must be in [0, 65535]"),
    _row("serving.top_k=0", "serving.top_k: must be positive"),
    _row("serving.poll_seconds=0", "serving.poll_seconds: must be positive"),
    _row("serving.num_versions=0", "serving.num_versions: must be positive"),
    _row("serving.max_message_mb=0", "serving.max_message_mb: must be positive"),
    _row("serving.grpc_workers=0", "serving.grpc_workers: must be positive"),
    _row("serving.max_frames=0", "serving.max_frames: must be positive"),
    _row("serving.max_batch_size=0", "serving.max_batch_size: must be positive"),
    _row("serving.num_batch_threads=0", "serving.num_batch_threads: must be positive"),
    _row("serving.max_enqueued_batches=0", "serving.max_enqueued_batches: must be positive"),
    _row("serving.client_timeout_seconds=0", "serving.client_timeout_seconds: must be positive"),
    _row("serving.batch_timeout_micros=-1", "serving.batch_timeout_micros: must not be"),
    _row("serving.shutdown_grace_seconds=-1", "serving.shutdown_grace_seconds: must not be"),
    _row("serving.client_retries=-1", "serving.client_retries: must not be negative"),
    _row("serving.client_backoff_seconds=-1", "serving.client_backoff_seconds: must not be"),
    # kubeflow: quantities, the Trainer pod's accelerator, the Vertex job
    _row("kubeflow.trainer_cpu=eight", "kubeflow.trainer_cpu: 'eight' is not a CPU quantity"),
    _row("kubeflow.trainer_cpu=500 m", "kubeflow.trainer_cpu: '500 m' is not a CPU quantity"),
    _row("kubeflow.trainer_memory=32 GB", "kubeflow.trainer_memory: '32 GB' is not a memory"),
    _row("kubeflow.trainer_memory=32GB", "kubeflow.trainer_memory: '32GB' is not a memory"),
    _row("kubeflow.trainer_accelerator=gpu", "kubeflow.gpu_count: must be positive when"),
    _row(
        "kubeflow.trainer_accelerator=tpu",
        "kubeflow.tpu_topology=2x2x4",
        "kubeflow.tpu_topology: 2x2x4 has 16 chips but one tpu-v4-podslice host holds 4",
    ),
    _row(
        "kubeflow.trainer_accelerator=tpu",
        "kubeflow.tpu_topology=2by2",
        "kubeflow.tpu_topology: '2by2' is not a topology like 2x2x1 or 2x4",
    ),
    _row(
        "kubeflow.trainer_accelerator=tpu",
        "kubeflow.tpu_topology=2x0x1",
        "kubeflow.tpu_topology: '2x0x1' is not a topology",
    ),
    _row(
        "kubeflow.trainer_accelerator=tpu",
        "kubeflow.tpu_type=tpu-v9",
        "kubeflow.tpu_type: 'tpu-v9' is not a GKE TPU type",
    ),
    _row("kubeflow.trainer_backend=vertex", "kubeflow.vertex_project: needed when"),
    _row(
        "kubeflow.trainer_backend=vertex",
        "kubeflow.vertex_project=proj",
        "kubeflow.vertex_accelerator_count=0",
        "kubeflow.vertex_accelerator_count: must be positive when vertex_accelerator_type is set",
    ),
    _row("kubeflow.max_concurrency=0", "kubeflow.max_concurrency: must be positive"),
]

# Values at the edges of the rules, which must load.
ACCEPTED = [
    # frames need no tubelets: any number of frames
    ["model.video_encoding=frames", "model.late_fusion=features", "inputs.num_frames=7"],
    ["tasks.digits.steps=0", "tasks.digits.sampling_weight=0", "tasks.digits.lr_multiplier=0"],
    ["tasks.digits.label_smoothing=0.0", "tasks.dtmf.eval.min_metric=1.0"],
    ["tasks.dtmf.data.sample_rate=0"],
    ["tasks.dtmf.data.sample_rate=48000"],
    ["tasks.motion.data.layout=dmvr_records", "tasks.motion.data.sample_rate=48000"],
    ["ingestion.jpeg_quality=1"],
    ["ingestion.jpeg_quality=100"],
    ["ingestion.span=-1", "continuous.span_window=1"],
    ["ingestion.span=0", "continuous.span_window=30", "continuous.cache=false"],
    ["ingestion.eval_fraction=0", "ingestion.max_bad_fraction=0"],
    ["ingestion.eval_fraction=0.99", "ingestion.max_bad_fraction=1"],
    ["ingestion.compression=gzip"],
    ["ingestion.compression=none"],
    ["ingestion.skip_nonref_frames=true"],
    ["model.overrides.num_heads=4", "model.overrides.modality_layers=0"],
    ["inputs.crop_min_area=1.0", "inputs.crop_max_area=1.0", "inputs.crop_max_aspect=1.0"],
    ["inputs.eval_crop_fraction=1.0", "inputs.eval_clips=1", "inputs.mixup_alpha=0"],
    ["inputs.audio_seconds=0.025"],  # exactly one 400-sample window
    ["inputs.mel_min_hz=0", "inputs.mel_max_hz=8000"],  # up to the Nyquist frequency
    ["inputs.freq_masks=0", "inputs.time_masks=0"],
    ["training.log_every=1", "training.warmup_steps=0", "training.eval_steps=0"],
    ["training.eval_batch_size=0", "training.weight_decay=0", "training.grad_clip_norm=0"],
    ["training.momentum=0", "training.seed=0"],
    ["training.steps_per_loop=1", "training.jit_compile=true", "training.jit_compile_min_steps=0"],
    ["training.steps_per_loop=1000", "training.log_every=7"],
    ["training.momentum=1"],
    ["evaluation.max_regression=0"],
    ["serving.port=0", "serving.metrics_port=0", "serving.batch_timeout_micros=0"],
    ["serving.port=65535", "serving.client_retries=0", "serving.shutdown_grace_seconds=0"],
    ["kubeflow.trainer_cpu=500m", "kubeflow.trainer_memory=32Gi"],
    ["kubeflow.trainer_cpu='8'", "kubeflow.trainer_memory='1073741824'"],
    ["kubeflow.trainer_cpu='2.5'", "kubeflow.trainer_memory=500M"],
    ["kubeflow.trainer_accelerator=gpu", "kubeflow.gpu_count=1"],
    ["kubeflow.trainer_accelerator=gpu", "kubeflow.gpu_count=2", "training.strategy=mirrored"],
    ["kubeflow.trainer_accelerator=tpu", "kubeflow.tpu_topology=2x2x1"],  # a full v4 host
    ["kubeflow.trainer_accelerator=tpu", "training.strategy=tpu"],
    [
        "kubeflow.trainer_accelerator=tpu",
        "kubeflow.tpu_type=tpu-v5-lite-podslice",
        "kubeflow.tpu_topology=2x4",  # a full v5e host
    ],
    [
        # A multi-host slice runs as a Vertex job: the pod's topology limit does not apply.
        "kubeflow.trainer_backend=vertex",
        "kubeflow.vertex_project=proj",
        "kubeflow.trainer_accelerator=tpu",
        "kubeflow.tpu_topology=4x4x4",
    ],
    [
        # Machine types that carry their accelerators name none.
        "kubeflow.trainer_backend=vertex",
        "kubeflow.vertex_project=proj",
        "kubeflow.vertex_accelerator_type=''",
        "kubeflow.vertex_accelerator_count=0",
    ],
]


@pytest.mark.parametrize("overrides, message", REJECTED)
def test_a_bad_value_is_refused_at_load_naming_the_key(overrides, message):
    with pytest.raises(config_lib.ConfigError) as error:
        config_lib.load(DEMO, overrides)
    assert message in str(error.value)
    assert str(error.value).startswith(f"{DEMO}: ")


def _value_at(config: config_lib.Config, key: str):
    parts = key.split(".")
    node = config
    if parts[0] == "tasks":
        node, parts = config.task(parts[1]), parts[2:]
    for part in parts:
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


@pytest.mark.parametrize("overrides", ACCEPTED, ids=" ".join)
def test_values_at_the_edges_are_accepted(overrides):
    config = config_lib.load(DEMO, overrides)
    for item in overrides:
        key, raw = item.split("=", 1)
        assert _value_at(config, key) == yaml.safe_load(raw), key


def test_a_slice_from_a_components_custom_config_is_checked_too():
    config = config_lib.load(DEMO)
    trainer = config_lib.trainer_config(config)
    trainer.training = dataclasses.replace(trainer.training, log_every=0)
    with pytest.raises(config_lib.ConfigError, match=r"training\.log_every: must be positive"):
        config_lib.from_custom_config(
            config_lib.to_custom_config(trainer), config_lib.TrainerConfig, "run_fn"
        )
    ingest = config_lib.ingest_config(config)
    ingest.ingestion = dataclasses.replace(ingest.ingestion, jpeg_quality=200)
    with pytest.raises(config_lib.ConfigError, match=r"ingestion\.jpeg_quality"):
        config_lib.from_custom_config(
            config_lib.to_custom_config(ingest), config_lib.IngestConfig, "MediaExampleGen"
        )


def test_a_config_built_in_code_is_checked_by_the_same_rules():
    config = config_lib.load(DEMO)
    config.ingestion = dataclasses.replace(config.ingestion, compression="zip")
    with pytest.raises(config_lib.ConfigError, match=r"ingestion\.compression: 'zip' is not"):
        config_lib.validate(config)


@pytest.mark.parametrize(
    "command",
    [["config"], ["run", "--pipeline-root", "ROOT"], ["compile", "--output", "OUT"]],
    ids=lambda c: c[0],
)
def test_cli_refuses_a_bad_value_before_anything_runs(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the config's relative pipeline_root would land here
    argv = [str(tmp_path / "x.yaml") if a == "OUT" else a for a in command]
    argv = [str(tmp_path / "root") if a == "ROOT" else a for a in argv]
    argv += ["--config", DEMO, "--set", "training.log_every=0"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"polyvit {command[0]}: " in err
    assert "training.log_every: must be positive, got 0" in err
    assert list(tmp_path.iterdir()) == []  # no pipeline root, no package
