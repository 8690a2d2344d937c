"""DMVR-layout records for the tests, built by the production builder
(`media.dmvr.build_sequence_example` from a `DecodedClip` and a `ClipMetadata`), and the files
around them: gzip TFRecord shards and the Examples artifact layout MediaExampleGen writes
(`Split-<split>/<task>-00000-of-00001.gz`, `labels/<task>.txt`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from core import features
from media.decode import DecodedClip
from media.dmvr import ClipMetadata, build_sequence_example


def jpeg(pixels: np.ndarray, quality: int = 95) -> bytes:
    """One uint8 (H, W, 3) frame as JPEG, encoded by TensorFlow as the input pipeline decodes."""
    import tensorflow as tf

    return tf.io.encode_jpeg(pixels, quality=quality).numpy()


def random_jpegs(rng, count: int, height: int, width: int, quality: int = 95) -> list[bytes]:
    frames = rng.integers(0, 256, size=(count, height, width, 3), dtype=np.uint8)
    return [jpeg(f, quality) for f in frames]


def sine(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    """float32 mono samples of a sine."""
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def sequence_example(
    *,
    task: str = "",
    labels: Sequence[str] | None = None,
    label_indices: Sequence[int] | None = None,
    frames: Sequence[bytes] | None = None,
    frame_rate: float = 8.0,
    waveform: Sequence[float] | np.ndarray | None = None,
    sample_rate: int = 16000,
    filename: str = "clip.mp4",
    start_us: int = 0,
    end_us: int = 1_000_000,
):
    """One record as the production builder writes it (a SequenceExample message).

    Labels: texts and indices; either alone is completed (indices 0, 1, ... for texts, the
    index as text for indices). `frames=[]` keeps an empty frame list in the record, which
    the builder itself never writes (records from elsewhere can have one)."""
    if labels is None and label_indices is not None:
        labels = [str(i) for i in label_indices]
    labels = tuple(labels or ())
    indices = tuple(label_indices) if label_indices is not None else tuple(range(len(labels)))
    clip = DecodedClip(
        start_s=start_us / 1e6,
        end_s=end_us / 1e6,
        frames=list(frames or []),
        frame_rate=frame_rate if frames is not None else 0.0,
        width=0,
        height=0,
        waveform=None if waveform is None else np.asarray(waveform, np.float32),
        sample_rate=sample_rate if waveform is not None else 0,
    )
    meta = ClipMetadata(task, filename, start_us, end_us, labels, indices)
    example = build_sequence_example(clip, meta)
    if frames is not None and not frames:
        example.feature_lists.feature_list[features.IMAGE_ENCODED].SetInParent()
        example.context.feature[features.FRAME_RATE].float_list.value[:] = [frame_rate]
    return example


def record(**fields) -> bytes:
    """sequence_example(**fields), serialized with sorted map keys (the same fields give the
    same bytes, which tests that compare stored requests rely on)."""
    return sequence_example(**fields).SerializeToString(deterministic=True)


def write_tfrecords(path: str, serialized: Sequence[bytes], compression: str = "gzip") -> str:
    """TFRecords, gzip (MediaExampleGen with ingestion.compression=gzip) or "none" (its
    default, and what DMVR's generator writes)."""
    import tensorflow as tf

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    options = "GZIP" if compression == "gzip" else ""
    with tf.io.TFRecordWriter(path, options=options) as writer:
        for item in serialized:
            writer.write(item)
    return path


def write_shards(
    folder: str,
    name: str,
    serialized: Sequence[bytes],
    num_files: int = 1,
    compression: str = "gzip",
    suffix: str | None = None,
) -> str:
    """Records round-robin over `<name>-<k>-of-<n><suffix>` shards (the suffix MediaExampleGen
    gives `compression` unless `suffix` says otherwise); returns their glob pattern."""
    suffix = features.record_suffix(compression) if suffix is None else suffix
    for k in range(num_files):
        path = os.path.join(folder, f"{name}-{k:05d}-of-{num_files:05d}{suffix}")
        write_tfrecords(path, serialized[k::num_files], compression)
    return os.path.join(folder, f"{name}-*{suffix}")


def write_examples_artifact(
    uri: str,
    by_split: Mapping[str, Mapping[str, Sequence[bytes]]],
    vocabularies: Mapping[str, Sequence[str]],
) -> str:
    """{split: {task: records}} and the per-task vocabularies laid out as an Examples artifact."""
    for split, by_task in by_split.items():
        for task, serialized in by_task.items():
            path = os.path.join(features.split_dir(uri, split), f"{task}-00000-of-00001.gz")
            write_tfrecords(path, serialized)
    for task, vocabulary in vocabularies.items():
        path = features.vocabulary_path(uri, task)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("".join(f"{label}\n" for label in vocabulary))
    return uri
