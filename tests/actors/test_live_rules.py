"""A rule added to a running camera takes effect within a second, without restarting its stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smartcity.actors.camera_group import CameraSpec, GroupInfo
from smartcity.actors.runtime import GroupSpec, Reconciler, rule_json
from smartcity.core.aio import cancel_and_wait
from smartcity.core.bus import EventBus, Overflow
from smartcity.core.config import ActorsConfig, AnalysisConfig, RayConfig
from smartcity.core.events import Event, RuleEvent
from smartcity.sources import demo_video_path

pytestmark = [pytest.mark.ray, pytest.mark.slow]


class BusSink:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    async def deliver(self, events: list[Event]) -> None:
        await self.bus.publish_many(events)


@pytest.fixture
async def running(tmp_path: Path, ray_session: None) -> AsyncIterator[tuple[Reconciler, list[GroupSpec], EventBus]]:
    bus = EventBus()
    cam = CameraSpec(id="vtest", url=f"file://{demo_video_path().resolve()}", analysis_fps=5)
    groups = [GroupSpec("live", (cam,))]

    async def desired() -> list[GroupSpec]:
        return list(groups)

    rec = Reconciler(
        desired,
        BusSink(bus),
        actors=ActorsConfig(health_interval_s=0.5, pull_interval_s=0.05, reconcile_interval_s=0.5),
        ray_cfg=RayConfig(actor_cpus=0),
        spool_dir=tmp_path / "spool",
        analysis=AnalysisConfig(inference_cpus=1, max_batch=2),
    )
    task = asyncio.create_task(rec.run())
    try:
        yield rec, groups, bus
    finally:
        await cancel_and_wait(task)


async def test_new_rule_fires_without_stream_restart(
    running: tuple[Reconciler, list[GroupSpec], EventBus],
) -> None:
    rec, groups, bus = running
    deadline = time.monotonic() + 90
    info: GroupInfo | None = None
    while time.monotonic() < deadline:
        h = rec.handle("live")
        if h is not None:
            try:
                info = await h.ping.remote()
            except Exception:
                info = None
            if info is not None and "vtest" in info.pipelines and info.pipelines["vtest"].analysed >= 10:
                break
        await asyncio.sleep(0.2)
    assert info is not None and info.pipelines["vtest"].analysed >= 10
    pid, analysed_before = info.pid, info.pipelines["vtest"].analysed

    sub = bus.subscribe("test", [RuleEvent], maxsize=10_000, overflow=Overflow.BLOCK)
    rule = {
        "id": "crowd-1",
        "camera_id": "vtest",
        "type": "occupancy",
        "name": "people on the square",
        "params": {"zone": [[0, 0], [1, 0], [1, 1], [0, 1]], "thresholds": [1], "hold_s": 0, "sample_interval_s": 0},
    }
    groups[0] = GroupSpec("live", groups[0].cameras, (rule_json(rule),))
    rec.poke()
    event = await asyncio.wait_for(sub.get(), 60)
    sub.close()
    assert isinstance(event, RuleEvent)
    assert event.rule_id == "crowd-1"
    assert event.kind == "occupancy_above"

    info = await rec.handle("live").ping.remote()
    assert info.pid == pid, "the camera actor was not restarted"
    assert rec.status()["live"].starts == 1
    assert info.pipelines["vtest"].analysed > analysed_before, "the same pipeline kept analysing"
    assert info.rules == {"vtest": ("crowd-1",)}
