"""The VATT demo data: the soundtrack follows the digit and its motion, captions name digit,
direction and speed, the retrieval eval set has one right caption per query, some pretraining
clips lack a soundtrack or a caption (the masks' cases), and the labelled set is small."""

from __future__ import annotations

import csv

import av
import numpy as np

from demo import cli as demo_cli
from demo import vatt_data, video
from pipeline import cli

RATE = 16000


def _motion(direction: str, speed: float = 1.0) -> video.Motion:
    return video.Motion(direction=direction, start=(10.0, 10.0), speed=speed, num_frames=32)


def _pitch_track(wave: np.ndarray, window: int = 256) -> np.ndarray:
    """Dominant frequency (Hz) of each loud window; quiet windows (between notes) left out."""
    frames = wave[: len(wave) // window * window].reshape(-1, window)
    loud = frames[np.abs(frames).max(axis=1) > 0.2]
    spectrum = np.abs(np.fft.rfft(loud * np.hanning(window), axis=1))
    return spectrum.argmax(axis=1) * RATE / window


def _first_note(wave: np.ndarray) -> np.ndarray:
    """Pitch track of the first note: the first run of loud windows."""
    window = 256
    frames = wave[: len(wave) // window * window].reshape(-1, window)
    loud = np.abs(frames).max(axis=1) > 0.2
    begin = int(np.argmax(loud))
    end = begin + int(np.argmax(~loud[begin:])) if not loud[begin:].all() else len(loud)
    return _pitch_track(frames[begin:end].ravel(), window)


def test_the_pitch_follows_the_motion_and_the_digit():
    rng = np.random.default_rng(0)
    up = _first_note(vatt_data.soundtrack(3, _motion("up"), 16, RATE, rng))
    down = _first_note(vatt_data.soundtrack(3, _motion("down"), 16, RATE, rng))
    left = _first_note(vatt_data.soundtrack(3, _motion("left"), 16, RATE, rng))
    assert up[-1] > 1.5 * up[0]  # rises while the digit moves up
    assert down[0] > 1.5 * down[-1]  # falls while it moves down
    assert left.max() < 1.1 * left.min()  # level when it moves sideways
    low = np.median(_pitch_track(vatt_data.soundtrack(0, _motion("left"), 16, RATE, rng)))
    high = np.median(_pitch_track(vatt_data.soundtrack(9, _motion("left"), 16, RATE, rng)))
    assert high > 1.8 * low  # a higher digit sounds higher


def _onsets(wave: np.ndarray, window: int = 128) -> int:
    """Notes: loud windows after a quiet one."""
    frames = wave[: len(wave) // window * window].reshape(-1, window)
    loud = np.abs(frames).max(axis=1) > 0.2
    return int(np.sum(loud[1:] & ~loud[:-1]) + loud[0])


def test_faster_motion_gives_more_notes_and_right_doubles_them():
    rng = np.random.default_rng(1)
    slow = vatt_data.soundtrack(5, _motion("left", 0.7), 16, RATE, rng)
    fast = vatt_data.soundtrack(5, _motion("left", 2.0), 16, RATE, rng)
    assert _onsets(fast) > 2 * _onsets(slow) > 0
    right = vatt_data.soundtrack(5, _motion("right", 0.7), 16, RATE, rng)
    assert _onsets(right) >= 2 * _onsets(slow) - 1


def _rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_demo_sets_captions_and_gaps(tmp_path):
    counts = vatt_data.generate(
        str(tmp_path), pretrain_clips=10, eval_clips=6, labelled_per_class=1, eval_per_class=1
    )
    assert counts == {"pretrain.csv": 10, "pretrain_eval.csv": 6, "few.csv": 4, "few_eval.csv": 4}
    root = tmp_path / "vatt"
    rows = _rows(root / "pretrain.csv")
    assert "label" not in rows[0]  # the pretraining set is unlabelled
    for row in rows:
        if row["caption"]:
            first, second = row["caption"].split(" | ")
            direction = first.split(" moves ")[1].split()[0]
            assert first.startswith("the digit ") and direction in vatt_data.DIRECTIONS
            assert second.endswith(f"going {direction}")
    assert [i for i, row in enumerate(rows) if not row["caption"]] == [4, 9]
    silent = []
    for i, row in enumerate(rows):
        with av.open(str(root / row["video_path"])) as container:
            assert float(container.duration / av.time_base) >= vatt_data.CLIP_SECONDS - 0.1
            if not container.streams.audio:
                silent.append(i)
    assert silent == [6]
    captions = [row["caption"] for row in _rows(root / "pretrain_eval.csv") if row["caption"]]
    assert len(set(captions)) == len(captions)  # one right caption per retrieval query
    few = _rows(root / "few.csv")
    assert sorted(row["label"] for row in few) == sorted(vatt_data.DIRECTIONS)


def test_make_demo_data_vatt_small(tmp_path, capsys):
    assert cli.main(["make-demo-data", str(tmp_path), "--vatt", "--scale", "small"]) == 0
    counts = {name: len(_rows(tmp_path / "vatt" / name)) for name in vatt_data.CSVS}
    assert counts == {
        "pretrain.csv": demo_cli._VATT_SMALL["pretrain_clips"],
        "pretrain_eval.csv": demo_cli._VATT_SMALL["eval_clips"],
        "few.csv": 4 * demo_cli._VATT_SMALL["labelled_per_class"],
        "few_eval.csv": 4 * demo_cli._VATT_SMALL["eval_per_class"],
    }
    assert "vatt/pretrain.csv" in capsys.readouterr().out
