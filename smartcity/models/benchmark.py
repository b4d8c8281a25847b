"""Throughput measurement of a Detector, shared by bench/infer.py and anyone sizing inference."""

from __future__ import annotations

import time

import numpy as np

from smartcity.models.base import Detector


def synthetic_frames(batch: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random RGB frames (noise low-passed by block upscaling), reproducible by seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(batch, height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    full = coarse.repeat(16, axis=1).repeat(16, axis=2)[:, :height, :width]
    return [np.ascontiguousarray(f) for f in full]


def measure_infer_fps(
    detector: Detector,
    batch: int,
    seconds: float,
    *,
    frames: list[np.ndarray] | None = None,
    warmup: int = 2,
) -> float:
    """Frames per second of `detector.detect` on batches of `batch` frames, over about `seconds`.

    Frames default to synthetic images of the detector's input size (letterbox is then a copy).
    At least two timed batches run, whatever `seconds` says.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if frames is None:
        frames = synthetic_frames(batch, *detector.input_size)
    if len(frames) != batch:
        raise ValueError(f"got {len(frames)} frames for batch {batch}")
    for _ in range(warmup):
        detector.detect(frames)
    runs = 0
    start = time.perf_counter()
    while True:
        detector.detect(frames)
        runs += 1
        elapsed = time.perf_counter() - start
        if runs >= 2 and elapsed >= seconds:
            return runs * batch / elapsed
