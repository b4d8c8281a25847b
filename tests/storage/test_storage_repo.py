"""Camera and event repositories: round trips through a real database."""

from __future__ import annotations

import dataclasses

import pytest

from smartcity.core.config import CameraConfig, CameraGroupConfig
from smartcity.core.events import CameraHealth, CameraState, RuleEvent
from smartcity.storage.db import Database
from smartcity.storage.repo import CameraGroupRow, CameraRepo, CameraRow, EventRepo
from smartcity.storage.writer import EventWriter


async def test_cameras_from_config_round_trip(db: Database) -> None:
    repo = CameraRepo(db)
    groups = [CameraGroupConfig(name="north", description="North district")]
    cams = [
        CameraConfig(
            id="cam-b", name="Bridge", url="rtsp://10.0.0.2/s", group="north", analysis_fps=2.5, site="bridge"
        ),
        CameraConfig(id="cam-a", url="demo://vtest", group="south", enabled=False),
    ]
    await repo.sync_from_config(groups, cams)
    assert await repo.list_cameras() == [
        CameraRow(
            id="cam-a", name="", url="demo://vtest", group="south", enabled=False, analysis_fps=5.0, site=""
        ),
        CameraRow(
            id="cam-b",
            name="Bridge",
            url="rtsp://10.0.0.2/s",
            group="north",
            enabled=True,
            analysis_fps=2.5,
            site="bridge",
        ),
    ]
    # a group only named by a camera is created with an empty description
    assert await repo.list_groups() == [
        CameraGroupRow(name="north", description="North district"),
        CameraGroupRow(name="south", description=""),
    ]
    got = await repo.get_camera("cam-b")
    assert got is not None and got.site == "bridge"
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.url = "x"  # type: ignore[misc]
    assert await repo.get_camera("nope") is None


async def test_resync_updates_and_keeps_cameras_made_by_the_api(db: Database) -> None:
    repo = CameraRepo(db)
    await repo.sync_from_config([], [CameraConfig(id="cfg-1", url="demo://vtest")])
    made = await repo.upsert_camera(
        CameraConfig(id="api-1", url="rtsp://cam.local/1", group="east", name="API")
    )
    assert made == CameraRow(
        id="api-1",
        name="API",
        url="rtsp://cam.local/1",
        group="east",
        enabled=True,
        analysis_fps=5.0,
        site="",
    )
    await repo.sync_from_config(
        [CameraGroupConfig(name="default", description="described later")],
        [CameraConfig(id="cfg-1", url="rtsp://new.host/1", analysis_fps=1.0)],
    )
    rows = {r.id: r for r in await repo.list_cameras()}
    assert set(rows) == {"cfg-1", "api-1"}
    assert (rows["cfg-1"].url, rows["cfg-1"].analysis_fps) == ("rtsp://new.host/1", 1.0)
    assert {g.name: g.description for g in await repo.list_groups()} == {
        "default": "described later",
        "east": "",
    }
    # replacing an API camera changes it in place
    moved = await repo.upsert_camera(CameraConfig(id="api-1", url="rtsp://cam.local/2", group="default"))
    assert (moved.url, moved.group, moved.name) == ("rtsp://cam.local/2", "default", "")
    assert len(await repo.list_cameras()) == 2


async def test_events_are_listed_and_counted_by_filter(db: Database) -> None:
    evs = [
        RuleEvent(
            event_id=f"r{i}", camera_id=f"c{i % 2}", t=100.0 + i, rule_id="L", rule_type="line", kind="x"
        )
        for i in range(10)
    ]
    evs.append(CameraHealth(event_id="h", camera_id="c0", t=104.5, group="g", state=CameraState.ONLINE))
    await EventWriter(db).write(evs)
    repo = EventRepo(db)
    newest = await repo.list_events(limit=3)
    assert [e["event_id"] for e in newest] == ["r9", "r8", "r7"]
    c0 = await repo.list_events(camera_id="c0", type="rule_event")
    assert [e["event_id"] for e in c0] == ["r8", "r6", "r4", "r2", "r0"]
    window = await repo.list_events(since=104.0, until=106.0)  # since inclusive, until exclusive
    assert [e["event_id"] for e in window] == ["r5", "h", "r4"]
    assert await repo.count_events() == 11
    assert await repo.count_events(camera_id="c0") == 6
    assert await repo.count_events(type="camera_health", since=104.0) == 1
    assert await repo.count_events(rule_id="L", until=103.0) == 3
    assert await repo.list_events(camera_id="none") == []
    with pytest.raises(ValueError, match="limit"):
        await repo.list_events(limit=-1)
