"""A pose model that finds people itself (`PersonFinder`, as movenet's frame-wide pass does) adds
the people the detector missed to the frame: on a camera whose rules need pose, a person lying
on the floor that the detector does not see still becomes a track with keypoints and a
`person_down` alert; on a camera without such a rule the pose model never runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from example_models import BrightBox
from pydantic import BaseModel, ConfigDict
from testkit import run_pipeline_until

from smartcity.actors.inference import Inference
from smartcity.actors.motion import MotionConfig
from smartcity.actors.pipeline import CameraPipeline, SecondStage
from smartcity.analytics import validate_rule
from smartcity.core.events import Event, RuleEvent
from smartcity.core.vision import Box, Detection, Keypoint, Keypoints
from smartcity.models.registry import MODELS, register_model
from smartcity.models.roles import Image, ModelRole, PersonFinder, PoseFound
from smartcity.sources.types import Frame

W, H = 320, 240
LYING = (60, 190, 260, 230)  # a dim (grey 60) wide block on the floor: under bright_box's threshold


class DimFinderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["dim_finder"] = "dim_finder"


class DimFinder:
    """Finds the pixels between 30 and 100 as one person lying (torso horizontal, legs too)."""

    def __init__(self, config: DimFinderConfig) -> None:
        self.config = config
        self.frames = 0

    def pose(self, frames: Sequence[Image], boxes: Sequence[Sequence[Box]]) -> list[list[Keypoints]]:
        return [[() for _ in b] for b in boxes]

    def pose_and_find(
        self,
        frames: Sequence[Image],
        boxes: Sequence[Sequence[Box]],
        scores: Sequence[Sequence[float]] | None = None,
    ) -> list[PoseFound]:
        out = []
        for frame, frame_boxes in zip(frames, boxes):
            self.frames += 1
            ys, xs = np.nonzero((frame[:, :, 1] > 30) & (frame[:, :, 1] < 100))
            people: tuple[Detection, ...] = ()
            if len(xs):
                x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
                kp = [Keypoint(0.0, 0.0, 0.0)] * 17
                ym = (y1 + y2) / 2
                for i, x in (
                    (5, x1 + 20),
                    (6, x1 + 20),
                    (11, x1 + 90),
                    (12, x1 + 90),
                    (15, x2 - 5),
                    (16, x2 - 5),
                ):
                    kp[i] = Keypoint(x, ym, 0.9)
                people = (Detection((x1, y1, x2, y2), "person", 0.5, tuple(kp)),)
            out.append(PoseFound(tuple(() for _ in frame_boxes), people))
        return out


class Scene:
    """5 fps of a dark room with the dim lying block; never ending."""

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self.i = 0

    def take_for_analysis(self) -> Frame | None:
        image = np.zeros((H, W, 3), dtype=np.uint8)
        x1, y1, x2, y2 = LYING
        image[y1:y2, x1:x2] = 60
        image[0, 0, :] = self.i % 2  # a changing pixel: every frame differs
        frame = Frame(self.camera, self.i, 100.0 + self.i * 0.2, image, W, H)
        self.i += 1
        return frame


async def test_people_the_detector_missed_reach_the_rules_of_pose_cameras_only() -> None:
    register_model("dim_finder", roles=[ModelRole.POSE], config=DimFinderConfig)(DimFinder)
    inference = Inference(
        {
            "max_wait_ms": 0,
            "models": [{"role": "detect", "type": "bright_box"}, {"role": "pose", "type": "dim_finder"}],
        }
    )
    try:
        assert isinstance(inference.detector, BrightBox)
        finder = inference.models[ModelRole.POSE]
        assert isinstance(finder, DimFinder) and isinstance(finder, PersonFinder)
        assert await inference.detect(Scene("x").take_for_analysis().image) == []  # type: ignore[union-attr]
        stage = SecondStage(frozenset({"pose"}), inference.refine)
        events: dict[str, list[Event]] = {"hall": [], "street": []}
        down = validate_rule(
            {"id": "hall-down", "camera_id": "hall", "type": "person_down", "params": {"down_s": 2}}
        )
        line = validate_rule({"id": "street-line", "camera_id": "street", "type": "line_count",
                              "params": {"line": [[0.5, 0.0], [0.5, 1.0]], "in_direction": [1, 0]}})  # fmt: skip

        def pipeline(camera: str, rules: list[object]) -> CameraPipeline:
            return CameraPipeline(
                camera, Scene(camera), inference.detect, lambda evs, _: events[camera].extend(evs), rules=rules,
                motion=MotionConfig(enabled=False), max_inflight=2, idle_sleep_s=0.001, second_stage=stage,
            )  # fmt: skip

        hall, street = pipeline("hall", [down]), pipeline("street", [line])
        await run_pipeline_until(hall, 16)
        seen_by_hall = finder.frames
        await run_pipeline_until(street, 8)
        assert hall.stats.refined >= 16 and seen_by_hall >= 16
        assert street.stats.refined == 0 and finder.frames == seen_by_hall
        [track] = hall.latest_tracks
        assert track.cls == "person" and len(track.keypoints) == 17 and street.latest_tracks == ()
        [alert] = [e for e in events["hall"] if isinstance(e, RuleEvent) and e.kind == "person_down"]
        assert alert.track_id == track.track_id and alert.payload["down_s"] >= 2
    finally:
        await inference.close()
        MODELS.pop("dim_finder", None)
