"""Why an input was refused: typed errors with short reason codes, and the quarantine record.

Every refusal carries a reason code from `REASONS` so that counts per reason are meaningful and a
test can check that each kind of bad input is recognised as what it is.
"""

from __future__ import annotations

import dataclasses
import json

# Reason codes (stable strings: they appear in quarantine files, Beam metrics and artifact
# properties).
EMPTY_FILE = "empty_file"
MISSING_FILE = "missing_file"
NOT_MEDIA = "not_media"  # not a media file at all (e.g. text renamed .mp4)
CORRUPT_CONTAINER = "corrupt_container"  # looks like media but cannot be read (truncated, damaged)
NO_VIDEO_STREAM = "no_video_stream"
NO_AUDIO_STREAM = "no_audio_stream"
NO_FRAMES = "no_frames"  # a stream exists but nothing could be decoded from the wanted range
RESOLUTION_TOO_LARGE = "resolution_too_large"
PATH_ESCAPES_ROOT = "path_escapes_root"
BAD_TIME_RANGE = "bad_time_range"
UNKNOWN_LABEL = "unknown_label"
BAD_ROW = "bad_row"  # a CSV/list row that cannot be parsed
AMBIGUOUS_MEDIA = "ambiguous_media"  # a clip id matches several media files
NON_FINITE = "non_finite_values"  # NaN or infinite samples (float PCM, records from elsewhere)
BAD_RECORD = "bad_record"  # a TFRecord that is no SequenceExample (dmvr_records)
NO_SAMPLE_RATE = "no_sample_rate"  # a waveform whose rate neither the record nor the config says

REASONS = (
    EMPTY_FILE,
    MISSING_FILE,
    NOT_MEDIA,
    CORRUPT_CONTAINER,
    NO_VIDEO_STREAM,
    NO_AUDIO_STREAM,
    NO_FRAMES,
    RESOLUTION_TOO_LARGE,
    PATH_ESCAPES_ROOT,
    BAD_TIME_RANGE,
    UNKNOWN_LABEL,
    BAD_ROW,
    AMBIGUOUS_MEDIA,
    NON_FINITE,
    BAD_RECORD,
    NO_SAMPLE_RATE,
)


class MediaError(Exception):
    """An input that cannot become a clip; `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str, path: str = ""):
        if reason not in REASONS:
            raise ValueError(f"unknown quarantine reason {reason!r}")
        super().__init__(f"{path}: {reason}: {detail}" if path else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.path = path


@dataclasses.dataclass(frozen=True)
class QuarantineRecord:
    """One refused input, written as a JSON line to the quarantine output."""

    file: str
    task: str
    reason: str
    detail: str
    split: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> QuarantineRecord:
        return cls(**json.loads(line))

    @classmethod
    def from_error(cls, error: MediaError, task: str, file: str, split: str = ""):
        return cls(file=file, task=task, reason=error.reason, detail=error.detail, split=split)
