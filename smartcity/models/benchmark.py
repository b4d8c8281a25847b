"""Throughput measurement of a Detector, shared by bench/infer.py and anyone sizing inference."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from smartcity.models.base import Detector

if TYPE_CHECKING:
    from smartcity.models.darknet_detector import DarknetDetector


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


def cpu_detectors(model_dir: Path | None = None) -> dict[str, DarknetDetector]:
    """The default model on each CPU engine `runtime: auto` chooses between, one thread each:
    torch float32, torch bfloat16 and onnxruntime float32."""
    from smartcity.models.config import DarknetDetectorConfig
    from smartcity.models.darknet_detector import DarknetDetector

    configs = {
        "torch": DarknetDetectorConfig(device="cpu", runtime="torch", bf16=False, num_threads=1, classes=None),
        "torch_bf16": DarknetDetectorConfig(device="cpu", runtime="torch", bf16=True, num_threads=1, classes=None),
        "onnxruntime": DarknetDetectorConfig(device="cpu", runtime="onnxruntime", num_threads=1, classes=None),
    }
    return {name: DarknetDetector(c, model_dir=model_dir) for name, c in configs.items()}
