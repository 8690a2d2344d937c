"""Per-file decode cache: a file decoded once is not decoded again by a later run.

The key is the file's content (SHA-256 of its bytes), the modality, the stretch decoded and
the ingestion settings that decide the decoded clips (fps, sizes, JPEG quality, ...), so a
moved or renamed file is still a hit, an edited file or an edited setting a miss. Entries are
pickled lists of `media.decode.DecodedClip`, one file each, written to a temporary name and
then renamed, so a crashed worker never leaves a half entry. A file that fails to decode is not
cached (it is decoded, and quarantined, again).

MediaExampleGen keeps the cache under `<pipeline_root>/decode_cache` (`ingestion.decode_cache`)
across runs: after files were added to a span, only the new or changed ones are decoded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import uuid

from core.config import Ingestion
from media import fs

# The ingestion settings that change what decoding produces (not splits, thresholds, spans or
# the records' compression).
DECODE_SETTINGS = (
    "fps",
    "short_side",
    "clip_seconds",
    "sample_rate",
    "jpeg_quality",
    "max_resolution",
    "skip_nonref_frames",
)
# Bump when DecodedClip's layout or the decoder's output changes (2: reproducible JPEGs of odd
# widths; entries of 1 hold edge blocks that varied from run to run).
_FORMAT = 2


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with fs.open_binary(path) as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(
    content_digest: str,
    modality: str,
    ingestion: Ingestion,
    start_s: float | None,
    end_s: float | None,
) -> str:
    """Pure: the entry's name for one file's content decoded with these settings."""
    settings = dataclasses.asdict(ingestion)
    fields = {name: settings[name] for name in DECODE_SETTINGS}
    text = json.dumps([_FORMAT, content_digest, modality, start_s, end_s, fields], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class DecodeCache:
    """Entries under one folder (local or a bucket), `<key[:2]>/<key>.pkl`."""

    def __init__(self, folder: str):
        self.folder = folder

    def _path(self, key: str) -> str:
        return fs.join(self.folder, key[:2], f"{key}.pkl")

    def get(self, key: str) -> list | None:
        path = self._path(key)
        if not fs.isfile(path):
            return None
        try:
            with fs.open_binary(path) as f:
                return pickle.load(f)
        except Exception:  # noqa: BLE001 - an unreadable entry is a miss, rewritten after decoding
            return None

    def put(self, key: str, clips: list) -> None:
        path = self._path(key)
        fs.makedirs(fs.join(self.folder, key[:2]))
        temporary = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        with fs.open_binary(temporary, "wb") as f:
            pickle.dump(clips, f, protocol=pickle.HIGHEST_PROTOCOL)
        _rename(temporary, path)


def _rename(source: str, target: str) -> None:
    if fs.is_remote(source):
        import tensorflow as tf

        tf.io.gfile.rename(source, target, overwrite=True)
    else:
        os.replace(source, target)


def cached_clips(
    cache: DecodeCache | None,
    decode_fn,
    path: str,
    modality: str,
    ingestion: Ingestion,
    start_s: float | None,
    end_s: float | None,
):
    """(clips, reused): the file's clips from the cache, else `decode_fn(...)`'s (the media
    decoder's `iter_clips` signature) as they come, stored once the whole file decoded. A
    decode error propagates after the good clips before it, as without a cache."""
    if cache is None:
        return decode_fn(path, modality, ingestion, start_s, end_s), False
    key = cache_key(file_digest(path), modality, ingestion, start_s, end_s)
    found = cache.get(key)
    if found is not None:
        return iter(found), True
    return _decode_and_store(
        cache, key, decode_fn(path, modality, ingestion, start_s, end_s)
    ), False


def _decode_and_store(cache: DecodeCache, key: str, clips):
    decoded = []
    for clip in clips:
        decoded.append(clip)
        yield clip
    cache.put(key, decoded)
