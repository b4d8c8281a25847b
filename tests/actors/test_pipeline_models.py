"""Second-stage models in the per-camera pipeline (no Ray; the inference actor's logic in
process): the example pose model runs for a camera whose rules need pose, its keypoints reach
the tracks and the rules' view, and it never runs for a camera whose rules do not need it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import pytest
from example_models import BoxPose
from testkit import run_pipeline_until

from smartcity.actors.inference import Inference
from smartcity.actors.motion import MotionConfig
from smartcity.actors.pipeline import CameraPipeline, SecondStage
from smartcity.analytics import (
    RULE_TYPES,
    FrameView,
    Rule,
    register_rule,
    required_model_roles,
    validate_rule,
)
from smartcity.analytics.base import ClassVocab
from smartcity.analytics.params import Params
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import Event, RuleEvent
from smartcity.core.vision import Keypoints
from smartcity.models.roles import ModelRole
from smartcity.sources.types import Frame

W, H = 320, 240
MARK = {"walk": 1, "plain": 2}  # pixel (0, 0) of each camera's frames: which camera the pose model saw


class PoseProbeParams(Params):
    """No parameters."""


class PoseProbeRule(Rule):
    """A rule that reads poses: notes the keypoints of the people it sees, and reports each
    person's first pose."""

    Params = PoseProbeParams
    default_classes = ("person",)
    model_roles: ClassVar[frozenset[str]] = frozenset({"pose"})

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        self.seen: list[Keypoints] = []
        self.reported: set[int] = set()

    def step(self, view: FrameView) -> list[RuleEvent]:
        out: list[RuleEvent] = []
        for i in np.flatnonzero(self.selected(view)).tolist():
            track = view.tracks[i]
            self.seen.append(track.keypoints)
            if track.keypoints and track.track_id not in self.reported:
                self.reported.add(track.track_id)
                head = track.keypoints[0]
                self.emit(out, view, view.t, "pose_seen", track_id=track.track_id, payload={"head_y": head.y})
        return out


@pytest.fixture
def pose_probe() -> Iterator[str]:
    register_rule("pose_probe")(PoseProbeRule)
    try:
        yield "pose_probe"
    finally:
        RULE_TYPES.pop("pose_probe")


class Walker:
    """A bright person-sized block walking right on black, 5 fps, never ending."""

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self.i = 0

    def box(self, i: int) -> tuple[int, int, int, int]:
        x = 10 + 3 * (i % 80)
        return (x, 60, x + 20, 180)

    def take_for_analysis(self) -> Frame | None:
        image = np.zeros((H, W, 3), dtype=np.uint8)
        image[0, 0, 0] = MARK[self.camera]
        x1, y1, x2, y2 = self.box(self.i)
        image[y1:y2, x1:x2] = 255
        frame = Frame(self.camera, self.i, 100.0 + self.i * 0.2, image, W, H)
        self.i += 1
        return frame


def line_rule(camera: str) -> RuleSpec:
    return validate_rule({"id": f"{camera}-line", "camera_id": camera, "type": "line_count",
                          "params": {"line": [[0.5, 0.0], [0.5, 1.0]], "in_direction": [1, 0]}})  # fmt: skip


async def test_the_pose_model_runs_only_for_cameras_whose_rules_need_it(pose_probe: str) -> None:
    probe = validate_rule({"id": "walk-pose", "camera_id": "walk", "type": pose_probe})
    assert required_model_roles([probe, line_rule("walk")]) == {"pose"}
    assert required_model_roles([line_rule("plain")]) == frozenset()

    inference = Inference(
        {"max_wait_ms": 0, "models": [{"role": "detect", "type": "bright_box"}, {"role": "pose", "type": "box_pose"}]}
    )
    pose = inference.models[ModelRole.POSE]
    assert isinstance(pose, BoxPose)
    stage = SecondStage(frozenset({"pose"}), inference.refine)  # what the camera group gives its pipelines
    events: dict[str, list[Event]] = {"walk": [], "plain": []}

    def pipeline(camera: str, rules: list[RuleSpec]) -> CameraPipeline:
        return CameraPipeline(
            camera, Walker(camera), inference.detect, lambda evs, _: events[camera].extend(evs), rules=rules,
            motion=MotionConfig(enabled=False), max_inflight=2, idle_sleep_s=0.001, second_stage=stage,
        )  # fmt: skip

    walk = pipeline("walk", [probe, line_rule("walk")])
    plain = pipeline("plain", [line_rule("plain")])
    try:
        await asyncio.gather(run_pipeline_until(walk, 12), run_pipeline_until(plain, 12))
        assert walk.stage_roles == {"pose"} and plain.stage_roles == frozenset()
        # the pose model saw every frame the walking camera sent it, and none of the other's
        assert walk.stats.refined >= walk.stats.analysed >= 12
        assert len(pose.frames_seen) >= 12 and set(pose.frames_seen) == {MARK["walk"]}
        assert plain.stats.refined == 0

        # the track carries the keypoints of its latest detection, and the rule saw them
        assert walk.latest_view is not None
        _, [det] = walk.latest_view
        [track] = walk.latest_tracks
        assert det.keypoints == pose.keypoints(det.box) and track.keypoints == det.keypoints
        rule = walk.engine.rule("walk-pose")
        assert isinstance(rule, PoseProbeRule)
        assert len(rule.seen) >= 10 and all(len(kp) == 5 for kp in rule.seen)
        [seen] = [e for e in events["walk"] if isinstance(e, RuleEvent) and e.kind == "pose_seen"]
        assert seen.track_id == track.track_id and seen.payload["head_y"] == 60.0
        [plain_track] = plain.latest_tracks
        assert plain_track.keypoints == ()
        assert not any(isinstance(e, RuleEvent) and e.kind == "pose_seen" for e in events["plain"])

        # a rule that needs pose, added live, starts the pose model for that camera
        plain.set_rules([line_rule("plain"), validate_rule({"id": "plain-pose", "camera_id": "plain", "type": pose_probe})])
        before = len(pose.frames_seen)
        await run_pipeline_until(plain, plain.stats.analysed + 8)
        assert plain.stage_roles == {"pose"} and plain.stats.refined >= 6
        assert MARK["plain"] in pose.frames_seen[before:]
        [plain_track] = plain.latest_tracks
        assert len(plain_track.keypoints) == 5
    finally:
        await inference.close()
