"""Models defined by tests and registered through the public registry.

`box_pose` is the example of adding a model: this one block (config model, model class,
`register_model`) plus its config entry `{role: pose, type: box_pose}` is all it takes. It
puts five keypoints on the box geometry (head, shoulders, feet) and remembers which frames it
saw, so tests can tell the cameras it ran for.

`bright_box` is a detector test double: the bright pixels of a frame, boxed as one person.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from smartcity.core.vision import Box, Detection, Keypoint, Keypoints
from smartcity.models.registry import register_model
from smartcity.models.roles import Image, ModelRole


class BoxPoseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["box_pose"] = "box_pose"
    score: float = Field(0.9, description="Score given to every keypoint.", ge=0, le=1)


@register_model("box_pose", roles=[ModelRole.POSE], config=BoxPoseConfig)
class BoxPose:
    """Head at the top centre, shoulders a fifth of the way down, feet at the bottom corners."""

    def __init__(self, config: BoxPoseConfig) -> None:
        self.config = config
        self.frames_seen: list[int] = []  # pixel (0, 0) of each frame: the tests mark the camera there
        self.batch_sizes: list[int] = []

    def pose(self, frames: Sequence[Image], boxes: Sequence[Sequence[Box]]) -> list[list[Keypoints]]:
        self.batch_sizes.append(len(frames))
        self.frames_seen.extend(int(f[0, 0, 0]) for f in frames)
        return [[self.keypoints(b) for b in frame_boxes] for frame_boxes in boxes]

    def keypoints(self, box: Box) -> Keypoints:
        x1, y1, x2, y2 = box
        s, cx, shoulder = self.config.score, (x1 + x2) / 2, y1 + (y2 - y1) / 5
        return (
            Keypoint(cx, y1, s),
            Keypoint(x1, shoulder, s),
            Keypoint(x2, shoulder, s),
            Keypoint(x1, y2, s),
            Keypoint(x2, y2, s),
        )


class BrightBoxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["bright_box"] = "bright_box"
    threshold: int = Field(128, ge=0, le=255)


@register_model("bright_box", roles=[ModelRole.DETECT], config=BrightBoxConfig)
class BrightBox:
    def __init__(self, config: BrightBoxConfig) -> None:
        self.config = config

    @property
    def names(self) -> list[str]:
        return ["person"]

    @property
    def input_size(self) -> tuple[int, int]:
        return (0, 0)

    @property
    def device(self) -> str:
        return "cpu"

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        out: list[list[Detection]] = []
        for f in frames:
            ys, xs = np.nonzero(f[:, :, 1] >= self.config.threshold)
            box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)) if xs.size else None
            out.append([] if box is None else [Detection(box, "person", 0.9)])
        return out
