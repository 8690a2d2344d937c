"""VATT on its demo data: does self-supervised pretraining give something to fine-tuning?

In one run, on the VATT demo data (demo/vatt_data.py, ingested here with MediaExampleGen's Beam
ingestion), with the pretraining stage's and the Trainer's own code:

  1. pretrains (trainer/vatt/pretrain.py) on the unlabelled set for `pretraining.steps`;
  2. zero-shot retrieval video->audio and video->text on the retrieval eval set
     (trainer/vatt/retrieval.py) of the pretrained model, of a randomly initialised one and
     against chance (1 / queries);
  3. a linear probe on frozen features of the labelled task (trainer/vatt/probe.py), pretrained
     against random initialisation;
  4. fine-tunes the labelled task for `training.steps` from the pretrained weights
     (trainer/vatt/transfer.py, `pretraining.carry_over`) and from random initialisation, same
     steps, labels, seed and loop (trainer/train_loop.py), and scores both on its eval split.

Prints one table and the goals (R@1 at least 5x chance for both pairs; fine-tuning from
pretraining beats random initialisation), and writes it with every figure to
<work>/run-<time>/vatt_demo.json.

    python benchmarks/vatt_demo.py [--config configs/vatt.yaml] [--work runs/bench_vatt]
        [--data DIR] [--set key=value ...]

Without --data it writes the demo media under --work first (`polyvit make-demo-data DIR
--vatt`); the media and the records are reused by later runs with the same --work.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import core.env  # noqa: E402,F401  (TF_USE_LEGACY_KERAS before TensorFlow loads)
from core import cli_args, logs  # noqa: E402

logs.setup()  # an entry point, before the stack's imports warn about anything

# isort: split
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from benchmarks._records import ingest_once  # noqa: E402
from core import config as config_lib  # noqa: E402
from core import features  # noqa: E402
from trainer import train_loop  # noqa: E402
from trainer.vatt import pretrain, probe, run_fn  # noqa: E402
from transforms import captions, vatt_inputs  # noqa: E402
from transforms.input_pipeline import file_compressions  # noqa: E402

GOAL_RETRIEVAL = 5.0  # R@1 / chance


def ensure_records(config: config_lib.Config, work: str, data: str) -> str:
    """The demo media written (unless --data) and ingested under `work`, once."""
    from demo import vatt_data

    if data:
        return ingest_once(config, work, data)
    data = os.path.join(work, "demo_data")

    def write_media() -> None:
        if not os.path.exists(os.path.join(data, vatt_data.ROOT, vatt_data.CSVS[-1])):
            print(f"Writing the VATT demo media to {data} ...", flush=True)
            vatt_data.generate(data)

    return ingest_once(config, work, data, write_media)


def train_vocabulary(pattern: str, size: int) -> list[str]:
    """The caption vocabulary as Transform computes it: the most frequent train-caption words."""
    files = sorted(tf.io.gfile.glob(pattern))
    words = []
    for path, compression in zip(files, file_compressions(files), strict=True):
        for serialized in tf.data.TFRecordDataset(path, compression_type=compression):
            texts, _, _ = vatt_inputs.record_masks(serialized)
            words.extend(captions.caption_words(texts).flat_values.numpy().tolist())
    return captions.vocabulary_text(words, size).split()


def retrieval_of(model, config, pattern, vocabulary) -> dict:
    return pretrain.zero_shot_retrieval(pretrain.embed_split(model, config, pattern, vocabulary))


def finetune(
    config: config_lib.TrainerConfig, records: str, model_dir: str, base_model: str = ""
) -> dict:
    """The probe task alone, trained for training.steps, from `base_model` or from scratch."""
    task = config.task(config.pretraining.probe_task)
    steps = config.training.steps
    tuned = dataclasses.replace(
        config,
        tasks=[dataclasses.replace(task, sampling_weight=1.0, loss_weight=1.0)],
        training=dataclasses.replace(config.training, checkpoint_every=steps),
    )
    keras.utils.set_random_seed(config.training.seed)
    result = train_loop.train(
        tuned,
        model_dir,
        {task.name: features.task_file_pattern(records, features.TRAIN, task.name)},
        {task.name: features.task_file_pattern(records, features.EVAL, task.name)},
        build_model_fn=run_fn.build_from_base_model(base_model, config) if base_model else None,
    )
    return result.metrics[task.name]


def table(figures: dict) -> str:
    va, vt = figures["retrieval"]["video_to_audio"], figures["retrieval"]["video_to_text"]
    rva, rvt = (
        figures["random_retrieval"]["video_to_audio"],
        figures["random_retrieval"]["video_to_text"],
    )
    probe_p, probe_r = figures["probe"], figures["random_probe"]
    tuned_p, tuned_r = figures["finetune"], figures["random_finetune"]
    rows = [
        "| measure | pretrained | random init | chance | pretrained / chance |",
        "|---|---|---|---|---|",
    ]
    for name, p, r in (("video->audio", va, rva), ("video->text", vt, rvt)):
        rows.append(
            f"| {name} R@1 ({int(p['queries'])} queries) | {p['R@1']:.3f} | {r['R@1']:.3f} | "
            f"{p['chance_R@1']:.3f} | {p['R@1'] / p['chance_R@1']:.1f}x |"
        )
        rows.append(
            f"| {name} R@5 / median rank | {p['R@5']:.3f} / {p['median_rank']:.0f} | "
            f"{r['R@5']:.3f} / {r['median_rank']:.0f} | {5 * p['chance_R@1']:.3f} | |"
        )
    chance = probe_p["chance"]
    rows.append(
        f"| linear probe top-1 (frozen features) | {probe_p['task_top1']:.3f} | "
        f"{probe_r['task_top1']:.3f} | {chance:.3f} | |"
    )
    rows.append(
        f"| fine-tuned top-1 ({figures['finetune_steps']} steps) | {tuned_p['value']:.3f} | "
        f"{tuned_r['value']:.3f} | {chance:.3f} | |"
    )
    return "\n".join(rows)


def goals(figures: dict) -> list[str]:
    out = []
    for pair in ("video_to_audio", "video_to_text"):
        m = figures["retrieval"][pair]
        ratio = m["R@1"] / m["chance_R@1"]
        met = "met" if ratio >= GOAL_RETRIEVAL else "NOT met"
        out.append(f"{pair} R@1 = {ratio:.1f}x chance (goal >= {GOAL_RETRIEVAL:.0f}x): {met}")
    p, r = figures["finetune"]["value"], figures["random_finetune"]["value"]
    met = "met" if p > r else "NOT met"
    out.append(f"fine-tuning from pretraining {p:.3f} vs random init {r:.3f} (goal: beats): {met}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cli_args.add_config_args(parser)
    parser.set_defaults(config="configs/vatt.yaml")
    parser.add_argument("--work", default="runs/bench_vatt")
    parser.add_argument("--data", default="", help="VATT demo data root (make-demo-data --vatt)")
    args = parser.parse_args(argv)

    config = cli_args.load_config(args)
    if not (config.pretraining.enabled and config.pretraining.probe_task):
        print("vatt_demo: the config needs pretraining.enabled and pretraining.probe_task")
        return 2
    records = ensure_records(config, args.work, args.data)
    trainer_config = config_lib.trainer_config(config)
    pre = trainer_config.pretraining
    run_dir = os.path.join(args.work, f"run-{int(time.time())}")
    pattern = {
        split: features.task_file_pattern(records, split, pre.task)
        for split in (features.TRAIN, features.EVAL)
    }
    probe_patterns = [
        features.task_file_pattern(records, split, pre.probe_task)
        for split in (features.TRAIN, features.EVAL)
    ]
    vocabulary = train_vocabulary(pattern[features.TRAIN], pre.vocab_size)
    figures: dict = {"config": args.config, "vocabulary": len(vocabulary)}
    began = time.perf_counter()

    keras.utils.set_random_seed(trainer_config.training.seed)
    random_model = pretrain.make_model(trainer_config, vocabulary)
    figures["random_retrieval"] = retrieval_of(
        random_model, trainer_config, pattern[features.EVAL], vocabulary
    )
    figures["random_probe"] = probe.linear_probe(random_model, trainer_config, *probe_patterns)

    print(f"Pretraining {pre.steps} steps ...", flush=True)
    keras.utils.set_random_seed(trainer_config.training.seed)
    pre_dir = os.path.join(run_dir, "pretrain")
    result = pretrain.pretrain(trainer_config, pre_dir, pattern[features.TRAIN], vocabulary)
    figures["pretrain_history"] = result.history
    figures["pretrain_seconds"] = time.perf_counter() - began
    figures["retrieval"] = retrieval_of(
        result.model, trainer_config, pattern[features.EVAL], vocabulary
    )
    figures["probe"] = probe.linear_probe(result.model, trainer_config, *probe_patterns)

    figures["finetune_steps"] = trainer_config.training.steps
    print(f"Fine-tuning {pre.probe_task} from pretraining and from scratch ...", flush=True)
    figures["finetune"] = finetune(
        trainer_config, records, os.path.join(run_dir, "finetune"), base_model=pre_dir
    )
    figures["random_finetune"] = finetune(
        trainer_config, records, os.path.join(run_dir, "finetune_random")
    )
    figures["seconds"] = time.perf_counter() - began

    report = table(figures)
    print(report)
    for line in goals(figures):
        print(line)
    figures["table"], figures["goals"] = report, goals(figures)
    with open(os.path.join(run_dir, "vatt_demo.json"), "w") as f:
        json.dump(figures, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
