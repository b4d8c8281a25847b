"""The camera group actor's logic without Ray: its replies are typed values (live frames,
rule and camera changes, its status), never dicts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smartcity.actors.camera_group import (
    CameraGroup,
    CamerasChanged,
    CameraSpec,
    GroupInfo,
    GroupOptions,
    RulesApplied,
)
from smartcity.core.video import LiveFrame, SignalPush, SignalState
from smartcity.sources import generate_test_clip

ZONE = [[0, 0], [1, 0], [1, 1], [0, 1]]


@pytest.fixture
async def group(tmp_path: Path) -> AsyncIterator[CameraGroup]:
    clip = generate_test_clip(tmp_path / "clip.mp4", width=160, height=120, fps=10, seconds=2)
    cam = CameraSpec(id="c1", url=f"file://{clip}", analysis_fps=2)
    g = CameraGroup("g1", [cam], GroupOptions(spool_path=str(tmp_path / "spool.sqlite"), health_interval_s=0.1))
    await g.start()
    try:
        yield g
    finally:
        await g.stop()
        g.spool.close()


async def latest_frame(g: CameraGroup, camera_id: str) -> LiveFrame:
    deadline = time.monotonic() + 20
    while (frame := await g.live_frame(camera_id)) is None:
        assert time.monotonic() < deadline, "no frame decoded"
        await asyncio.sleep(0.05)
    return frame


async def test_live_frame_is_typed_and_hides_everything_without_analysis(group: CameraGroup) -> None:
    frame = await latest_frame(group, "c1")
    assert isinstance(frame, LiveFrame)
    assert frame.image.shape == (120, 160, 3)
    assert frame.person_boxes is None  # no analysis: nobody can be located, the view hides it all
    assert await group.live_frame("elsewhere") is None
    jpeg = await group.snapshot("c1")
    assert jpeg is not None and jpeg[:2] == b"\xff\xd8"


async def test_rules_and_cameras_replies_are_typed(group: CameraGroup, tmp_path: Path) -> None:
    good = {"id": "crowd", "camera_id": "c1", "type": "occupancy", "params": {"zone": ZONE, "thresholds": [1]}}
    bad = {"id": "broken", "camera_id": "c1", "type": "occupancy", "params": {"zone": [[0, 0]]}}
    applied = await group.update_rules([good, bad])
    assert isinstance(applied, RulesApplied)
    assert applied.applied == ("crowd",)
    assert [r.split(":")[0] for r in applied.rejected] == ["broken"]

    clip2 = generate_test_clip(tmp_path / "clip2.mp4", width=160, height=120, fps=10, seconds=2)
    old = group.specs["c1"]
    changed = await group.update_cameras([CameraSpec(id="c2", url=f"file://{clip2}", analysis_fps=2), old])
    assert changed == CamerasChanged(added=("c2",), removed=(), changed=())
    info = await group.ping()
    assert isinstance(info, GroupInfo)
    assert (info.group, info.cameras) == ("g1", ("c1", "c2"))
    assert info.rules == {"c1": ("crowd",)}
    assert info.pipelines == {}  # health only: no inference actors
    assert await group.update_cameras([old]) == CamerasChanged(removed=("c2",))


async def test_a_signal_for_a_camera_without_analysis_is_refused(group: CameraGroup) -> None:
    push = SignalPush(camera_id="c1", rule_id="lights", state=SignalState.RED, t=time.time())
    assert await group.set_signal_state(push) is False
