"""Fixtures for the ingestion tests; the media writers live in tests/support/media.py."""

import pytest

from tests.support.media import write_video


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory) -> str:
    """2 s, 64x48, 25 fps H.264 with 44.1 kHz stereo AAC."""
    return write_video(str(tmp_path_factory.mktemp("media") / "clip.mp4"))
