"""The one typed configuration: tasks, ingestion, model sizes, training, evaluation, serving.

Everything tunable lives here and is loaded from YAML (`configs/*.yaml`) with `--set key=value`
overrides. Loading is strict: an unknown key, a value of the wrong type, a task without data or
a value that breaks a rule (`validate`: every range, positivity and consistency rule of every
section) fails at once with a message that names the key (e.g. `tasks.digits.batch_size`).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from core import config_rules as rules
from core.config_rules import ConfigError

Modality = Literal["image", "video", "audio"]
LabelType = Literal["single", "multi"]
# How a task's raw data is laid out on disk (see components/media_example_gen/sources.py):
#   folders       one folder per class; optional train/ and val/ (or test/) folders, or split lists
#   dmvr_csv      DMVR-style CSV: video_path,start,end[,label][,caption]
#   audioset_csv  AudioSet segments CSV (YTID, start_seconds, end_seconds, "label1,label2")
#                 with class_labels_indices.csv mapping label ids to names
#   kinetics_csv  Kinetics CSV: label,youtube_id,time_start,time_end,split
#   vggsound_csv  VGGSound CSV (no header): youtube_id,start_seconds,label,train|test
#   dmvr_records  existing DMVR TFRecords (scenic's, VATT's, DMVR's generator's): `train` and
#                 `eval` are file patterns in `root` (sharded, uncompressed or gzip), each record
#                 validated, its labels re-keyed by clip/label/text, the task name added
# CSV rows that name a clip id rather than a path find their file in `media_dir` by its stem:
# `<id>.<ext>` or `<id>_<anything>.<ext>` (the common downloaders' naming).
Layout = Literal[
    "folders", "dmvr_csv", "audioset_csv", "kinetics_csv", "vggsound_csv", "dmvr_records"
]
# How MediaExampleGen writes its TFRecords: "none" is what DMVR's default TFRecordsSource()
# (and so scenic's and VATT's factories) reads; every reader of the project detects either.
Compression = Literal["none", "gzip"]
Schedule = Literal["weighted", "uniform", "task_by_task", "accumulate", "every_task"]
Strategy = Literal["default", "mirrored", "multi_worker_mirrored", "tpu"]


@dataclass
class DataSource:
    """Where a task's raw media are and how they are laid out. Paths are relative to data_root."""

    root: str = ""
    layout: Layout = "folders"
    # Optional split definitions, relative to `root`: split-list files (UCF101's
    # trainlist01.txt), CSV files, or sub-folders (ImageNet's train/ and val/). When no eval
    # split is given, a deterministic hash of the source file decides (ingestion.eval_fraction).
    train: str = ""
    eval: str = ""
    # audioset_csv: CSV mapping label ids (e.g. /m/09x0r) to display names.
    label_names: str = ""
    # Folder holding the media files when CSV rows name only ids (AudioSet, Kinetics).
    media_dir: str = ""
    # Samples per second of the waveforms of records that do not say theirs
    # (`audio/sample_rate`); 0: such a record is an error (dmvr_records: quarantined as
    # no_sample_rate), never a guess.
    sample_rate: int = 0


@dataclass
class TaskThresholds:
    """Evaluation gate for one task: the candidate is blessed only if it reaches these values."""

    # Lower bound on the task's headline metric (top-1 accuracy for single-label tasks,
    # mAP for multi-label tasks). 0 disables the value threshold.
    min_metric: float = 0.0


@dataclass
class Task:
    name: str = ""
    modality: Modality = "image"
    data: DataSource = field(default_factory=DataSource)
    # false: the task's data has no classes (VATT pretraining clips). It is ingested without
    # labels (a CSV needs no label column, a folder no class folders), gets no vocabulary and no
    # head, and only the Pretrainer reads it (it must be `pretraining.task`); leave num_classes
    # and eval out.
    labelled: bool = True
    label_type: LabelType = "single"
    num_classes: int = 0
    batch_size: int = 32
    lr_multiplier: float = 1.0
    # The every_task schedule (IV-ViT): this task's optimizer decays by
    # training.weight_decay * weight_decay_multiplier (other schedules share one optimizer).
    weight_decay_multiplier: float = 1.0
    loss_weight: float = 1.0
    # Relative sampling weight for the `weighted` schedule; PolyViT sets it to the task's step
    # budget, so `steps` below doubles as the default weight when this is 0.
    sampling_weight: float = 0.0
    steps: int = 0
    label_smoothing: float = 0.0
    eval: TaskThresholds = field(default_factory=TaskThresholds)

    @property
    def weight(self) -> float:
        return self.sampling_weight or float(self.steps) or 1.0


@dataclass
class Ingestion:
    fps: float = 8.0
    short_side: int = 64
    clip_seconds: float = 2.0
    sample_rate: int = 16000
    jpeg_quality: int = 90
    eval_fraction: float = 0.2
    # The run fails only when more than this fraction of the inputs is bad.
    max_bad_fraction: float = 0.1
    # Refuse frames larger than this (pixels per side) before decoding them.
    max_resolution: int = 8192
    # TFRecord compression of the written records: "none" (`.tfrecord`, what DMVR's readers
    # read by default) or "gzip" (`.gz`; TFX's readers detect gzip by that suffix).
    compression: Compression = "none"
    # Video: skip decoding non-reference frames (B-frames nothing refers to) whose display
    # interval holds no sample time, when the source's frame rate is at least twice ingestion.fps.
    # Faster on B-frame video; the picked frames stay the same for a constant frame rate, and
    # move by at most one source frame when frame durations vary. Off: every frame is decoded.
    skip_nonref_frames: bool = False
    # The span a run ingests when tasks' data.root names one ({SPAN} or {YYYY}-{MM}-{DD},
    # components/media_example_gen/spans.py): -1 the newest (what scheduled runs want), N span N.
    span: int = -1
    # Per-file decode cache (components/media_example_gen/decode_cache.py), kept across runs:
    # "" is `<pipeline_root>/decode_cache`, "off" decodes every file every run, else a folder.
    decode_cache: str = ""


@dataclass
class ModelSize:
    hidden_size: int = 192
    num_layers: int = 12
    num_heads: int = 3
    mlp_dim: int = 768
    patch_size: int = 16
    tubelet_frames: int = 2
    # Transformer layers owned by one modality, before the shared encoder.
    modality_layers: int = 0
    dropout: float = 0.0
    # Dropout on the attention probabilities (ViT trains with 0).
    attention_dropout: float = 0.0
    # ViT/big_vision use 1e-6 (Flax's default); checkpoints were trained with it.
    layer_norm_epsilon: float = 1e-6
    zero_init_heads: bool = True


# Size presets: `tiny` trains in minutes on 2 CPU cores; `vit_b16` is PolyViT's ViT-B/16.
MODEL_PRESETS: dict[str, ModelSize] = {
    "tiny": ModelSize(hidden_size=64, num_layers=2, num_heads=2, mlp_dim=128, patch_size=8),
    "small": ModelSize(hidden_size=192, num_layers=4, num_heads=3, mlp_dim=384, patch_size=8),
    "vit_s16": ModelSize(hidden_size=384, num_layers=12, num_heads=6, mlp_dim=1536, patch_size=16),
    "vit_b16": ModelSize(hidden_size=768, num_layers=12, num_heads=12, mlp_dim=3072, patch_size=16),
}


@dataclass
class Model:
    preset: str = "tiny"
    # Any field of ModelSize set here overrides the preset (e.g. `model.overrides.num_layers=6`).
    overrides: dict[str, Any] = field(default_factory=dict)
    # Optional ViT .npz (vit_jax or big_vision layout, trainer/vit_checkpoint.py) to start from.
    init_checkpoint: str = ""
    # How a clip becomes tokens: `tubelets` (PolyViT: the video tokenizer's t x p x p tubelets)
    # or `frames` (IV-ViT: every frame through the image tokenizer and the shared encoder as an
    # image, fused late, trainer/late_fusion.py; no video tokenizer exists then).
    video_encoding: Literal["tubelets", "frames"] = "tubelets"
    # With frames: average the frames' logits, or mean-pool their class tokens before the head.
    late_fusion: Literal["logits", "features"] = "logits"

    def size(self) -> ModelSize:
        if self.preset not in MODEL_PRESETS:
            raise ConfigError(
                f"model.preset: unknown preset {self.preset!r}; "
                f"choose one of {sorted(MODEL_PRESETS)}"
            )
        base = MODEL_PRESETS[self.preset]
        known = {f.name for f in dataclasses.fields(ModelSize)}
        for key in self.overrides:
            if key not in known:
                raise ConfigError(f"model.overrides.{key}: unknown model size field")
        return dataclasses.replace(base, **self.overrides)


@dataclass
class Inputs:
    """Shapes the input pipelines produce; static so that the graph compiles for TPU."""

    image_size: int = 32
    video_size: int = 32
    num_frames: int = 8
    frame_stride: int = 1
    audio_seconds: float = 2.0
    num_mel_bins: int = 64
    spec_augment: bool = False
    mixup_alpha: float = 0.0
    eval_clips: int = 1
    # Training crops (random resized crop): a box covering [crop_min_area, crop_max_area] of the
    # frame with aspect ratio in [1 / crop_max_aspect, crop_max_aspect], resized to the size.
    crop_min_area: float = 0.3
    crop_max_area: float = 1.0
    crop_max_aspect: float = 4 / 3
    # Random horizontal flip in training. Turn it off when left/right carries the label
    # (digits, direction of motion).
    random_flip: bool = True
    # Evaluation and serving: the central square covering this fraction of the shorter side,
    # resized to the size (1.0 keeps the whole shorter side; 0.875 is the ImageNet habit).
    eval_crop_fraction: float = 1.0
    # Training records are shuffled in a buffer of this many examples.
    shuffle_buffer: int = 1024
    # Audio: the log-mel is computed at this rate (records at another rate are resampled) with
    # a Hann window of audio_window_ms every audio_hop_ms, mel filters between mel_min_hz and
    # mel_max_hz (0 means the Nyquist frequency).
    audio_sample_rate: int = 16000
    audio_window_ms: float = 25.0
    audio_hop_ms: float = 10.0
    mel_min_hz: float = 20.0
    mel_max_hz: float = 0.0
    # SpecAugment (training, when spec_augment is on): this many masks of up to this many mel
    # bins / frames each, filled with 0 (the normalised mean).
    freq_masks: int = 2
    freq_mask_bins: int = 8
    time_masks: int = 2
    time_mask_frames: int = 20


@dataclass
class Training:
    steps: int = 1000
    schedule: Schedule = "weighted"
    optimizer: Literal["sgd", "adamw"] = "adamw"
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    momentum: float = 0.9
    grad_clip_norm: float = 1.0
    # Adam(W) moments; AdamW with weight_decay 0 is Adam.
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    # bfloat16 on TPU (and CPUs with AMX); float16 on GPU, with dynamic loss scaling.
    mixed_precision: bool = False
    mixed_precision_dtype: Literal["bfloat16", "float16"] = "bfloat16"
    strategy: Strategy = "default"
    # TPU name, grpc://host:8470, or "local" on a TPU VM; empty: the TPU_NAME variable.
    tpu_address: str = ""
    checkpoint_every: int = 200
    checkpoints_to_keep: int = 3
    # Where the TFX Trainer keeps checkpoints. Empty: its model_run_dir, which a retried
    # execution (a preempted Kubeflow pod) reuses but a re-run of the pipeline does not. Set:
    # <checkpoint_root>/<fingerprint of the training data and config>, so a re-run on the same
    # data and config resumes too, while new data starts afresh.
    checkpoint_root: str = ""
    log_every: int = 50
    # Train steps per traced call (one tf.function runs this many steps, each dispatched in the
    # graph to its task's step): fewer Python round trips per step, as TPU loops do. Logging and
    # checkpoints happen at loop boundaries; a loop also ends at every log_every and
    # checkpoint_every step, so those stay exact.
    steps_per_loop: int = 1
    # XLA-compile each replica's train step (the forward, backward and update); what a TPU
    # always does. The input pipeline and the in-graph step loop stay outside XLA.
    jit_compile: bool = False
    # With jit_compile: compile the step of a task only if the schedule gives it at least this
    # many steps (0: every task). XLA takes seconds per step function to compile on a CPU, which
    # a task with a few hundred steps does not earn back; a TPU compiles every step regardless.
    jit_compile_min_steps: int = 0
    # Training input pipelines keep each record's deterministic part (decoded JPEG frames, the
    # whole clip's log-mel, labels) after the first epoch; crops, flips, clip and audio offsets,
    # SpecAugment and mixup stay random per step. "memory": in RAM; "file": cache files in the
    # Trainer's working dir (one per record file); "auto": memory when the estimated decoded size
    # is at most cache_max_mb, else off; "off": decode every record every epoch. Cached audio
    # crops start on a hop boundary (audio_hop_ms), as readers of precomputed spectrograms do.
    cache_decoded: Literal["auto", "memory", "file", "off"] = "auto"
    cache_max_mb: int = 1024
    # Final evaluation: at most this many batches per task (0: the whole eval split), of
    # eval_batch_size examples (0: the task's batch_size).
    eval_steps: int = 20
    eval_batch_size: int = 0
    seed: int = 0


@dataclass
class Evaluation:
    # A candidate may be at most this much worse (absolute) than the last blessed model on any
    # task's headline metric. Ignored on the first run, when no model has been blessed.
    max_regression: float = 0.02


@dataclass
class Serving:
    model_name: str = "polyvit"
    push_dir: str = "serving_models"
    port: int = 8500
    top_k: int = 5
    # The local model server (serving/server.py). Loopback unless told otherwise.
    host: str = "127.0.0.1"
    # Prometheus /metrics port; 0 disables the endpoint.
    metrics_port: int = 0
    # How often the server looks for new versions under <push_dir>/<model_name>/.
    poll_seconds: float = 2.0
    # Versions kept loaded: the newest N (TF Serving's `latest` version policy).
    num_versions: int = 1
    # gRPC message limit in MiB, both ways; raised for video payloads (gRPC's default is 4).
    max_message_mb: int = 256
    grpc_workers: int = 16
    # Frames one example (or raw video) may hold; more is refused before the model decodes them.
    max_frames: int = 1024
    # Server-side dynamic batching of concurrent requests (TF Serving's batching flags).
    enable_batching: bool = False
    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    num_batch_threads: int = 2
    # Requests waiting beyond this many full batches are refused with UNAVAILABLE.
    max_enqueued_batches: int = 64
    # Seconds in-flight requests get to finish on SIGTERM.
    shutdown_grace_seconds: float = 10.0
    # Client (`polyvit predict`): deadline per call and retries on UNAVAILABLE with backoff.
    client_timeout_seconds: float = 30.0
    client_retries: int = 3
    client_backoff_seconds: float = 0.5


@dataclass
class Kubeflow:
    image: str = "polyvit:latest"
    pipeline_root: str = "gs://polyvit-pipelines/root"
    # Where the Trainer runs: cpu, gpu (gpu_type, gpu_count) or tpu (tpu_type, tpu_topology).
    trainer_accelerator: Literal["cpu", "gpu", "tpu"] = "cpu"
    gpu_type: str = "nvidia-tesla-a100"
    gpu_count: int = 0
    tpu_type: str = "tpu-v4-podslice"
    tpu_topology: str = "2x2x1"
    # CPU cores and memory for the Trainer pod as Kubernetes quantities ("8", "500m", "32Gi");
    # empty leaves the cluster's defaults.
    trainer_cpu: str = ""
    trainer_memory: str = ""
    # kubernetes: the Trainer runs as a KFP task on the cluster's accelerator nodes (a TPU slice
    # that fits one host). vertex: the Trainer task submits a Vertex AI custom job (TFX's
    # google_cloud_ai_platform Trainer) that asks for the machine and accelerators below.
    trainer_backend: Literal["kubernetes", "vertex"] = "kubernetes"
    vertex_project: str = ""
    vertex_region: str = "us-central1"
    vertex_machine_type: str = "cloud-tpu"
    # Vertex names, e.g. TPU_V3 / 8 or NVIDIA_TESLA_A100 / 1; empty for machine types that
    # carry their accelerators (ct5lp-hightpu-4t).
    vertex_accelerator_type: str = "TPU_V3"
    vertex_accelerator_count: int = 8
    # Beam args for compiled pipelines (e.g. DataflowRunner); empty uses beam_pipeline_args.
    beam_pipeline_args: list[str] = field(default_factory=list)
    enable_cache: bool = False
    # KFP endpoint and experiment for `polyvit submit/schedule/runs`; --host overrides. An empty
    # host inside the cluster reaches the in-cluster KFP API with the pod's service account.
    host: str = ""
    namespace: str = ""
    experiment: str = "polyvit"
    service_account: str = "polyvit-pipeline-runner"
    # Recurring retraining (`polyvit schedule`): 6-field cron, seconds first.
    schedule_cron: str = "0 0 3 * * *"
    max_concurrency: int = 1


# VATT's two backbones: one modality-agnostic encoder for video, audio and text (`ut_fac`) or
# one encoder per modality (`tx_fac`).
Backbone = Literal["shared", "per_modality"]
# What a fine-tuning run takes from the pretrained model (trainer/vatt/transfer.py).
CarryOver = Literal["tokenizers", "encoder"]


@dataclass
class Pretraining:
    """VATT self-supervised pretraining (trainer/vatt/): an optional Trainer stage before the
    co-training one, on an unlabelled video task with its soundtrack and captions."""

    enabled: bool = False
    # The video task whose clips pretrain the model: typically unlabelled (labelled: false).
    task: str = ""
    steps: int = 200
    batch_size: int = 8
    learning_rate: float = 1e-3
    backbone: Backbone = "shared"
    # DropToken: the fraction of video and audio tokens kept, at random, in training only.
    keep_tokens: float = 0.5
    temperature: float = 0.07
    # Weights of the NCE video-audio and MIL-NCE video-text losses (0 leaves a pair out).
    audio_weight: float = 1.0
    text_weight: float = 1.0
    # Projection heads, fine-and-coarse: video-audio space, then video-text space from it.
    audio_space_dim: int = 64
    text_space_dim: int = 32
    # WaT: the raw waveform cut into 1D patches of this many samples, each projected linearly.
    waveform_patch: int = 320
    # Captions: tokens per caption (padded/truncated), candidates per clip, vocabulary size (the
    # most frequent train-caption words; Transform computes it), text transformer layers.
    text_length: int = 16
    max_captions: int = 2
    vocab_size: int = 1000
    text_layers: int = 1
    # Optional frozen word embeddings, word2vec text format, relative to data_root.
    word_embeddings: str = ""
    carry_over: list[CarryOver] = field(default_factory=lambda: ["tokenizers", "encoder"])
    # A labelled video task for the linear probe on frozen pretrained features (empty: none).
    probe_task: str = ""


@dataclass
class Continuous:
    """Continuous training: TFX caching for local runs and the rolling window of spans."""

    # TFX's cache for `polyvit run` (`--no-cache` turns it off for one run): unchanged stages
    # on unchanged inputs are skipped.
    cache: bool = True
    # How many of the newest spans Transform and the Trainer read (TFX's rolling_range over
    # MediaExampleGen's Examples, the newest version of each span).
    span_window: int = 1
    # The Trainer starts from the latest blessed model (TFX's base_model): encoder and
    # tokenizers always, heads of tasks whose labels are unchanged (trainer/warm_start.py).
    warm_start: bool = True
    # Steps a warm-started Trainer trains instead of training.steps (0: training.steps; at
    # most training.steps): a retrain on a new span is a short fine-tune. The schedule
    # apportions them over the tasks by the same weights, so every budget shrinks alike.
    warm_start_steps: int = 0


@dataclass
class SearchRange:
    """A range the Tuner searches (`min` to `max`, on a log scale with `log`); unset (max 0)
    leaves the configured value alone."""

    min: float = 0.0
    max: float = 0.0
    log: bool = False

    @property
    def is_set(self) -> bool:
        return self.max > 0


@dataclass
class Tuning:
    """Hyperparameter search before the Trainer (TFX Tuner, trainer/tuning_fn.py): each trial
    trains with the project's own loop for `steps_per_trial` steps and scores the mean over
    tasks of each task's headline eval metric; the Trainer applies the best values."""

    enabled: bool = False
    # keras-tuner's oracles: RandomSearch or BayesianOptimization (a Gaussian process).
    algorithm: Literal["random", "bayesian"] = "random"
    max_trials: int = 4
    steps_per_trial: int = 100
    # Eval batches per task a trial is scored on; 0 (the default): the whole eval split. A
    # positive value scores the split's first batches only, which are not a sample when the
    # records are in class order (MediaExampleGen writes them as it lists the folders).
    eval_steps: int = 0
    seed: int = 0
    # What is searched: training.learning_rate and training.weight_decay in these ranges, and
    # per task (each of `tasks`, empty: every task) its loss_weight in `loss_weight` and its
    # batch_size among `batch_sizes`. An unset range / empty list is not searched.
    learning_rate: SearchRange = field(
        default_factory=lambda: SearchRange(min=1e-4, max=1e-2, log=True)
    )
    weight_decay: SearchRange = field(default_factory=SearchRange)
    loss_weight: SearchRange = field(default_factory=SearchRange)
    batch_sizes: list[int] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)


@dataclass
class Config:
    pipeline_name: str = "polyvit"
    # Raw data paths in tasks are relative to this folder (or bucket); relative data_root is
    # resolved against the current directory.
    data_root: str = "demo_data"
    # Where TFX writes artifacts and the SQLite ML Metadata store for local runs.
    pipeline_root: str = "runs"
    beam_pipeline_args: list[str] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    ingestion: Ingestion = field(default_factory=Ingestion)
    model: Model = field(default_factory=Model)
    inputs: Inputs = field(default_factory=Inputs)
    training: Training = field(default_factory=Training)
    evaluation: Evaluation = field(default_factory=Evaluation)
    serving: Serving = field(default_factory=Serving)
    kubeflow: Kubeflow = field(default_factory=Kubeflow)
    pretraining: Pretraining = field(default_factory=Pretraining)
    continuous: Continuous = field(default_factory=Continuous)
    tuning: Tuning = field(default_factory=Tuning)

    def task(self, name: str) -> Task:
        return _task_named(self.tasks, name)


def _task_named(tasks: list[Task], name: str) -> Task:
    for task in tasks:
        if task.name == name:
            return task
    raise ConfigError(f"tasks.{name}: no such task; tasks are {[t.name for t in tasks]}")


# --------------------------------------------------------------------------------------------
# Building dataclasses from plain data, strictly.


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _item_key(key: str, index: int, item: Any) -> str:
    """Names a list item by its `name` when it has one (tasks.digits), else by index."""
    if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
        return f"{key}.{item['name']}"
    return f"{key}[{index}]"


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Returns `value` as type `tp`, or raises ConfigError naming `key`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return _build(tp, value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in args:
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}: {value!r} fits none of {[_type_name(a) for a in args]}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        return [_coerce(v, args[0], _item_key(key, i, v)) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return {str(k): _coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")


def _build(cls: type, data: dict, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            raise ConfigError(f"{path}: unknown key; known keys are {sorted(fields)}")
        kwargs[key] = _coerce(value, hints[key], path)
    return cls(**kwargs)


def _tasks_by_name(data: dict) -> dict:
    """Accepts `tasks` as a list or as a mapping name -> task (YAML reads better that way)."""
    tasks = data.get("tasks")
    if isinstance(tasks, dict):
        data = dict(data)
        data["tasks"] = [
            {"name": name, **(body or {})} if isinstance(body, dict) or body is None else body
            for name, body in tasks.items()
        ]
    return data


def _check_types(config_or_slice: Any) -> None:
    """The loader's type checks (choices of a Literal, numbers, strings) for a config built in
    code too: its plain data must build again, strictly."""
    _build(type(config_or_slice), dataclasses.asdict(config_or_slice), "")


def validate(config: Config) -> Config:
    """Checks a Config built in code: the loader's types, then every value rule; returns it, or
    raises ConfigError naming the key."""
    _check_types(config)
    return _check_values(config)


def _check_values(config: Config) -> Config:
    rules.check_tasks(config.tasks)
    rules.check_ingestion(config.ingestion)
    rules.check_inputs(config.inputs)
    rules.check_patches(config.inputs, rules.check_model(config.model), config.model.video_encoding)
    rules.check_video_encoding(config.model, config.inputs)
    rules.check_training(config.training)
    rules.check_evaluation(config.evaluation)
    rules.check_serving(config.serving)
    rules.check_kubeflow(config.kubeflow)
    rules.check_continuous(config.continuous)
    rules.check_strategy(config.training, config.kubeflow)
    rules.check_pretraining(config.pretraining, config.tasks)
    rules.check_tuning(config.tuning, labelled_tasks(config.tasks))
    return config


def from_dict(data: dict) -> Config:
    # _build has checked the types already; only the value rules are left.
    return _check_values(_build(Config, _tasks_by_name(data or {}), ""))


def to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)


# --------------------------------------------------------------------------------------------
# Slices: each stage receives only the sections it uses, so that editing one stage's settings
# (serving.port, evaluation.max_regression, kubeflow.image) changes no other stage's execution
# properties: TFX's cache keys and the Trainer's resume fingerprint stay put.


@dataclass
class TaskData:
    """What ingestion knows of a task: its name, kind of labels and where its media are."""

    name: str = ""
    modality: Modality = "image"
    labelled: bool = True
    label_type: LabelType = "single"
    data: DataSource = field(default_factory=DataSource)


@dataclass
class IngestConfig:
    """MediaExampleGen's slice (also `polyvit ingest`'s whole config)."""

    tasks: list[TaskData] = field(default_factory=list)
    ingestion: Ingestion = field(default_factory=Ingestion)


@dataclass
class TransformConfig:
    """Transform's slice: the tasks (vocabularies) and the inputs (log-mel statistics)."""

    tasks: list[Task] = field(default_factory=list)
    inputs: Inputs = field(default_factory=Inputs)
    # The caption vocabulary of the pretraining task (its size, which task).
    pretraining: Pretraining = field(default_factory=Pretraining)


@dataclass
class TrainerConfig:
    """The Trainer's slice: what decides the model, its inputs and its training."""

    pipeline_name: str = "polyvit"
    # The labelled tasks: one head each, co-trained, evaluated and exported.
    tasks: list[Task] = field(default_factory=list)
    # Unlabelled tasks (`labelled: false`): no head; only the Pretrainer reads them.
    unlabelled_tasks: list[Task] = field(default_factory=list)
    model: Model = field(default_factory=Model)
    inputs: Inputs = field(default_factory=Inputs)
    training: Training = field(default_factory=Training)
    # The exported raw audio signatures take waveforms at the ingestion's sample rate.
    sample_rate: int = 16000
    # The VATT pretraining stage's settings (its run_fn, and what fine-tuning carries over).
    pretraining: Pretraining = field(default_factory=Pretraining)
    # continuous.warm_start_steps: what run_fn trains when it warm-starts from a base model.
    warm_start_steps: int = 0

    def task(self, name: str) -> Task:
        return _task_named(self.tasks + self.unlabelled_tasks, name)


def labelled_tasks(tasks: list) -> list:
    """The tasks with classes: those the co-training Trainer, the Evaluator and the report see."""
    return [t for t in tasks if t.labelled]


def narrowed(cls: type, source: Any, **values: Any) -> Any:
    """A `cls` (a dataclass) whose fields are `source`'s attributes of the same names, `values`
    replacing or adding some: what a stage keeps of a task (a slice's task, a report's task,
    a listed clip), so that a field added to both is carried without another line."""
    names = [f.name for f in dataclasses.fields(cls) if f.name not in values]
    return cls(**{name: getattr(source, name) for name in names}, **values)


@dataclass
class TunerConfig(TrainerConfig):
    """The Tuner's slice: the Trainer's (its trials run the same training loop) and `tuning`."""

    tuning: Tuning = field(default_factory=Tuning)


def ingest_config(config: Config) -> IngestConfig:
    tasks = [narrowed(TaskData, t) for t in config.tasks]
    return IngestConfig(tasks=tasks, ingestion=config.ingestion)


def transform_config(config: Config) -> TransformConfig:
    return TransformConfig(tasks=config.tasks, inputs=config.inputs, pretraining=config.pretraining)


def trainer_config(config: Config) -> TrainerConfig:
    return TrainerConfig(
        pipeline_name=config.pipeline_name,
        tasks=labelled_tasks(config.tasks),
        unlabelled_tasks=[t for t in config.tasks if not t.labelled],
        model=config.model,
        inputs=config.inputs,
        training=config.training,
        sample_rate=config.ingestion.sample_rate,
        pretraining=config.pretraining,
        warm_start_steps=config.continuous.warm_start_steps,
    )


def tuner_config(trainer_slice: TrainerConfig, tuning: Tuning) -> TunerConfig:
    """The Trainer's slice (as the pipeline resolved it, strategy included) plus `tuning`."""
    fields = {f.name: getattr(trainer_slice, f.name) for f in dataclasses.fields(TrainerConfig)}
    return TunerConfig(**fields, tuning=tuning)


def validate_slice(config_slice: Any) -> Any:
    """The value rules of the sections a slice holds (a slice rebuilt from a component's
    custom_config is checked as strictly as the Config it was cut from)."""
    _check_types(config_slice)
    return _check_slice_values(config_slice)


def _check_slice_values(config_slice: Any) -> Any:
    if isinstance(config_slice, IngestConfig):
        rules.check_task_names(config_slice.tasks)
        rules.check_ingestion(config_slice.ingestion)
    elif isinstance(config_slice, TransformConfig):
        rules.check_tasks(config_slice.tasks)
        rules.check_inputs(config_slice.inputs)
        rules.check_pretraining(config_slice.pretraining, config_slice.tasks)
    elif isinstance(config_slice, TrainerConfig):
        rules.check_trainer_tasks(config_slice.tasks, config_slice.unlabelled_tasks)
        rules.check_inputs(config_slice.inputs)
        rules.check_patches(
            config_slice.inputs,
            rules.check_model(config_slice.model),
            config_slice.model.video_encoding,
        )
        rules.check_video_encoding(config_slice.model, config_slice.inputs)
        rules.check_training(config_slice.training)
        rules.check_warm_start_steps(config_slice.warm_start_steps)
        rules.check_sample_rate(config_slice.sample_rate)
        rules.check_pretraining(
            config_slice.pretraining, config_slice.tasks + config_slice.unlabelled_tasks
        )
    if isinstance(config_slice, TunerConfig):
        rules.check_tuning(config_slice.tuning, config_slice.tasks)
    return config_slice


# The TFX components that run project code (Transform's preprocessing_fn, the Trainer's run_fn)
# receive their slice through their `custom_config`, under this key.
CUSTOM_CONFIG_KEY = "config"


def to_custom_config(config_slice: Any) -> dict:
    """{"config": plain data of a slice (or of a whole Config)}."""
    return {CUSTOM_CONFIG_KEY: dataclasses.asdict(config_slice)}


def from_custom_config(custom_config: dict | None, cls: type, where: str) -> Any:
    """The slice of type `cls` a component received; `where` names the component in errors."""
    if not custom_config or CUSTOM_CONFIG_KEY not in custom_config:
        raise ValueError(
            f"{where}: custom_config has no {CUSTOM_CONFIG_KEY!r}; build it with "
            "core.config.to_custom_config(...)"
        )
    data = custom_config[CUSTOM_CONFIG_KEY]
    data = json.loads(data) if isinstance(data, str) else data
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: custom_config[{CUSTOM_CONFIG_KEY!r}] is not a mapping")
    return _from_data(data, cls)


def slice_to_json(config_slice: Any) -> str:
    """A slice as a component's string execution property: sorted keys, so equal slices give
    equal text (TFX's cache key)."""
    return json.dumps(dataclasses.asdict(config_slice), sort_keys=True)


def slice_from_json(text: str, cls: type, where: str) -> Any:
    """The slice of type `cls` back from `slice_to_json`, strictly: an unknown key or a value
    of the wrong type fails naming it, after `where` (the component and its property)."""
    try:
        data = json.loads(text)
    except (TypeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{where}: not the JSON of a {cls.__name__}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected the JSON of a {cls.__name__}, got {data!r:.40}")
    try:
        return _from_data(data, cls)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _from_data(data: dict, cls: type) -> Any:
    """A Config or a slice from its plain data, strictly, with its value rules."""
    return from_dict(data) if cls is Config else _check_slice_values(_build(cls, data, ""))


# --------------------------------------------------------------------------------------------
# Overrides: `--set training.steps=500`, `--set tasks.digits.batch_size=16`.


def _set_path(data: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        here = ".".join(parts[: i + 1])
        if isinstance(node, list):  # tasks addressed by name
            match = [t for t in node if isinstance(t, dict) and t.get("name") == part]
            if not match:
                raise ConfigError(f"{here}: no task named {part!r}")
            node = match[0]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"{here}: cannot set a key inside a {type(node).__name__}")
        node = node.setdefault(part, {})
    if isinstance(node, list):
        raise ConfigError(f"{dotted}: name a field of one task, e.g. tasks.NAME.batch_size")
    node[parts[-1]] = value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    data = _tasks_by_name(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        # YAML parses the value, so numbers, booleans and lists need no quoting rules of ours.
        _set_path(data, key.strip(), yaml.safe_load(raw))
    return data


def load(path: str, overrides: list[str] | None = None) -> Config:
    """Loads a YAML config, applies `key=value` overrides and validates the result."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return from_dict(apply_overrides(data, overrides or []))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def dump(config: Config) -> str:
    data = to_dict(config)
    data["tasks"] = {t.pop("name"): t for t in data["tasks"]}
    return yaml.safe_dump(data, sort_keys=False)
