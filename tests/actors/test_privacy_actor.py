"""Privacy in the camera actor (no Ray): zones are filled in the live frame, the snapshot and the
evidence, the admin's clear snapshot included; zone changes apply without reopening the stream;
a frame the detector could not analyse leaves the actor hidden whole."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest
from testkit import run_pipeline_until

from smartcity.actors.camera_group import CameraGroup, CamerasChanged, CameraSpec, GroupOptions
from smartcity.actors.motion import MotionConfig
from smartcity.actors.pipeline import CameraPipeline
from smartcity.analytics import validate_rule
from smartcity.core.events import Event, RuleEvent
from smartcity.core.privacy_config import PrivacyConfig
from smartcity.core.video import LiveFrame
from smartcity.core.vision import Detection
from smartcity.privacy import CameraPrivacy, PrivacyZones, compose
from smartcity.privacy.zones import ZONE_RGB
from smartcity.sources import generate_test_clip
from smartcity.sources.types import Frame

W, H = 160, 120
# the right-hand quarter of the picture: a home's window
WINDOW = ((0.75, 0.0), (1.0, 0.0), (1.0, 1.0), (0.75, 1.0))


def decode(jpeg: bytes) -> np.ndarray:
    with av.open(io.BytesIO(jpeg)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def zone_filled(img: np.ndarray) -> bool:
    """The window's inside is the zone's flat grey (JPEG tolerance), not the picture."""
    h, w = img.shape[:2]
    inside = img[8 : h - 8, int(0.75 * w) + 8 : w - 8].astype(int)  # JPEG rings a few pixels off an edge
    return bool(np.abs(inside - np.array(ZONE_RGB)).max() <= 6)


@pytest.fixture
async def group(tmp_path: Path) -> AsyncIterator[CameraGroup]:
    clip = generate_test_clip(tmp_path / "clip.mp4", width=W, height=H, fps=10, seconds=3, pattern="noise")
    cam = CameraSpec(id="c1", url=f"file://{clip}", analysis_fps=2, privacy_zones=(WINDOW,))
    g = CameraGroup(
        "g1", [cam], GroupOptions(spool_path=str(tmp_path / "spool.sqlite"), health_interval_s=0.1)
    )
    await g.start()
    try:
        yield g
    finally:
        await g.stop()
        g.spool.close()


async def latest_frame(g: CameraGroup) -> LiveFrame:
    deadline = time.monotonic() + 20
    while (frame := await g.live_frame("c1")) is None:
        assert time.monotonic() < deadline, "no frame decoded"
        await asyncio.sleep(0.05)
    return frame


async def test_zones_are_filled_in_live_frames_and_snapshots_even_the_admins_clear_one(
    group: CameraGroup,
) -> None:
    frame = await latest_frame(group)
    assert frame.mask is None and frame.person_boxes is None  # no analysis: hidden whole
    assert zone_filled(frame.image)
    # the live view's clear picture (an admin's, privacy mode off) is made from this image
    clear = compose(frame.image, frame.person_boxes, pixelate_people=False, overlay=None)
    assert zone_filled(clear)
    left = clear[:, : W // 2].astype(float)
    assert left.std() > 30  # the rest of the clear picture is the camera's noise texture
    for pixelate in (True, False):
        jpeg = await group.snapshot("c1", pixelate=pixelate)
        assert jpeg is not None and zone_filled(decode(jpeg))


async def test_zone_changes_apply_live_without_reopening_the_camera(group: CameraGroup) -> None:
    await latest_frame(group)
    source = group.sources["c1"]
    spec = group.specs["c1"]
    unzoned = CameraSpec(id=spec.id, url=spec.url, analysis_fps=spec.analysis_fps, view_mode="background")
    assert await group.update_cameras([unzoned]) == CamerasChanged(changed=("c1",))
    assert group.sources["c1"] is source  # same stream
    frame = await latest_frame(group)
    assert not zone_filled(frame.image)
    assert group.privacy["c1"].view == "background"


class Source:
    def __init__(self, n: int) -> None:
        self.image = np.random.default_rng(1).integers(0, 256, (H * 2, W * 2, 3), dtype=np.uint8)
        self.n, self.i = n, 0

    def take_for_analysis(self) -> Frame | None:
        if self.i >= self.n:
            return None
        self.i += 1
        return Frame("cam", self.i, 1000.0 + self.i * 0.2, self.image, W * 2, H * 2)


async def test_evidence_keeps_the_zone_and_a_failed_detection_leaves_the_frame_hidden() -> None:
    evidence: dict[str, bytes] = {}
    emitted: list[Event] = []
    broken = False

    def emit(events: list[Event], attachments: dict[str, bytes]) -> None:
        emitted.extend(events)
        evidence.update(attachments)

    async def infer(image: np.ndarray) -> list[Detection]:
        if broken:
            raise RuntimeError("inference actor restarting")
        return [Detection((40.0, 120.0, 120.0, 180.0), "car", 0.9)]

    rule = validate_rule(
        {
            "id": "park",
            "camera_id": "cam",
            "type": "dwell",
            "classes": ["car"],
            "params": {"zone": [[0.05, 0.4], [0.5, 0.4], [0.5, 0.9], [0.05, 0.9]], "threshold_s": 2.0},
        }
    )
    privacy = CameraPrivacy(PrivacyConfig(), PrivacyZones((WINDOW,)))
    pipe = CameraPipeline(
        "cam",
        Source(60),
        infer,
        emit,
        rules=[rule],
        idle_sleep_s=0.001,
        privacy=privacy,
        motion=MotionConfig(enabled=False),  # every frame goes to the detector
    )
    await run_pipeline_until(pipe, 30, poll_s=0.01)
    dwell = [e for e in emitted if isinstance(e, RuleEvent) and e.kind == "dwell"]
    assert dwell and zone_filled(decode(evidence[dwell[0].event_id]))
    assert pipe.latest_mask is not None  # analysed with a warm background: a mask, not the whole picture

    broken = True
    task = asyncio.get_running_loop().create_task(pipe.run())
    deadline = time.monotonic() + 30
    try:
        while pipe.stats.infer_errors == 0:
            assert time.monotonic() < deadline, "the failing detector was never called"
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert pipe.latest_view is not None and pipe.latest_mask is None  # fail closed
