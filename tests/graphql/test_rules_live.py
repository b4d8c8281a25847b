"""A rule created through the API runs on the demo camera within a second and its events
arrive on a subscription (real server, real Ray, real detector on vtest.avi)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from api_helpers import Client, connect_ws, next_message, running_server, subscribe

pytestmark = [pytest.mark.ray, pytest.mark.slow]

DEMO = {
    "camera_groups": [{"name": "police"}, {"name": "technical"}],
    "cameras": [{"id": "demo", "url": "demo://vtest", "group": "police", "analysis_fps": 5}],
    "actors": {"health_interval_s": 0.5, "pull_interval_s": 0.05, "reconcile_interval_s": 0.5},
    "analysis": {"inference_cpus": 1, "max_batch": 2},
}


async def test_rule_from_mutation_runs_within_a_second_and_streams_events(tmp_path: Path, ray_session: None) -> None:
    async with running_server(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/api.db", with_ray=True, extra=DEMO) as (base, server):
        assert server.reconciler is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # the demo camera is being analysed
            h = server.reconciler.handle("police")
            info = await h.ping.remote() if h is not None else None
            if info is not None and "demo" in info.pipelines and info.pipelines["demo"].analysed >= 5:
                break
            await asyncio.sleep(0.2)
        assert info is not None
        pid = info.pid
        # signed in only now: a connection left idle through the wait above can be closed by the
        # server's keep-alive timeout just as the next request goes out (httpx.ReadError in CI)
        op = Client(base)
        await op.login("police-op")

        ws = await connect_ws(base, op.token)
        await subscribe(ws, "ev", 'subscription { events(cameraId: "demo", ruleId: "crowd") { id ruleId kind cameraId } }')
        await asyncio.sleep(0.2)
        body = await op.gql(
            """mutation { createRule(id: "crowd", input: {cameraId: "demo", type: "occupancy",
               params: {zone: [[0,0],[1,0],[1,1],[0,1]], thresholds: [1], hold_s: 0, sample_interval_s: 0}})
               { __typename ... on Rule { id version } } }"""
        )
        t0 = time.monotonic()
        assert body["data"]["createRule"] == {"__typename": "Rule", "id": "crowd", "version": 1}
        while True:  # running in the camera's actor
            info = await server.reconciler.handle("police").ping.remote()
            if info.rules.get("demo") == ("crowd",):
                break
            await asyncio.sleep(0.02)
        running_after = time.monotonic() - t0
        assert running_after < 1.0, f"rule running after {running_after:.2f}s"
        assert info.pid == pid, "the camera's actor (and stream) was not restarted"

        msg = await next_message(ws, 15)
        assert msg["type"] == "next", msg
        ev = msg["payload"]["data"]["events"]
        assert (ev["ruleId"], ev["kind"], ev["cameraId"]) == ("crowd", "occupancy_above", "demo")
        await ws.close()
        await op.close()
