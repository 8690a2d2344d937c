"""The per-file decode cache: a re-run after files were added decodes only the new or changed
files, and says how many it reused; a decode setting edit misses."""

from __future__ import annotations

import dataclasses

import pytest

from components.media_example_gen import beam_ingest, decode_cache, executor
from core.config import DataSource, IngestConfig, Ingestion, TaskData
from media import decode
from tests.support.media import write_png

ING = Ingestion(fps=8, short_side=16, clip_seconds=1.0, eval_fraction=0.0)
IN_PROCESS = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]


def config(ingestion: Ingestion = ING) -> IngestConfig:
    task = TaskData(name="shapes", modality="image", data=DataSource(root="shapes"))
    return IngestConfig(tasks=[task], ingestion=ingestion)


def png(root, name: str, value: int) -> None:
    write_png(f"{root}/shapes/{name}.png", width=24, height=20, value=value)


def run(tmp_path, run_name: str, cache_dir: str, ingestion: Ingestion = ING):
    return beam_ingest.ingest(
        config(ingestion),
        str(tmp_path / run_name / "out"),
        str(tmp_path / run_name / "q"),
        IN_PROCESS,
        data_root=str(tmp_path / "data"),
        progress=False,
        cache_dir=cache_dir,
    )


def test_a_rerun_decodes_only_new_and_changed_files(tmp_path, monkeypatch):
    data, cache = tmp_path / "data", str(tmp_path / "cache")
    for i, label in enumerate(["a", "a", "b", "b"]):
        png(data, f"{label}/{i}", 40 * i)
    decoded: list[str] = []
    real = decode.iter_clips

    def counting(path, *args, **kwargs):
        decoded.append(path.rsplit("/", 1)[-1])
        return real(path, *args, **kwargs)

    monkeypatch.setattr(decode, "iter_clips", counting)
    first = run(tmp_path, "r1", cache)
    assert (first.reused, first.clips_written, len(decoded)) == (0, 4, 4)

    decoded.clear()
    png(data, "a/new", 200)
    png(data, "b/3", 250)  # changed content
    second = run(tmp_path, "r2", cache)
    assert sorted(decoded) == ["3.png", "new.png"]
    assert (second.reused, second.clips_written) == (3, 5)
    assert "3 files reused from the decode cache" in second.describe()

    decoded.clear()
    third = run(tmp_path, "r3", cache, dataclasses.replace(ING, jpeg_quality=50))
    assert (third.reused, len(decoded)) == (0, 5)  # a decode setting: every file again

    decoded.clear()
    off = run(tmp_path, "r4", "")
    assert (off.reused, len(decoded)) == (0, 5)


def test_the_key_follows_content_and_decode_settings_only():
    key = decode_cache.cache_key("abc", "image", ING, None, None)
    assert key == decode_cache.cache_key("abc", "image", ING, None, None)
    assert key != decode_cache.cache_key("abd", "image", ING, None, None)
    assert key != decode_cache.cache_key("abc", "image", ING, 0.0, 1.0)
    assert key != decode_cache.cache_key(
        "abc", "image", dataclasses.replace(ING, fps=4), None, None
    )
    for unrelated in ({"eval_fraction": 0.5}, {"max_bad_fraction": 0.5}, {"span": 3}):
        assert key == decode_cache.cache_key(
            "abc", "image", dataclasses.replace(ING, **unrelated), None, None
        )


def test_a_file_that_fails_midway_is_not_cached(tmp_path):
    cache = decode_cache.DecodeCache(str(tmp_path / "c"))
    target = tmp_path / "f.bin"
    target.write_bytes(b"x")

    def failing(*args):
        yield "clip-1"
        raise ValueError("broken")

    clips, reused = decode_cache.cached_clips(cache, failing, str(target), "image", ING, None, None)
    with pytest.raises(ValueError):
        list(clips)
    assert not reused
    again, reused = decode_cache.cached_clips(cache, failing, str(target), "image", ING, None, None)
    assert not reused


@pytest.mark.parametrize(
    "setting, expected",
    [("", "gs://bucket/pipeline/decode_cache"), ("off", ""), ("cache/c", "cache/c")],
)
def test_cache_folder_defaults_to_the_pipeline_root(setting, expected):
    uri = "gs://bucket/pipeline/MediaExampleGen/examples/7"
    assert executor.decode_cache_dir(setting, uri) == expected
