"""PostgreSQL stops for 10 s while events flow: they go to the disk spool, and once the database
returns every event is stored exactly once (a throwaway cluster, never the shared server)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from throwaway_pg import ThrowawayPostgres

from smartcity.core.bus import EventBus, Overflow
from smartcity.core.events import CountBucket, RuleEvent
from smartcity.storage.db import Database, migrate
from smartcity.storage.durable_spool import DurableSpool, SpoolConfig
from smartcity.storage.writer import EventWriter

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def throwaway_pg(tmp_path: Path) -> Iterator[ThrowawayPostgres]:
    pg = ThrowawayPostgres(Path("/tmp") / f"sc-pg-{tmp_path.name}")
    try:
        pg.init()
        pg.start()
    except (FileNotFoundError, OSError) as exc:
        pg.destroy()
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"cannot run a throwaway PostgreSQL (required when CI=true): {exc}")
        pytest.skip(f"cannot run a throwaway PostgreSQL: {exc}")
    try:
        yield pg
    finally:
        pg.destroy()


def _event(i: int) -> RuleEvent:
    return RuleEvent(camera_id=f"cam-{i % 4}", t=1_700_000_000.0 + i * 0.01, rule_id="line-1", rule_type="line",
                     kind="crossing", object_class="car", track_id=i)


async def test_events_flow_through_a_ten_second_outage_and_are_stored_exactly_once(
    throwaway_pg: ThrowawayPostgres, tmp_path: Path
) -> None:
    await migrate(throwaway_pg.url)
    db = Database(throwaway_pg.url)
    bus = EventBus()
    writer = EventWriter(db, batch_size=200, max_wait_ms=5)
    spool = DurableSpool(writer, SpoolConfig(directory=tmp_path / "spool", retry_initial_s=0.1, retry_max_s=0.5))
    sub = bus.subscribe("writer", [RuleEvent, CountBucket], maxsize=1000, overflow=Overflow.BLOCK)
    task = asyncio.get_running_loop().create_task(spool.run(sub))
    sent: list[str] = []
    max_publish_s = 0.0
    try:
        async def produce(seconds: float, start: int) -> int:
            nonlocal max_publish_s
            i = start
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                batch = [_event(i + k) for k in range(20)]
                t0 = time.monotonic()
                durable = spool.expect(e.event_id for e in batch)
                await bus.publish_many(batch)
                await asyncio.wait_for(durable, 5)
                max_publish_s = max(max_publish_s, time.monotonic() - t0)
                sent.extend(e.event_id for e in batch)
                i += 20
                await asyncio.sleep(0.02)
            return i

        i = await produce(1.5, 0)
        await asyncio.to_thread(throwaway_pg.stop, "fast")
        down_at = time.monotonic()
        i = await produce(10.0, i)  # the database is down all along
        spooled_during_outage = spool.spooled
        await asyncio.to_thread(throwaway_pg.start)
        outage_s = time.monotonic() - down_at
        i = await produce(1.5, i)
        deadline = time.monotonic() + 20
        while (spool.segments or sub.qsize()) and time.monotonic() < deadline:  # noqa: ASYNC110 - polling stats
            await asyncio.sleep(0.05)
        assert spool.segments == 0, "spool not drained after the database came back"
    finally:
        sub.close()
        await asyncio.wait_for(task, 20)
    try:
        async with db.engine.connect() as conn:
            total = (await conn.execute(text("SELECT count(*), count(DISTINCT event_id) FROM events"))).one()
            ids = set((await conn.execute(text("SELECT event_id FROM events"))).scalars())
    finally:
        await db.dispose()
    assert outage_s >= 10.0
    assert spooled_during_outage > 1000  # events kept flowing into the spool, not blocked
    # producers were never stuck behind the outage (relative to it: an absolute bound flaked on a
    # loaded 2-core CI box at 2.01 s)
    assert max_publish_s < outage_s / 2
    assert total == (len(sent), len(sent))
    assert ids == set(sent)
    assert spool.drained == spool.spooled
    assert not list((tmp_path / "spool").iterdir())
