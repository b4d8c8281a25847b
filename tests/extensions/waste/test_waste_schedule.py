"""The daily plan on the server's clock (a ManualClock here): made at the configured local time
for the next day, a run missed while the server was down made at start, none made twice; and the
schedule's time arithmetic across a daylight-saving change."""

from __future__ import annotations

import asyncio
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from waste_harness import city

from smartcity.core.bus import EventBus
from smartcity.core.clock import ManualClock
from smartcity.core.video import NoVideo
from smartcity.extensions.context import ExtensionContext, ExtensionServices
from smartcity.extensions.waste import WasteConfig, WasteExtension
from smartcity.extensions.waste.service import next_day, next_run
from smartcity.extensions.waste.store import plans
from smartcity.extensions.waste.tables import metadata
from smartcity.storage.db import Database, MigrationBranch, migrate
from smartcity.storage.readonly import StoredReads

PARIS = ZoneInfo("Europe/Paris")
BRANCH = MigrationBranch("waste", Path(__file__).resolve().parents[3] / "smartcity/extensions/waste/migrations")


def test_next_run_and_next_day_in_local_time() -> None:
    at = time(18, 0)
    morning = datetime(2026, 5, 4, 10, 0, tzinfo=PARIS).timestamp()
    assert next_run(morning, at, PARIS) == datetime(2026, 5, 4, 18, 0, tzinfo=PARIS).timestamp()
    evening = datetime(2026, 5, 4, 18, 0, tzinfo=PARIS).timestamp()
    assert next_run(evening, at, PARIS) == datetime(2026, 5, 5, 18, 0, tzinfo=PARIS).timestamp()
    # the night clocks go forward (29 March 2026): 19:00 to 18:00 is 23 h of the calendar, 22 h of time
    before = datetime(2026, 3, 28, 19, 0, tzinfo=PARIS).timestamp()
    assert next_run(before, at, PARIS) - before == 22 * 3600
    assert next_day(before, PARIS) == datetime(2026, 3, 29, tzinfo=PARIS)
    assert next_day(evening, PARIS).isoformat() == "2026-05-05T00:00:00+02:00"


async def _started(db: Database, clock: ManualClock, config: WasteConfig) -> tuple[WasteExtension, ExtensionContext]:
    ctx = ExtensionContext("waste", ExtensionServices(EventBus(), clock, StoredReads(db), NoVideo(), db.engine), metadata)
    ext = WasteExtension(config)
    await ext.start(ctx)
    return ext, ctx


async def _until(pred: object, what: str) -> None:
    for _ in range(500):
        if callable(pred) and pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not reached: {what}")


async def test_daily_plan_at_the_configured_time_and_after_a_restart(storage_url: str) -> None:
    await migrate(storage_url, [BRANCH])
    db = Database(storage_url)
    config = WasteConfig.model_validate(city(4, schedule={"at": "18:00:00", "timezone": "Europe/Paris"}))
    clock = ManualClock(datetime(2026, 5, 4, 10, 0, tzinfo=PARIS).timestamp())
    try:
        ext, ctx = await _started(db, clock, config)
        svc = ext.service
        assert svc is not None
        # started at 10:00: yesterday's 18:00 run (the plan for today) was missed, so it is made now
        await _until(lambda: svc.stats.plans["schedule"] == 1, "the catch-up plan")
        assert [p.day for p in await plans(svc.db)] == ["2026-05-04"]
        await _until(lambda: clock.pending_sleepers == 1, "the scheduler sleeping")
        await clock.advance(7 * 3600 + 59 * 60)  # 17:59: nothing yet
        assert svc.stats.plans["schedule"] == 1
        await clock.advance(60)  # 18:00: tomorrow's plan
        await _until(lambda: svc.stats.plans["schedule"] == 2, "the 18:00 plan")
        stored = await plans(svc.db)
        assert [(p.day, p.trigger) for p in stored] == [("2026-05-05", "schedule"), ("2026-05-04", "schedule")]
        assert stored[0].created_at == datetime(2026, 5, 4, 18, 0, tzinfo=PARIS).timestamp()
        await ctx.close(timeout_s=5)

        # a restart at 18:30: tomorrow's plan exists, none is made again
        await clock.advance(30 * 60)
        ext2, ctx2 = await _started(db, clock, config)
        await _until(lambda: clock.pending_sleepers >= 1, "the scheduler sleeping")
        assert ext2.service is not None and ext2.service.stats.plans["schedule"] == 0
        assert len(await plans(svc.db)) == 2
        await ctx2.close(timeout_s=5)
    finally:
        await db.dispose()


async def test_no_plan_is_stored_or_sent_for_a_day_without_collection(storage_url: str) -> None:
    await migrate(storage_url, [BRANCH])
    db = Database(storage_url)
    # rounds on Mondays and Thursdays only: Tuesday 5 May 2026 is a day off, Wednesday too
    planner = {"time_limit_s": 1.0, "collection_weekdays": [0, 3]}
    config = WasteConfig.model_validate(city(4, planner=planner, schedule={"at": "18:00:00", "timezone": "Europe/Paris"}))
    clock = ManualClock(datetime(2026, 5, 4, 10, 0, tzinfo=PARIS).timestamp())  # Monday morning
    try:
        ext, ctx = await _started(db, clock, config)
        svc = ext.service
        assert svc is not None
        await _until(lambda: svc.stats.plans["schedule"] == 1, "the catch-up plan for Monday (a round)")
        await _until(lambda: clock.pending_sleepers == 1, "the scheduler sleeping")
        await clock.advance(8 * 3600)  # Monday 18:00: Tuesday's run, a day off
        await _until(lambda: svc.stats.days_off == 1, "Tuesday skipped")
        await _until(lambda: clock.pending_sleepers == 1, "the scheduler sleeping again")
        await clock.advance(24 * 3600)  # Tuesday 18:00: Wednesday, a day off
        await _until(lambda: svc.stats.days_off == 2, "Wednesday skipped")
        await _until(lambda: clock.pending_sleepers == 1, "the scheduler sleeping again")
        await clock.advance(24 * 3600)  # Wednesday 18:00: Thursday's round
        await _until(lambda: svc.stats.plans["schedule"] == 2, "Thursday's plan")
        assert [p.day for p in await plans(svc.db)] == ["2026-05-07", "2026-05-04"]
        await ctx.close(timeout_s=5)
    finally:
        await db.dispose()
