"""The states commanded in active mode feed the junction's red-light rules through the video
side's signal push (only on a change, only once a camera took it); advisory mode pushes nothing."""

from __future__ import annotations

from pathlib import Path

import httpx
from signals_kit import junction_dict
from sqlalchemy.ext.asyncio import create_async_engine
from testkit import RecordingVideo

from smartcity.core.clock import ManualClock
from smartcity.core.video import SignalPush, SignalState
from smartcity.extensions.context import ExtensionTables
from smartcity.extensions.signals.adapters import HttpAdapter, NullAdapter
from smartcity.extensions.signals.config import HttpAdapterConfig, SignalsConfig
from smartcity.extensions.signals.service import SignalsService


async def run(mode: str, tmp: Path) -> list[SignalPush]:
    adapter_cfg = {"type": "http", "url": "http://127.0.0.1:9/x"}
    cfg = SignalsConfig.model_validate(
        {"type": "signals", "junctions": [junction_dict(mode=mode, adapter=adapter_cfg)]}
    )
    clock, video = ManualClock(1000.0), RecordingVideo()
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp / 'db.sqlite'}")
    http = HttpAdapter(
        HttpAdapterConfig(url="http://127.0.0.1:9/x"),
        "j1",
        httpx.MockTransport(lambda r: httpx.Response(204)),
    )
    svc = SignalsService(
        cfg,
        lambda j: http if mode == "active" else NullAdapter(),
        ExtensionTables(engine, None),
        clock,
        video,
    )
    try:
        for _ in range(80):  # the fixed plan (no camera data): NS green (up to 40 s), its amber, then red
            await svc.tick()
            await clock.advance(1.0)
    finally:
        await svc.stop()
        await engine.dispose()
    return video.pushes


async def test_active_mode_pushes_each_change_to_the_red_light_rule(tmp_path: Path) -> None:
    pushes = await run("active", tmp_path)
    assert {(p.camera_id, p.rule_id) for p in pushes} == {("cam-n", "red-n")}
    states = [p.state for p in pushes]
    assert states[:3] == [SignalState.GREEN, SignalState.AMBER, SignalState.RED]
    assert all(a != b for a, b in zip(states, states[1:], strict=False))  # only changes are pushed
    assert pushes[1].t - pushes[0].t >= 6.0  # the group's minimum green


async def test_advisory_mode_pushes_nothing(tmp_path: Path) -> None:
    assert await run("advisory", tmp_path) == []
