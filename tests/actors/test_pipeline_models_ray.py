"""Second-stage models on Ray: a camera-group actor sends its boxes to the inference actor's
pose model only for the camera whose rules need pose, and the keypoints come back on its tracks."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import example_models
import pytest
import ray
import test_pipeline_models
from example_models import BoxPose, BoxPoseConfig, BrightBox, BrightBoxConfig
from test_pipeline_models import PoseProbeRule

from smartcity.actors.camera_group import CameraGroup, CameraSpec, GroupOptions, RulesApplied
from smartcity.actors.inference import Inference
from smartcity.actors.motion import MotionConfig
from smartcity.analytics import RULE_TYPES, register_rule
from smartcity.models.registry import register_model
from smartcity.sources import demo_video_path

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# The actors' processes cannot import the test folder: the test classes travel by value, and
# each actor registers the example model types or the rule type in its own process.
ray.cloudpickle.register_pickle_by_value(example_models)
ray.cloudpickle.register_pickle_by_value(test_pipeline_models)


class ExampleInference(Inference):
    def __init__(self, config: dict[str, Any]) -> None:
        register_model("box_pose", roles=["pose"], config=BoxPoseConfig)(BoxPose)
        register_model("bright_box", roles=["detect"], config=BrightBoxConfig)(BrightBox)
        super().__init__(config)


class ExampleGroup(CameraGroup):
    def __init__(self, group: str, cameras: list[CameraSpec], options: GroupOptions) -> None:
        if "pose_probe" not in RULE_TYPES:
            register_rule("pose_probe")(PoseProbeRule)
        super().__init__(group, cameras, options)


ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

INFERENCE = "smartcity-test-models-infer"


@pytest.fixture
async def group(tmp_path: Path, ray_session: None) -> AsyncIterator[Any]:
    inference = ray.remote(ExampleInference).options(name=INFERENCE, num_cpus=0, max_concurrency=100).remote(
        {"max_wait_ms": 0, "models": [{"role": "detect", "type": "bright_box"}, {"role": "pose", "type": "box_pose"}]}
    )
    url = f"file://{demo_video_path().resolve()}"
    handle = ray.remote(ExampleGroup).options(num_cpus=0).remote(
        "models",
        [CameraSpec(id="a", url=url, analysis_fps=5), CameraSpec(id="b", url=url, analysis_fps=5)],
        GroupOptions(spool_path=str(tmp_path / "spool.sqlite"), inference_actors=(INFERENCE,), model_roles=("pose",),
                     motion=MotionConfig(enabled=False)),
    )  # fmt: skip
    try:
        yield handle, inference
    finally:
        try:
            await asyncio.wait_for(handle.stop.remote(), 30)
        finally:
            ray.kill(handle, no_restart=True)
            ray.kill(inference, no_restart=True)


async def test_pose_runs_on_ray_only_for_the_camera_whose_rules_need_it(group: Any) -> None:
    handle, inference = group
    result = await handle.update_rules.remote(
        [
            {"id": "a-pose", "camera_id": "a", "type": "pose_probe"},
            {"id": "b-count", "camera_id": "b", "type": "line_count",
             "params": {"line": [[0.5, 0.0], [0.5, 1.0]], "in_direction": [1, 0]}},
        ]  # fmt: skip
    )
    assert result == RulesApplied(applied=("a-pose", "b-count"), rejected=())
    await handle.start.remote()
    t0 = time.monotonic()
    while True:
        stats = (await handle.ping.remote()).pipelines
        if all(c in stats and stats[c].analysed >= 5 for c in "ab"):
            break
        assert time.monotonic() - t0 < 90, f"cameras not analysed: {stats}"
        await asyncio.sleep(0.2)
    assert stats["a"].refined >= 5 and stats["b"].refined == 0
    [track_a] = [t for t in await handle.tracks.remote("a") if t.time_since_update == 0]
    [track_b] = [t for t in await handle.tracks.remote("b") if t.time_since_update == 0]
    assert len(track_a.keypoints) == 5 and track_a.keypoints[0].score == 0.9
    assert track_b.keypoints == ()
    info = await inference.info.remote()
    assert info["models"]["pose"]["frames"] >= 5 and info["models"]["detect"]["frames"] >= 10
