"""Motion gate: decides cheaply whether a frame needs the detector (pure numpy).

The frame is reduced to a small grey image (block means), compared with a slowly updated
background; when the changed area exceeds `min_area` (fraction of the picture), or every
`every_k`-th frame regardless, the frame goes to inference. On frames without motion the
previous detections still describe the scene (parked cars, a bag on the ground).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class MotionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Skip inference on frames where nothing moved.")
    threshold: float = Field(18.0, description="Grey-level change (0-255) that counts as motion.", gt=0, le=255)
    min_area: float = Field(0.002, description="Fraction of the picture that must change.", ge=0, le=1)
    every_k: int = Field(5, description="Run inference at least every K analysed frames.", ge=1, le=1000)
    block: int = Field(8, description="Down-sampling block size in pixels.", ge=1, le=64)
    learning_rate: float = Field(0.1, description="Background update rate per analysed frame.", gt=0, le=1)


class MotionGate:
    def __init__(self, config: MotionConfig | None = None) -> None:
        self.config = config or MotionConfig()
        self._background: np.ndarray | None = None
        self._since_inference = 0
        self.last_area = 0.0
        self.frames = 0
        self.skipped = 0

    def small_grey(self, image: np.ndarray) -> np.ndarray:
        b = self.config.block
        h, w = image.shape[0] // b * b, image.shape[1] // b * b
        # integer luma approximation, then block means: cheap and noise-reducing
        grey = image[:h, :w, 0].astype(np.float32) * 0.299
        grey += image[:h, :w, 1] * 0.587
        grey += image[:h, :w, 2] * 0.114
        return grey.reshape(h // b, b, w // b, b).mean(axis=(1, 3))

    def should_infer(self, image: np.ndarray) -> bool:
        """True when this frame must go to the detector; updates the background."""
        self.frames += 1
        small = self.small_grey(image)
        bg = self._background
        if bg is None or bg.shape != small.shape:  # first frame or resolution change
            self._background = small
            self._since_inference = 0
            self.last_area = 1.0
            return True
        changed = np.abs(small - bg) > self.config.threshold
        self.last_area = float(changed.mean())
        bg += self.config.learning_rate * (small - bg)
        self._since_inference += 1
        if (
            not self.config.enabled
            or self.last_area >= self.config.min_area
            or self._since_inference >= self.config.every_k
        ):
            self._since_inference = 0
            return True
        self.skipped += 1
        return False
