"""Linear probe: a logistic regression on frozen pretrained video features (the encoder's
class token, evaluation mode) of a labelled task, trained on its train split and scored on its
eval split. Top-1 accuracy against chance (1 / classes)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from core.config import TrainerConfig
from trainer.vatt.model import Vatt


def frozen_features(model: Vatt, dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(features [n, hidden], class indices [n]) of every (features, one-hot) batch."""
    feats, labels = [], []
    for features, onehot in dataset:
        feats.append(model.features(features["video"], "video", training=False).numpy())
        labels.append(np.argmax(onehot.numpy(), axis=1))
    return np.concatenate(feats), np.concatenate(labels)


def fit_and_score(
    train: tuple[np.ndarray, np.ndarray], evaluate: tuple[np.ndarray, np.ndarray]
) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train[0])
    classifier = LogisticRegression(max_iter=2000).fit(scaler.transform(train[0]), train[1])
    return float(np.mean(classifier.predict(scaler.transform(evaluate[0])) == evaluate[1]))


def linear_probe(
    model: Vatt, config: TrainerConfig, train_pattern: str, eval_pattern: str
) -> dict[str, float]:
    from transforms.input_pipeline import make_dataset

    task = config.task(config.pretraining.probe_task)

    def data(pattern: str):
        return make_dataset(
            pattern,
            task,
            config.inputs,
            training=False,
            batch_size=16,
            repeat=False,
            drop_remainder=False,
        )

    accuracy = fit_and_score(
        frozen_features(model, data(train_pattern)), frozen_features(model, data(eval_pattern))
    )
    return {"task_top1": accuracy, "chance": 1.0 / task.num_classes}
