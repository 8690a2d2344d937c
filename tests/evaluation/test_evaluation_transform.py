"""Transform's preprocessing_fn through the real TFX Transform executor on tiny DMVR records:
sorted per-task vocabularies (the ingestion's order, not tft.vocabulary's frequency order) and
the log-mel statistics recomputed independently."""

from __future__ import annotations

import collections

import evaluation_records as records
import numpy as np
import pytest
import tensorflow as tf

from media.dmvr import parse_sequence_example
from transforms import preprocessing
from transforms.audio import log_mel_spectrogram


def frequency_order(labels: list[str]) -> list[str]:
    """tft.vocabulary's documented order: decreasing count, ties in reverse lexicographic."""
    counts = collections.Counter(labels)
    return sorted(counts, key=lambda label: (counts[label], label), reverse=True)


@pytest.mark.e2e
def test_vocabularies_are_sorted_per_task_in_the_ingestion_order(examples, transform_graph):
    _, written = examples
    stats = preprocessing.read_transform_stats(transform_graph)
    vocabularies = preprocessing.read_vocabularies(stats)
    assert sorted(vocabularies) == sorted(records.VOCABULARIES)
    for task, expected in records.VOCABULARIES.items():
        with open(f"{examples[0]}/labels/{task}.txt") as f:
            ingestion = f.read().split()
        assert vocabularies[task] == ingestion == expected, task
        # Each label's vocabulary index is the records' clip/label/index.
        for record in written["train"][task]:
            clip = parse_sequence_example(record)
            assert [vocabularies[task].index(x) for x in clip.labels] == list(clip.label_indices)
    # The check above would be vacuous if frequency order happened to be sorted order.
    digits = [x for r in written["train"]["digits"] for x in parse_sequence_example(r).labels]
    assert frequency_order(digits) != records.VOCABULARIES["digits"]


@pytest.mark.e2e
def test_audio_statistics_match_an_independent_log_mel_pass(examples, transform_graph):
    _, written = examples
    config = records.tiny_config()
    values = []
    for task in ("dtmf", "tone_mix"):  # the audio tasks only; video records hold no waveform
        for record in written["train"][task]:
            waveform = parse_sequence_example(record).waveform
            values.append(log_mel_spectrogram(tf.constant(waveform), config.inputs).numpy())
    values = np.concatenate([v.reshape(-1) for v in values]).astype(np.float64)
    stats = preprocessing.read_transform_stats(transform_graph)
    assert stats["audio_values"] == values.size
    assert stats["audio_mean"] == pytest.approx(values.mean(), rel=1e-5)
    assert stats["audio_std"] == pytest.approx(values.std(), rel=1e-4)


def test_vocabulary_text_refuses_empty_tasks_and_multiline_labels():
    assert preprocessing.sorted_vocabulary_text([b"b", b"a", b"b"], "t") == "a\nb\n"
    with pytest.raises(ValueError, match="task 'digits' has no labelled example"):
        preprocessing.sorted_vocabulary_text([], "digits")
    with pytest.raises(ValueError, match="line-based"):
        preprocessing.sorted_vocabulary_text([b"a\nb"], "t")


def test_moments_give_mean_and_std_and_refuse_constant_features():
    values = np.array([1.0, 2.0, 4.0])
    stats = preprocessing.moments_to_stats(3, values.sum(), (values**2).sum())
    assert stats["audio_mean"] == pytest.approx(values.mean())
    assert stats["audio_std"] == pytest.approx(values.std())
    assert preprocessing.moments_to_stats(0, 0.0, 0.0)["audio_std"] == 1.0
    with pytest.raises(ValueError, match="constant"):
        preprocessing.moments_to_stats(2, 4.0, 8.0)


def test_preprocessing_fn_needs_the_config():
    with pytest.raises(ValueError, match="to_custom_config"):
        preprocessing.preprocessing_fn({}, {})
