"""The record contract: DMVR's SequenceExample keys, the project's own keys, and file naming.

A video record always carries a waveform (silence, marked `audio/has_audio` = 0, when the
source has no audio track: see HAS_AUDIO); image records carry none.

Records written by MediaExampleGen and read by the input pipelines, Transform, TFMA and the
serving signatures all take their keys from here.
"""

import os

# DMVR's keys (read by scenic, VATT and other DMVR-based code).
IMAGE_ENCODED = "image/encoded"  # feature_lists: one JPEG per Feature (a still image: one frame)
WAVEFORM = "WAVEFORM/feature/floats"  # feature_lists: one Feature, the whole waveform in [-1, 1]
LABEL_INDEX = "clip/label/index"  # context int64 list (several for multi-label)
LABEL_TEXT = "clip/label/text"  # context bytes list
CAPTION = "caption/string"  # context bytes, when a caption exists
FILENAME = "video/filename"  # context bytes: the source file
START_US = "clip/start/timestamp"  # context int64, microseconds
END_US = "clip/end/timestamp"  # context int64, microseconds

# The project's own context keys (DMVR ignores them).
TASK = "task/name"  # bytes: the task (dataset) the clip belongs to
FRAME_RATE = "video/frame_rate"  # float: frames per second of image/encoded
SAMPLE_RATE = "audio/sample_rate"  # int64: samples per second of the waveform
# int64, on every record with a waveform: 1 when it is the source's audio, 0 when the source
# has no audio track and the waveform is silence of the clip's length. A video without audio
# still gets a waveform because DMVR's audio-visual readers take the first Feature of
# WAVEFORM/feature/floats and fail on a record without one ("slice index 0 of dimension 0");
# silence keeps such a record readable, and this mark lets a model mask the audio out (as
# VATT-style audio-visual training does) instead of learning from the stand-in.
HAS_AUDIO = "audio/has_audio"
# int64, on every video record: 1 when `caption/string` holds the clip's caption candidates
# (one bytes value each), 0 when the source gave none. A video without a caption still gets
# one empty `caption/string` so DMVR's text readers (which tokenize the first candidate) parse
# it; this mark lets the video-text loss mask the clip out, as HAS_AUDIO does for audio.
HAS_CAPTION = "caption/has_caption"
# In a CSV caption cell, candidates for one clip are separated by this (VATT's MIL-NCE takes
# several narrations per clip); a cell without it is one caption.
CAPTION_SEPARATOR = "|"


def caption_candidates(cell: str) -> tuple[str, ...]:
    """The non-empty, stripped caption candidates of a CSV caption cell, in order."""
    return tuple(c.strip() for c in cell.split(CAPTION_SEPARATOR) if c.strip())


TRAIN, EVAL = "train", "eval"
SPLITS = (TRAIN, EVAL)

# Record files: `<task>-SSSSS-of-NNNNN<suffix>`, the suffix by `ingestion.compression`. TFX's
# readers (tfx_bsl, Beam's ReadFromTFRecord) choose gzip by the `.gz` suffix alone, so gzip
# files must end in `.gz` and uncompressed ones must not; the project's own readers look at the
# files' first bytes instead (media.fs.record_compression), so a gzip file named otherwise
# (DMVR record sets) reads too.
RECORD_SUFFIXES = {"none": ".tfrecord", "gzip": ".gz"}
_SHARD = "-?????-of-?????"


def split_dir(examples_uri: str, split: str) -> str:
    """TFX's layout of an Examples artifact: one folder per split."""
    return os.path.join(examples_uri, f"Split-{split}")


def record_suffix(compression: str) -> str:
    """The file suffix of records written with `compression` ("none" or "gzip")."""
    if compression not in RECORD_SUFFIXES:
        raise ValueError(f"compression: {compression!r} is not one of {list(RECORD_SUFFIXES)}")
    return RECORD_SUFFIXES[compression]


def task_file_pattern(examples_uri: str, split: str, task: str) -> str:
    """Records of one task in one split, either compression:
    `Split-<split>/<task>-SSSSS-of-NNNNN.tfrecord` or `....gz`. The shard part keeps task
    `a` from matching the files of task `a-b`."""
    return os.path.join(split_dir(examples_uri, split), f"{task}{_SHARD}*")


def vocabulary_path(examples_uri: str, task: str) -> str:
    """Label vocabulary of a task, one label per line in index order (sorted, deterministic)."""
    return os.path.join(examples_uri, "labels", f"{task}.txt")
