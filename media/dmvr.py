"""DMVR's SequenceExample layout: build records from decoded clips and read them back.

Keys come from `core/features.py`. The layout is DMVR's (what its
`examples/generate_from_file.py` writes and its readers parse): frames in the `image/encoded`
feature list, one JPEG per Feature; the waveform in `WAVEFORM/feature/floats`, ONE Feature
holding all samples; labels, caption, filename and timestamps in the context. Pure functions on
the protobuf messages (`example_proto`: byte-identical to tf.train's, without importing TF).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from google.protobuf.message import DecodeError

from core import features
from media import errors, fs
from media.decode import DecodedClip, check_finite
from media.errors import MediaError
from media.example_proto import SequenceExample


@dataclasses.dataclass(frozen=True)
class ClipMetadata:
    """What a record says about its clip besides the media."""

    task: str
    filename: str
    start_us: int
    end_us: int
    labels: tuple[str, ...] = ()
    label_indices: tuple[int, ...] = ()
    caption: str = ""


def _set_bytes(example, key: str, values) -> None:
    example.context.feature[key].bytes_list.value[:] = list(values)


def _set_ints(example, key: str, values) -> None:
    example.context.feature[key].int64_list.value[:] = list(values)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _packed_floats(samples: np.ndarray) -> bytes:
    """A FloatList's wire form (field 1, packed little-endian float32): protobuf parses it with
    one copy, where assigning a Python list of 160k floats converts them one by one."""
    data = np.ascontiguousarray(samples, dtype="<f4").tobytes()
    return b"\x0a" + _varint(len(data)) + data


def build_sequence_example(clip: DecodedClip, meta: ClipMetadata) -> SequenceExample:
    """One clip as a DMVR SequenceExample (frames and/or waveform, plus context)."""
    if len(meta.labels) != len(meta.label_indices):
        raise ValueError(f"{meta.filename}: {len(meta.labels)} labels but {meta.label_indices}")
    example = SequenceExample()
    if meta.labels:
        _set_ints(example, features.LABEL_INDEX, meta.label_indices)
        _set_bytes(example, features.LABEL_TEXT, (label.encode() for label in meta.labels))
    captions = features.caption_candidates(meta.caption)
    if captions:
        _set_bytes(example, features.CAPTION, (c.encode() for c in captions))
    if clip.frames and clip.waveform is not None:  # a video: always readable as text too
        if not captions:
            _set_bytes(example, features.CAPTION, [b""])
        _set_ints(example, features.HAS_CAPTION, [int(bool(captions))])
    _set_bytes(example, features.FILENAME, [meta.filename.encode()])
    _set_ints(example, features.START_US, [meta.start_us])
    _set_ints(example, features.END_US, [meta.end_us])
    _set_bytes(example, features.TASK, [meta.task.encode()])
    if clip.frames:
        frames = example.feature_lists.feature_list[features.IMAGE_ENCODED]
        for jpeg in clip.frames:
            frames.feature.add().bytes_list.value.append(jpeg)
        example.context.feature[features.FRAME_RATE].float_list.value[:] = [clip.frame_rate]
    if clip.waveform is not None:
        waveform = example.feature_lists.feature_list[features.WAVEFORM].feature.add()
        waveform.float_list.MergeFromString(_packed_floats(clip.waveform))
        _set_ints(example, features.SAMPLE_RATE, [clip.sample_rate])
        _set_ints(example, features.HAS_AUDIO, [int(clip.has_audio)])
    return example


def with_silent_audio(clip: DecodedClip, sample_rate: int) -> DecodedClip:
    """A video clip without audio, given silence of its length at `sample_rate`, marked as no
    audio (`has_audio=False`; see core.features.HAS_AUDIO). Clips with audio are unchanged."""
    if clip.waveform is not None:
        return clip
    samples = max(1, round((clip.end_s - clip.start_s) * sample_rate))
    return dataclasses.replace(
        clip,
        waveform=np.zeros(samples, np.float32),
        sample_rate=sample_rate,
        has_audio=False,
    )


@dataclasses.dataclass
class ParsedClip:
    """A record read back: what the input pipelines and tests need from it."""

    frames: list[bytes]
    waveform: np.ndarray | None
    labels: tuple[str, ...]
    label_indices: tuple[int, ...]
    caption: str
    filename: str
    start_us: int | None
    end_us: int | None
    task: str
    frame_rate: float | None
    sample_rate: int | None
    has_audio: bool | None = None  # `audio/has_audio`; None when the record does not say
    captions: tuple[str, ...] = ()  # every `caption/string` candidate (caption: the first)
    has_caption: bool | None = None  # `caption/has_caption`; None when the record does not say


def _context_bytes(example, key: str) -> list[bytes]:
    feature = example.context.feature.get(key)
    return list(feature.bytes_list.value) if feature is not None else []


def _context_int(example, key: str) -> int | None:
    feature = example.context.feature.get(key)
    return feature.int64_list.value[0] if feature is not None and feature.int64_list.value else None


def parse_sequence_example(serialized: bytes) -> ParsedClip:
    """Reads a record in DMVR's layout, ours or one from DMVR's own generator.

    Waveform: every Feature of the list is concatenated, so one Feature holding the whole
    waveform (DMVR's layout) and a waveform split over several Features read the same.
    """
    example = SequenceExample.FromString(serialized)
    lists = example.feature_lists.feature_list
    frames = []
    if features.IMAGE_ENCODED in lists:
        for feature in lists[features.IMAGE_ENCODED].feature:
            frames.extend(feature.bytes_list.value)
    waveform = None
    if features.WAVEFORM in lists:
        values = [
            np.asarray(f.float_list.value, np.float32) for f in lists[features.WAVEFORM].feature
        ]
        waveform = np.concatenate(values) if values else np.zeros(0, np.float32)
    label_feature = example.context.feature.get(features.LABEL_INDEX)
    frame_rate = example.context.feature.get(features.FRAME_RATE)
    return ParsedClip(
        frames=frames,
        waveform=waveform,
        labels=tuple(b.decode() for b in _context_bytes(example, features.LABEL_TEXT)),
        label_indices=tuple(label_feature.int64_list.value) if label_feature is not None else (),
        caption=b"".join(_context_bytes(example, features.CAPTION)[:1]).decode(),
        filename=b"".join(_context_bytes(example, features.FILENAME)[:1]).decode(),
        start_us=_context_int(example, features.START_US),
        end_us=_context_int(example, features.END_US),
        task=b"".join(_context_bytes(example, features.TASK)[:1]).decode(),
        frame_rate=frame_rate.float_list.value[0]
        if frame_rate is not None and frame_rate.float_list.value
        else None,
        sample_rate=_context_int(example, features.SAMPLE_RATE),
        has_audio=_optional_bool(_context_int(example, features.HAS_AUDIO)),
        captions=tuple(b.decode() for b in _context_bytes(example, features.CAPTION)),
        has_caption=_optional_bool(_context_int(example, features.HAS_CAPTION)),
    )


def _optional_bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


# --------------------------------------------------------------------------------------------
# Records written elsewhere (the dmvr_records layout): validated and re-keyed one by one.


def record_label_texts(serialized: bytes) -> tuple[str, ...]:
    """`clip/label/text` of a serialized record (empty when it has none or does not parse)."""
    try:
        example = SequenceExample.FromString(serialized)
    except DecodeError:
        return ()
    return tuple(b.decode("utf-8", "replace") for b in _context_bytes(example, features.LABEL_TEXT))


@dataclasses.dataclass(frozen=True)
class RekeyRules:
    """What a record from elsewhere must satisfy to enter a task (see rekey_record)."""

    task: str
    modality: str
    vocabulary: tuple[str, ...]  # the task's labels in index order
    default_sample_rate: int = 0  # tasks.<t>.data.sample_rate; 0: a record must say its own
    # False (an unlabelled task): the record's labels, if any, are removed.
    labelled: bool = True


def _check_media(example, modality: str, where: str) -> None:
    lists = example.feature_lists.feature_list
    if modality in ("image", "video"):
        frames = lists[features.IMAGE_ENCODED].feature if features.IMAGE_ENCODED in lists else []
        if not any(f.bytes_list.value for f in frames):
            raise MediaError(errors.NO_FRAMES, f"no {features.IMAGE_ENCODED} frames", where)
    waveform = lists[features.WAVEFORM].feature if features.WAVEFORM in lists else []
    if modality == "audio" and not any(f.float_list.value for f in waveform):
        raise MediaError(errors.NO_AUDIO_STREAM, f"no {features.WAVEFORM} samples", where)
    for feature in waveform:
        check_finite(np.asarray(feature.float_list.value, np.float32), where)


def rekey_record(serialized: bytes, rules: RekeyRules, where: str) -> bytes:
    """A DMVR record from elsewhere made a record of the task, or a MediaError with the same
    reasons as raw media: it must parse, hold its modality's media (frames; samples for
    audio), have finite samples with a known rate (the record's `audio/sample_rate`, else
    `default_sample_rate`, then written into it) and labels whose `clip/label/text` are all
    in the vocabulary. `clip/label/index` is rewritten from the texts (another tool's
    numbering never reaches training) and `task/name` set; everything else is kept. For an
    unlabelled task (`rules.labelled` off) the labels are removed instead of checked.
    `where` names the record in errors (`<file>#<n>`)."""
    try:
        example = SequenceExample.FromString(serialized)
    except DecodeError as e:
        raise MediaError(errors.BAD_RECORD, f"not a SequenceExample: {e}", where) from None
    _check_media(example, rules.modality, where)
    lists = example.feature_lists.feature_list
    if features.WAVEFORM in lists and not _context_int(example, features.SAMPLE_RATE):
        if not rules.default_sample_rate:
            raise MediaError(
                errors.NO_SAMPLE_RATE,
                f"no {features.SAMPLE_RATE}; set tasks.{rules.task}.data.sample_rate",
                where,
            )
        _set_ints(example, features.SAMPLE_RATE, [rules.default_sample_rate])
    _set_bytes(example, features.TASK, [rules.task.encode()])
    if not rules.labelled:
        for key in (features.LABEL_INDEX, features.LABEL_TEXT):
            if key in example.context.feature:
                del example.context.feature[key]
        return example.SerializeToString()
    texts = [b.decode("utf-8", "replace") for b in _context_bytes(example, features.LABEL_TEXT)]
    if not texts:
        raise MediaError(
            errors.UNKNOWN_LABEL, f"no {features.LABEL_TEXT}: labels are mapped by text", where
        )
    index = {label: i for i, label in enumerate(rules.vocabulary)}
    unknown = [t for t in texts if t not in index]
    if unknown:
        raise MediaError(errors.UNKNOWN_LABEL, f"labels {unknown} never occur in train", where)
    _set_ints(example, features.LABEL_INDEX, [index[t] for t in texts])
    return example.SerializeToString()


# --------------------------------------------------------------------------------------------
# Files: MediaExampleGen writes uncompressed (the default, what DMVR reads) or gzip records;
# DMVR's generator writes uncompressed ones, other tools gzip ones under any name. Readers
# look at each file's first bytes, never at its name.


def iter_tfrecord(path: str):
    """Serialized records of one TFRecord file, gzip or not."""
    import tensorflow as tf

    for record in tf.data.TFRecordDataset(path, compression_type=fs.record_compression(path)):
        yield record.numpy()


def read_records(pattern: str) -> list[ParsedClip]:
    """Every record of every file matching `pattern` (e.g. features.task_file_pattern(...))."""
    return [parse_sequence_example(r) for path in fs.glob(pattern) for r in iter_tfrecord(path)]
