"""Motion gate: decides cheaply, per analysed frame, how much work the frame needs (pure numpy).

The frame is reduced to a small grey image (one sample per block), compared with a slowly
updated background (has anything moved?) and with the previous analysed frame (where?), and
each frame gets one of three decisions:

* `INFER` - the detector runs: on the first frame, when blocks changed since the previous frame
  outside the areas swept by the camera's established tracks cover at least `min_area` of the
  picture (something new moved), at least every `every_k` frames, and after `track_max`
  frames of `TRACK`;
* `TRACK` (opt-in, `track_max` > 0) - everything that moved lies inside the predicted boxes of
  confirmed tracks that were detected on their last frame: the tracker's Kalman filter predicts
  them to this frame and the detector is not run (what DeepStream calls an inference interval,
  here only while the motion is already explained). On vtest.avi, where many walkers are never
  confirmed tracks, it saves nothing (bench/gating.py); on a road with few, well-detected
  vehicles it spares most frames;
* `REUSE` - nothing moved: the previous detections still describe the scene (a parked car,
  a bag on the ground).

A newcomer (a changed area no track explains) always sends its frame to the detector, so the
gate delays nothing new; what it saves is the re-detection of objects already tracked.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field


class MotionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Skip inference on frames where nothing new moved.")
    threshold: float = Field(18.0, description="Grey-level change (0-255) that counts as motion.", gt=0, le=255)
    min_area: float = Field(
        0.002, description="Fraction of the picture that must change (outside tracked objects) to run the detector.", ge=0, le=1
    )
    every_k: int = Field(5, description="Run inference at least every K analysed frames.", ge=1, le=1000)
    track_max: int = Field(
        0,
        description="When all motion lies inside tracked objects, at most this many consecutive frames are "
        "analysed by the tracker's prediction alone before the detector runs again. 0 (default): the detector "
        "runs on every frame with motion. Measure the effect on your own footage with bench/gating.py.",
        ge=0,
        le=30,
    )
    track_margin: float = Field(
        0.25, description="Predicted boxes are widened by this fraction of their size when they explain motion.", ge=0, le=2
    )
    block: int = Field(8, description="Down-sampling block size in pixels.", ge=1, le=64)
    learning_rate: float = Field(0.1, description="Background update rate per analysed frame.", gt=0, le=1)


class GateDecision(StrEnum):
    INFER = "infer"
    TRACK = "track"
    REUSE = "reuse"


class MotionGate:
    def __init__(self, config: MotionConfig | None = None) -> None:
        self.config = config or MotionConfig()
        self._background: np.ndarray | None = None
        self._previous: np.ndarray | None = None
        self._since_inference = 0
        self._tracked_run = 0
        self.last_area = 0.0  # changed fraction of the picture
        self.last_unexplained = 0.0  # changed fraction outside the tracked boxes
        self.frames = 0
        self.skipped = 0  # REUSE decisions
        self.tracked = 0  # TRACK decisions

    def small_grey(self, image: np.ndarray) -> np.ndarray:
        # Luma of a 2x2 average at the centre of each block: 1/16 of the pixels of a full
        # block mean (which cost a quarter of the camera actor's time on 768x576) with most
        # of its noise rejection.
        b = self.config.block
        o = b // 2 if b > 1 else 0
        step = max(b, 1)
        sub = image[o::step, o::step].astype(np.float32)
        if b > 1:
            sub += image[o - 1 :: step, o - 1 :: step][: sub.shape[0], : sub.shape[1]]
            sub *= 0.5
        return sub @ np.array([0.299, 0.587, 0.114], dtype=np.float32)

    def _explained(self, shape: tuple[int, ...], boxes: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """Blocks whose sample point lies inside a widened box, on the small grid of `shape`."""
        b = self.config.block
        o = b // 2 if b > 1 else 0
        rows, cols = shape[0], shape[1]
        mask = np.zeros((rows, cols), dtype=bool)
        m = self.config.track_margin
        for x1, y1, x2, y2 in boxes.tolist():
            dx, dy = (x2 - x1) * m, (y2 - y1) * m
            c0 = max(0, math.ceil((x1 - dx - o) / b))
            c1 = min(cols - 1, math.floor((x2 + dx - o) / b))
            r0 = max(0, math.ceil((y1 - dy - o) / b))
            r1 = min(rows - 1, math.floor((y2 + dy - o) / b))
            if c0 <= c1 and r0 <= r1:
                mask[r0 : r1 + 1, c0 : c1 + 1] = True
        return mask

    def decide(self, image: np.ndarray, tracked_boxes: npt.NDArray[np.float64] | None = None) -> GateDecision:
        """The work this frame needs; updates the background.

        `tracked_boxes` (N, 4 pixel x1, y1, x2, y2): the areas the camera's established tracks
        swept from their last position to the one predicted on this frame. Without them the
        gate only chooses between INFER and REUSE.
        """
        cfg = self.config
        self.frames += 1
        small = self.small_grey(image)
        bg = self._background
        previous, self._previous = self._previous, small
        if bg is None or previous is None or bg.shape != small.shape:  # first frame or resolution change
            self._background = small.copy()
            self._since_inference = 0
            self._tracked_run = 0
            self.last_area = self.last_unexplained = 1.0
            return GateDecision.INFER
        changed = np.abs(small - bg) > cfg.threshold
        self.last_area = float(changed.mean())
        bg += cfg.learning_rate * (small - bg)
        self._since_inference += 1
        if not cfg.enabled or self._since_inference >= cfg.every_k:
            return self._infer()
        if self.last_area < cfg.min_area:
            self.last_unexplained = self.last_area
            self.skipped += 1
            return GateDecision.REUSE
        if tracked_boxes is None or len(tracked_boxes) == 0 or self._tracked_run >= cfg.track_max:
            self.last_unexplained = self.last_area
            return self._infer()
        # the background keeps the ghost of where a walker was seconds ago; what moved since the
        # previous frame lies within the area each track swept meanwhile
        moved = np.abs(small - previous) > cfg.threshold
        unexplained = moved & ~self._explained(moved.shape, tracked_boxes)
        self.last_unexplained = float(unexplained.mean())
        if self.last_unexplained >= cfg.min_area:
            return self._infer()
        self._tracked_run += 1
        self.tracked += 1
        return GateDecision.TRACK

    def _infer(self) -> GateDecision:
        self._since_inference = 0
        self._tracked_run = 0
        return GateDecision.INFER

    def should_infer(self, image: np.ndarray) -> bool:
        """True when this frame must go to the detector (no track information)."""
        return self.decide(image) is GateDecision.INFER
