"""The inference actor runs its largest batch (twice) at start, so that its memory is full-sized from
then on (smartcity.actors.inference.warm_up; found by bench/soak.py)."""

from __future__ import annotations

from collections.abc import Sequence

import example_models  # noqa: F401  (registers bright_box)
import numpy as np
import pytest

from smartcity.actors.inference import Inference, warm_up
from smartcity.core.vision import Detection
from smartcity.models.config import NanoDetDetectorConfig
from smartcity.models.install import default_model_dir
from smartcity.models.install_nanodet import installed_nanodet
from smartcity.models.nanodet import NanoDetDetector


class Recording:
    """A detector double of a fixed input size that records the batches it ran."""

    names = ["person"]
    device = "cpu"

    def __init__(self, input_size: tuple[int, int]) -> None:
        self.input_size = input_size
        self.batches: list[tuple[int, tuple[int, ...]]] = []

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        self.batches.append((len(frames), frames[0].shape))
        return [[] for _ in frames]


def test_warm_up_runs_a_full_batch_of_the_input_size_twice() -> None:
    det = Recording((416, 320))
    assert warm_up(det, 8)
    assert det.batches == [(8, (416, 320, 3))] * 2
    anysize = Recording((0, 0))  # a detector that takes any size: nothing to size
    assert not warm_up(anysize, 8)
    assert anysize.batches == []


async def test_an_inference_actor_with_an_any_size_detector_starts_and_detects() -> None:
    inference = Inference({"detector": {"type": "bright_box"}, "max_batch": 4})
    try:
        frame = np.zeros((40, 60, 3), np.uint8)
        frame[10:20, 5:15] = 255
        (det,) = await inference.detect(frame)
        assert det.box == (5.0, 10.0, 15.0, 20.0)
    finally:
        await inference.close()


def _rss_anon_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status")


def test_after_the_warm_up_a_full_batch_adds_no_memory() -> None:
    found = installed_nanodet(default_model_dir())
    if found is None:
        pytest.skip("NanoDet-g is not installed: run `smartcity models install --model nanodet-g`")
    det = NanoDetDetector(NanoDetDetectorConfig(model=found, device="cpu", runtime="onnxruntime"))
    assert warm_up(det, 8)
    frames = [np.full((312, 416, 3), 90, np.uint8)] * 8
    det.detect(frames[:1])
    before = _rss_anon_mib()
    det.detect(frames)
    # without the warm-up onnxruntime's memory grows here by ~80 MiB (and keeps it); after one
    # run only, by ~78 MiB
    assert _rss_anon_mib() - before < 20
