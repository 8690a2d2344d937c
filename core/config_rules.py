"""Value rules of the config: every rule about a config value lives here.

`core.config.validate` (and `validate_slice`) run them when a config is loaded, so that
`polyvit config`, `run` and `compile` refuse a bad value before anything runs and the stages can
trust a loaded config. Each check takes the section it judges and raises ConfigError naming the
full key, e.g. `ingestion.jpeg_quality: must be in [1, 100], got 200`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core import audio_framing, quantities

if TYPE_CHECKING:  # the sections are only read here; core.config imports this module
    from core.config import (
        Continuous,
        Evaluation,
        Ingestion,
        Inputs,
        Kubeflow,
        Model,
        ModelSize,
        Pretraining,
        SearchRange,
        Serving,
        Task,
        Training,
        Tuning,
    )


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type; the message names the key."""


def _require(ok: bool, key: str, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key}: {rule}, got {value!r}")


def _positive(section: Any, prefix: str, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(section, name)
        _require(value > 0, f"{prefix}.{name}", "must be positive", value)


def _not_negative(section: Any, prefix: str, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(section, name)
        _require(value >= 0, f"{prefix}.{name}", "must not be negative", value)


def _fraction(section: Any, prefix: str, names: tuple[str, ...], upper: str = "]") -> None:
    """Each value in [0, 1] (upper "]") or [0, 1) (upper ")")."""
    for name in names:
        value = getattr(section, name)
        ok = 0.0 <= value <= 1.0 if upper == "]" else 0.0 <= value < 1.0
        _require(ok, f"{prefix}.{name}", f"must be in [0, 1{upper}", value)


def check_task_names(tasks: list) -> None:
    if not tasks:
        raise ConfigError("tasks: at least one task is needed")
    names = [t.name for t in tasks]
    for i, task in enumerate(tasks):
        if not task.name:
            raise ConfigError(f"tasks[{i}].name: every task needs a name")
        if names.count(task.name) > 1:
            raise ConfigError(f"tasks.{task.name}: task name used twice")
        if not task.data.root:
            raise ConfigError(f"tasks.{task.name}.data.root: the task has no data path")
        labelled = getattr(task, "labelled", True)
        if task.data.layout == "audioset_csv" and labelled and task.label_type != "multi":
            raise ConfigError(
                f"tasks.{task.name}.label_type: audioset_csv data is multi-label; set 'multi'"
            )


def _check_unlabelled(task: Task, key: str) -> None:
    """An unlabelled task has no head: nothing may configure one for it."""
    why = "an unlabelled task (labelled: false) has no classes and no head"
    _require(task.num_classes == 0, f"{key}.num_classes", f"{why}; leave it out", task.num_classes)
    _require(task.label_type == "single", f"{key}.label_type", why, task.label_type)
    _require(task.label_smoothing == 0, f"{key}.label_smoothing", why, task.label_smoothing)
    _require(
        task.eval.min_metric == 0,
        f"{key}.eval.min_metric",
        "an unlabelled task is not evaluated (no head)",
        task.eval.min_metric,
    )


def check_tasks(tasks: list[Task]) -> None:
    check_task_names(tasks)
    if not any(task.labelled for task in tasks):
        raise ConfigError(
            "tasks: at least one labelled task is needed (the Trainer trains a head per "
            f"labelled task); all of {[t.name for t in tasks]} have labelled: false"
        )
    for task in tasks:
        key = f"tasks.{task.name}"
        if task.labelled:
            _positive(task, key, ("num_classes",))
        else:
            _check_unlabelled(task, key)
        _positive(task, key, ("batch_size",))
        # Non-negative weights and budgets keep every task's sampling weight positive.
        _not_negative(
            task,
            key,
            ("lr_multiplier", "weight_decay_multiplier", "loss_weight", "sampling_weight", "steps"),
        )
        _fraction(task, key, ("label_smoothing",), upper=")")
        _fraction(task.eval, f"{key}.eval", ("min_metric",))
        _not_negative(task.data, f"{key}.data", ("sample_rate",))
        if task.data.layout == "dmvr_records":
            for name in ("label_names", "media_dir"):
                _require(
                    not getattr(task.data, name),
                    f"{key}.data.{name}",
                    "dmvr_records reads no media files (records carry their labels)",
                    getattr(task.data, name),
                )


def check_trainer_tasks(tasks: list[Task], unlabelled: list[Task]) -> None:
    """The Trainer's slice: its `tasks` are the heads (all labelled), the unlabelled ones apart
    (only the Pretrainer reads them)."""
    check_tasks(tasks + unlabelled)
    for task in tasks:
        _require(
            task.labelled,
            f"tasks.{task.name}.labelled",
            "the co-training Trainer gives every task of `tasks` a head; an unlabelled task "
            "belongs in unlabelled_tasks",
            task.labelled,
        )
    for task in unlabelled:
        _require(
            not task.labelled,
            f"unlabelled_tasks.{task.name}.labelled",
            "a labelled task belongs in tasks",
            task.labelled,
        )


def check_ingestion(ingestion: Ingestion) -> None:
    _positive(
        ingestion,
        "ingestion",
        ("fps", "short_side", "clip_seconds", "sample_rate", "max_resolution"),
    )
    _require(
        1 <= ingestion.jpeg_quality <= 100,
        "ingestion.jpeg_quality",
        "must be in [1, 100]",
        ingestion.jpeg_quality,
    )
    _fraction(ingestion, "ingestion", ("eval_fraction",), upper=")")
    _fraction(ingestion, "ingestion", ("max_bad_fraction",))
    _require(
        ingestion.span >= -1, "ingestion.span", "must be -1 (the newest) or >= 0", ingestion.span
    )


def check_model(model: Model) -> ModelSize:
    size = model.size()
    # The presets are valid, so a bad size can only come from model.overrides.
    key = "model.overrides"
    _positive(
        size,
        key,
        (
            "hidden_size",
            "num_layers",
            "num_heads",
            "mlp_dim",
            "patch_size",
            "tubelet_frames",
            "layer_norm_epsilon",
        ),
    )
    _not_negative(size, key, ("modality_layers",))
    _fraction(size, key, ("dropout", "attention_dropout"), upper=")")
    if size.hidden_size % size.num_heads:
        raise ConfigError("model: hidden_size must be divisible by num_heads")
    return size


def check_patches(inputs: Inputs, size: ModelSize, video_encoding: str = "tubelets") -> None:
    """The input shapes must tile into the model's patches and tubelets."""
    for name in ("image_size", "video_size"):
        value = getattr(inputs, name)
        if value % size.patch_size:
            raise ConfigError(
                f"inputs.{name}: {value} is not a multiple of the patch size {size.patch_size}"
            )
    if video_encoding == "tubelets" and inputs.num_frames % size.tubelet_frames:
        raise ConfigError("inputs.num_frames: must be a multiple of model tubelet_frames")


def check_video_encoding(model: Model, inputs: Inputs) -> None:
    """Frames share the image tokenizer, whose positional embedding fixes one frame size."""
    if model.video_encoding == "frames" and inputs.video_size != inputs.image_size:
        raise ConfigError(
            f"inputs.video_size: must equal inputs.image_size ({inputs.image_size}) with "
            f"model.video_encoding=frames (frames go through the image tokenizer), "
            f"got {inputs.video_size}"
        )


def _check_visual_inputs(inputs: Inputs) -> None:
    _positive(inputs, "inputs", ("image_size", "video_size", "num_frames", "frame_stride"))
    if not 0.0 < inputs.crop_min_area <= inputs.crop_max_area <= 1.0:
        raise ConfigError(
            "inputs.crop_min_area / crop_max_area: need 0 < min <= max <= 1, got "
            f"{inputs.crop_min_area} / {inputs.crop_max_area}"
        )
    _require(
        inputs.crop_max_aspect >= 1.0,
        "inputs.crop_max_aspect",
        "must be >= 1",
        inputs.crop_max_aspect,
    )
    _require(
        0.0 < inputs.eval_crop_fraction <= 1.0,
        "inputs.eval_crop_fraction",
        "must be in (0, 1]",
        inputs.eval_crop_fraction,
    )


def _check_audio_inputs(inputs: Inputs) -> None:
    _positive(inputs, "inputs", ("audio_sample_rate", "num_mel_bins"))
    window, hop, _ = audio_framing.frame_params(inputs)
    if window < 2 or hop < 1:
        raise ConfigError(
            f"inputs.audio_window_ms / audio_hop_ms: {inputs.audio_window_ms} ms / "
            f"{inputs.audio_hop_ms} ms give a window of {window} and a hop of {hop} samples"
        )
    if audio_framing.clip_samples(inputs) < window:
        raise ConfigError(
            f"inputs.audio_seconds: {inputs.audio_seconds} s is shorter than one window "
            f"({inputs.audio_window_ms} ms)"
        )
    low, high = audio_framing.mel_range(inputs)
    nyquist = inputs.audio_sample_rate / 2.0
    if not 0.0 <= low < high <= nyquist:
        raise ConfigError(
            f"inputs.mel_min_hz / mel_max_hz: need 0 <= {low} < {high} <= the Nyquist "
            f"frequency {nyquist} Hz"
        )
    _not_negative(
        inputs, "inputs", ("freq_masks", "freq_mask_bins", "time_masks", "time_mask_frames")
    )


def check_inputs(inputs: Inputs) -> None:
    _check_visual_inputs(inputs)
    _check_audio_inputs(inputs)
    _positive(inputs, "inputs", ("eval_clips", "shuffle_buffer"))
    _not_negative(inputs, "inputs", ("mixup_alpha",))


def check_training(training: Training) -> None:
    _positive(
        training,
        "training",
        (
            "steps",
            "log_every",
            "steps_per_loop",
            "checkpoint_every",
            "checkpoints_to_keep",
            "learning_rate",
            "adam_epsilon",
        ),
    )
    _not_negative(
        training,
        "training",
        (
            "warmup_steps",
            "grad_clip_norm",
            "weight_decay",
            "eval_steps",
            "eval_batch_size",
            "seed",
            "cache_max_mb",
            "jit_compile_min_steps",
        ),
    )
    _fraction(training, "training", ("momentum",))
    _fraction(training, "training", ("adam_beta1", "adam_beta2"), upper=")")


def check_evaluation(evaluation: Evaluation) -> None:
    _not_negative(evaluation, "evaluation", ("max_regression",))


def check_serving(serving: Serving) -> None:
    for name in ("port", "metrics_port"):  # 0: any free port / no metrics endpoint
        value = getattr(serving, name)
        _require(0 <= value <= 65535, f"serving.{name}", "must be in [0, 65535]", value)
    _positive(
        serving,
        "serving",
        (
            "top_k",
            "poll_seconds",
            "num_versions",
            "max_message_mb",
            "grpc_workers",
            "max_frames",
            "max_batch_size",
            "num_batch_threads",
            "max_enqueued_batches",
            "client_timeout_seconds",
        ),
    )
    _not_negative(
        serving,
        "serving",
        (
            "batch_timeout_micros",
            "shutdown_grace_seconds",
            "client_retries",
            "client_backoff_seconds",
        ),
    )


def _check_quantity(parse: Any, key: str, quantity: str) -> None:
    if quantity:
        try:
            parse(quantity)
        except ValueError as e:
            raise ConfigError(f"{key}: {e}") from None


def _check_pod_accelerator(kubeflow: Kubeflow) -> None:
    """What one Kubernetes pod (the Trainer's KFP task) can be given."""
    if kubeflow.trainer_accelerator == "gpu":
        if kubeflow.gpu_count <= 0:
            raise ConfigError(
                f"kubeflow.gpu_count: must be positive when trainer_accelerator is gpu, "
                f"got {kubeflow.gpu_count}"
            )
    if kubeflow.trainer_accelerator != "tpu":
        return
    if kubeflow.tpu_type not in quantities.TPU_CHIPS_PER_HOST:
        raise ConfigError(
            f"kubeflow.tpu_type: {kubeflow.tpu_type!r} is not a GKE TPU type; "
            f"choose one of {sorted(quantities.TPU_CHIPS_PER_HOST)}"
        )
    try:
        chips = quantities.tpu_chip_count(kubeflow.tpu_topology)
    except ValueError as e:
        raise ConfigError(f"kubeflow.tpu_topology: {e}") from None
    per_host = quantities.TPU_CHIPS_PER_HOST[kubeflow.tpu_type]
    if chips > per_host:
        raise ConfigError(
            f"kubeflow.tpu_topology: {kubeflow.tpu_topology} has {chips} chips but one "
            f"{kubeflow.tpu_type} host holds {per_host}; a multi-host slice cannot run as one "
            "KFP task: pick a single-host topology or set kubeflow.trainer_backend: vertex"
        )


def _check_vertex(kubeflow: Kubeflow) -> None:
    if not kubeflow.vertex_project:
        raise ConfigError("kubeflow.vertex_project: needed when trainer_backend is vertex")
    if kubeflow.vertex_accelerator_type and kubeflow.vertex_accelerator_count <= 0:
        raise ConfigError(
            "kubeflow.vertex_accelerator_count: must be positive when "
            f"vertex_accelerator_type is set, got {kubeflow.vertex_accelerator_count}"
        )


def check_continuous(continuous: Continuous) -> None:
    _require(
        continuous.span_window >= 1,
        "continuous.span_window",
        "must be >= 1 (the newest spans Transform and the Trainer read)",
        continuous.span_window,
    )
    check_warm_start_steps(continuous.warm_start_steps)


def check_warm_start_steps(steps: int) -> None:
    _require(
        steps >= 0,
        "continuous.warm_start_steps",
        "must not be negative (0 trains training.steps after a warm start too)",
        steps,
    )


def check_kubeflow(kubeflow: Kubeflow) -> None:
    _check_quantity(quantities.cpu_cores, "kubeflow.trainer_cpu", kubeflow.trainer_cpu)
    _check_quantity(quantities.memory_gigabytes, "kubeflow.trainer_memory", kubeflow.trainer_memory)
    if kubeflow.trainer_backend == "vertex":
        _check_vertex(kubeflow)
    else:
        _check_pod_accelerator(kubeflow)
    _positive(kubeflow, "kubeflow", ("max_concurrency",))


def check_strategy(training: Training, kubeflow: Kubeflow) -> None:
    """An explicit training.strategy must suit where the Trainer runs (`default` always does)."""
    accelerator = kubeflow.trainer_accelerator
    explicit = training.strategy
    if explicit == "tpu" and accelerator != "tpu":
        raise ConfigError(
            f"training.strategy: tpu needs kubeflow.trainer_accelerator: tpu, got {accelerator}"
        )
    if accelerator == "tpu" and explicit not in ("tpu", "default"):
        raise ConfigError(
            f"training.strategy: {explicit} cannot drive a TPU; use tpu or default "
            "(kubeflow.trainer_accelerator is tpu)"
        )


def check_sample_rate(rate: int) -> None:
    _require(rate > 0, "sample_rate", "must be positive", rate)


def check_pretraining(pretraining: Pretraining, tasks: list[Task]) -> None:
    key = "pretraining"
    _positive(
        pretraining,
        key,
        ("steps", "batch_size", "learning_rate", "temperature", "audio_space_dim"),
    )
    _positive(pretraining, key, ("text_space_dim", "waveform_patch", "text_length"))
    _positive(pretraining, key, ("max_captions", "vocab_size"))
    _not_negative(pretraining, key, ("audio_weight", "text_weight", "text_layers"))
    keep = pretraining.keep_tokens
    _require(0.0 < keep <= 1.0, f"{key}.keep_tokens", "must be in (0, 1]", keep)
    weights = (pretraining.audio_weight, pretraining.text_weight)
    _require(any(weights), f"{key}.audio_weight", "and text_weight must not both be 0", weights)
    for unlabelled in (t for t in tasks if not t.labelled):
        # With pretraining off the task is ingested and validated, and nothing else reads it.
        _require(
            unlabelled.name == pretraining.task,
            f"tasks.{unlabelled.name}.labelled",
            f"only the Pretrainer reads an unlabelled task; set {key}.task: {unlabelled.name} "
            "(or give the task labels)",
            unlabelled.labelled,
        )
    if not pretraining.enabled:
        return
    by_name = {t.name: t for t in tasks}
    task = by_name.get(pretraining.task)
    _require(task is not None, f"{key}.task", f"must name a task of {sorted(by_name)}", task)
    assert task is not None
    _require(task.modality == "video", f"{key}.task", "must be a video task", task.modality)
    if pretraining.probe_task:
        probe = by_name.get(pretraining.probe_task)
        labelled = sorted(n for n, t in by_name.items() if t.labelled and t.modality == "video")
        _require(
            probe is not None and probe.modality == "video" and probe.labelled,
            f"{key}.probe_task",
            f"must name a labelled video task of {labelled}",
            pretraining.probe_task,
        )


def _check_range(search: SearchRange, key: str) -> None:
    if not search.is_set:
        _require(search.min == 0, f"{key}.max", "must be set (positive) when min is", search.max)
        return
    _require(search.min >= 0, f"{key}.min", "must not be negative", search.min)
    _require(search.min < search.max, f"{key}.min", f"must be below max ({search.max})", search.min)
    if search.log:
        _require(search.min > 0, f"{key}.min", "must be positive on a log scale", search.min)


def check_tuning(tuning: Tuning, tasks: list[Task]) -> None:
    """The Tuner's budget and search space (trainer/tuning.py builds it from these)."""
    key = "tuning"
    _positive(tuning, key, ("max_trials", "steps_per_trial"))
    _not_negative(tuning, key, ("eval_steps", "seed"))
    for name in ("learning_rate", "weight_decay", "loss_weight"):
        _check_range(getattr(tuning, name), f"{key}.{name}")
    for size in tuning.batch_sizes:
        _require(size > 0, f"{key}.batch_sizes", "must hold positive sizes", tuning.batch_sizes)
    sizes = tuning.batch_sizes
    _require(len(set(sizes)) == len(sizes), f"{key}.batch_sizes", "must not repeat a size", sizes)
    names = [t.name for t in tasks]
    for name in tuning.tasks:
        _require(name in names, f"{key}.tasks", f"must name tasks of {names}", name)
    searched = [
        tuning.learning_rate.is_set,
        tuning.weight_decay.is_set,
        tuning.loss_weight.is_set,
        bool(sizes),
    ]
    if tuning.enabled and not any(searched):
        raise ConfigError(
            "tuning: enabled but nothing to search; set a range (learning_rate, weight_decay, "
            "loss_weight) or batch_sizes"
        )
