"""File access for local paths and buckets (gs://, s3://, ...), behind one small interface.

Local paths use the os module (and FFmpeg's own fast file I/O when decoding); anything with a
URL scheme goes through tf.io.gfile, imported only when such a path is seen.
"""

from __future__ import annotations

import os
import posixpath


def is_remote(path: str) -> bool:
    return "://" in path


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def join(base: str, *parts: str) -> str:
    return posixpath.join(base, *parts) if is_remote(base) else os.path.join(base, *parts)


def normalize(path: str) -> str:
    """Collapses `..` and `.` so that escaping the data root is visible in the string."""
    if is_remote(path):
        scheme, rest = path.split("://", 1)
        return f"{scheme}://{posixpath.normpath(rest)}"
    return os.path.normpath(os.path.abspath(path))


def is_within(path: str, root: str) -> bool:
    path, root = normalize(path), normalize(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def relative(path: str, root: str) -> str:
    path, root = normalize(path), normalize(root)
    return path[len(root.rstrip("/")) + 1 :] if is_within(path, root) and path != root else path


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
    return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
    return exists(path) and not isdir(path)


def size(path: str) -> int:
    return _gfile().stat(path).length if is_remote(path) else os.path.getsize(path)


def listdir(path: str) -> list[str]:
    """Sorted entry names (no trailing slashes), hidden entries excluded."""
    names = _gfile().listdir(path) if is_remote(path) else os.listdir(path)
    return sorted(n.rstrip("/") for n in names if not n.startswith("."))


def walk_files(root: str) -> list[str]:
    """Every non-hidden file below `root`, as sorted full paths."""
    found = []
    if is_remote(root):
        for dirpath, _, files in _gfile().walk(root):
            found += [join(dirpath, f) for f in files if not f.startswith(".")]
    else:
        for dirpath, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            found += [os.path.join(dirpath, f) for f in files if not f.startswith(".")]
    return sorted(found)


def open_binary(path: str, mode: str = "rb"):
    return _gfile().GFile(path, mode) if is_remote(path) else open(path, mode)


def read_text(path: str) -> str:
    with open_binary(path) as f:
        data = f.read()
    return data.decode("utf-8-sig") if isinstance(data, bytes) else data


def write_text(path: str, text: str) -> None:
    makedirs(posixpath.dirname(path) if is_remote(path) else os.path.dirname(path))
    with open_binary(path, "wb") as f:
        f.write(text.encode("utf-8"))


def makedirs(path: str) -> None:
    if not path:
        return
    if is_remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def glob(pattern: str) -> list[str]:
    if is_remote(pattern):
        return sorted(_gfile().glob(pattern))
    import glob as glob_lib

    return sorted(glob_lib.glob(pattern))


def remove_tree(path: str) -> None:
    if is_remote(path):
        if _gfile().exists(path):
            _gfile().rmtree(path)
    else:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def head(path: str, n: int) -> bytes:
    with open_binary(path) as f:
        return f.read(n)


_GZIP_MAGIC = b"\x1f\x8b"


def record_compression(path: str) -> str:
    """TensorFlow's compression type of one TFRecord file, "GZIP" or "", from its first bytes
    (never its name: DMVR record sets and other tools name files freely). An empty file reads
    as uncompressed: no records."""
    return "GZIP" if head(path, 2) == _GZIP_MAGIC else ""


def open_for_decoder(path: str):
    """What PyAV and PIL should open: the path itself locally, a file object for a bucket."""
    return _gfile().GFile(path, "rb") if is_remote(path) else path
