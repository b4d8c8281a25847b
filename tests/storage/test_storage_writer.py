"""EventWriter: batching, idempotence, durability waiters, retries, counts and incidents."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text

from smartcity.core.bus import EventBus, Overflow
from smartcity.core.events import (
    CameraHealth,
    CameraState,
    CountBucket,
    DetectionSummary,
    Event,
    Incident,
    IncidentState,
    RuleEvent,
    Severity,
)
from smartcity.storage.db import Database
from smartcity.storage.repo import EventRepo
from smartcity.storage.writer import EventWriter


def rule_event(
    i: int,
    cam: str = "c1",
    *,
    event_id: str | None = None,
    severity: Severity = Severity.INFO,
    evidence_path: str | None = None,
) -> RuleEvent:
    return RuleEvent(
        event_id=event_id or f"ev-{cam}-{i}",
        camera_id=cam,
        t=1000.0 + i,
        rule_id="line-1",
        rule_type="line_count",
        kind="crossing",
        object_class="car",
        track_id=i,
        payload={"i": i},
        severity=severity,
        evidence_path=evidence_path,
    )


def bucket(n: int, t: float, *, event_id: str, direction: str = "in", start: float = 600.0) -> CountBucket:
    return CountBucket(
        event_id=event_id,
        camera_id="c1",
        t=t,
        rule_id="line-1",
        object_class="car",
        direction=direction,
        bucket_start=start,
        bucket_s=60,
        n=n,
    )


async def scalar(db: Database, sql: str) -> object:
    async with db.engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar()


@asynccontextmanager
async def table_renamed(db: Database, table: str) -> AsyncIterator[None]:
    """Make a table unavailable (a real failure of every statement using it), then restore it."""
    other = Database(db.url)
    try:
        async with other.engine.begin() as conn:
            await conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_offline"))
        yield
    finally:
        async with other.engine.begin() as conn:
            await conn.execute(text(f"ALTER TABLE {table}_offline RENAME TO {table}"))
        await other.dispose()


@asynccontextmanager
async def write_lock(db: Database) -> AsyncIterator[None]:
    """Hold a lock that blocks inserts into `events` from another connection, until exit."""
    other = Database(db.url)
    try:
        async with other.engine.connect() as conn:
            if db.dialect == "postgresql":
                await conn.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))
            else:  # the first write of a SQLite transaction takes the database's write lock
                await conn.execute(text("INSERT INTO camera_groups (name, description) VALUES ('lock', '')"))
            yield
            await conn.rollback()
    finally:
        await other.dispose()


async def test_write_stores_each_kind_with_its_fields(db: Database) -> None:
    health = CameraHealth(
        event_id="h1", camera_id="c1", t=5.0, group="g1", state=CameraState.DEGRADED, input_fps=12.5
    )
    summary = DetectionSummary(
        event_id="s1", camera_id="c2", t=6.0, frames=25, window_s=5.0, detections_by_class={"car": 3}
    )
    ev = rule_event(1, severity=Severity.HIGH, evidence_path="ev/1.jpg")
    writer = EventWriter(db)
    assert await writer.write([health, summary, ev]) == 3
    rows = {r["event_id"]: r for r in await EventRepo(db).list_events()}
    assert set(rows) == {"h1", "s1", "ev-c1-1"}
    r = rows["ev-c1-1"]
    assert (r["type"], r["camera_id"], r["t"], r["rule_id"], r["rule_type"], r["kind"]) == (
        "rule_event",
        "c1",
        1001.0,
        "line-1",
        "line_count",
        "crossing",
    )
    assert (r["object_class"], r["track_id"], r["severity"], r["evidence_path"]) == (
        "car",
        1,
        "high",
        "ev/1.jpg",
    )
    assert r["payload"] == {"i": 1}
    assert r["created_at"] > 1.6e9
    h = rows["h1"]
    assert (h["type"], h["kind"], h["rule_id"]) == ("camera_health", "degraded", None)
    assert h["payload"] == health.to_dict()
    assert rows["s1"]["payload"]["detections_by_class"] == {"car": 3}
    assert (writer.committed, writer.duplicates, writer.batches) == (3, 0, 1)


async def test_duplicates_in_a_batch_and_later_are_ignored(db: Database) -> None:
    writer = EventWriter(db)
    first = [rule_event(i) for i in range(50)]
    assert await writer.write([*first, first[0], first[7]]) == 50
    assert (writer.committed, writer.duplicates) == (50, 2)
    again = [rule_event(i) for i in range(40, 60)]  # 10 already stored, 10 new
    assert await writer.write(again) == 10
    assert (writer.committed, writer.duplicates, writer.batches) == (60, 12, 2)
    assert await scalar(db, "SELECT count(*) FROM events") == 60
    assert await scalar(db, "SELECT count(DISTINCT event_id) FROM events") == 60


async def test_run_writes_what_the_bus_delivers_until_closed_and_drained(db: Database) -> None:
    bus = EventBus()
    sub = bus.subscribe("writer", maxsize=100, overflow=Overflow.BLOCK)
    writer = EventWriter(db, batch_size=64, max_wait_ms=5)
    task = asyncio.create_task(writer.run(sub))
    events = [rule_event(i) for i in range(1000)]
    await bus.publish_many(events)
    await bus.publish_many(events[:30])  # a redelivery
    sub.close("test over")
    await asyncio.wait_for(task, 30)
    assert writer.committed == 1000
    assert writer.duplicates == 30
    assert writer.batches >= 1000 // 64
    assert await scalar(db, "SELECT count(*) FROM events") == 1000


async def test_expect_resolves_only_once_committed(db: Database) -> None:
    bus = EventBus()
    sub = bus.subscribe("writer", maxsize=1000)
    writer = EventWriter(db, max_wait_ms=1)
    events = [rule_event(i) for i in range(20)]
    committed = writer.expect(e.event_id for e in events)  # registered before publishing
    task = asyncio.create_task(writer.run(sub))
    try:
        async with write_lock(db):
            await bus.publish_many(events)
            await asyncio.sleep(0.4)
            # the writer holds the batch but cannot commit it
            assert not committed.done()
            assert writer.batches == 0
        await asyncio.wait_for(committed, 30)
        # resolved => durable: another connection sees every row
        assert await scalar(db, "SELECT count(*) FROM events") == 20
        partial = writer.expect(["ev-c1-3", "not-yet"])
        await asyncio.sleep(0.05)
        assert not partial.done()
        await bus.publish(rule_event(99, event_id="not-yet"))
    finally:
        sub.close()
        await asyncio.wait_for(task, 30)
    assert partial.done() and partial.exception() is None


async def test_expect_counts_duplicates_and_recent_commits(db: Database) -> None:
    writer = EventWriter(db)
    await writer.write([rule_event(1)])
    assert writer.expect(["ev-c1-1"]).done()  # committed just before the call
    assert writer.expect([]).done()
    later = writer.expect(["ev-c1-1", "ev-c1-2"])
    assert not later.done()
    assert await writer.write([rule_event(2)]) == 1
    assert later.done()
    # an id another writer (or an earlier run) stored is resolved as a duplicate
    fresh = EventWriter(db)
    dup = fresh.expect(["ev-c1-1"])
    assert await fresh.write([rule_event(1)]) == 0
    assert dup.done() and fresh.duplicates == 1


async def test_cancelled_expect_drops_its_registration(db: Database) -> None:
    writer = EventWriter(db)
    waiting = writer.expect(["a", "b"])
    waiting.cancel()
    await asyncio.sleep(0)
    assert writer.waiting == 0
    kept = writer.expect(["b"])
    assert writer.waiting == 1
    await writer.write([rule_event(1, event_id="b")])
    assert kept.done() and writer.waiting == 0


async def test_failing_database_is_retried_and_loses_nothing(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="smartcity.storage.writer")
    bus = EventBus()
    sub = bus.subscribe("writer", maxsize=50, overflow=Overflow.BLOCK)
    writer = EventWriter(db, batch_size=40, max_wait_ms=1, max_backoff_s=0.1)
    events = [rule_event(i) for i in range(300)]
    committed = writer.expect(e.event_id for e in events)
    task = asyncio.create_task(writer.run(sub))
    try:
        async with table_renamed(db, "events"):
            publisher = asyncio.create_task(bus.publish_many(events))
            for _ in range(200):
                if writer.failures >= 3:
                    break
                await asyncio.sleep(0.02)
            assert writer.failures >= 3
            assert writer.failing and writer.last_error is not None and "events" in writer.last_error
            # backpressure: the producer is blocked, nothing was dropped or committed
            assert not publisher.done()
            assert sub.qsize() == 50 and sub.dropped == 0
            assert writer.committed == 0 and not committed.done()
        await asyncio.wait_for(committed, 30)
        await asyncio.wait_for(publisher, 30)
    finally:
        sub.close()
        await asyncio.wait_for(task, 30)
    assert not writer.failing
    assert writer.committed == 300 and writer.duplicates == 0
    assert await scalar(db, "SELECT count(DISTINCT event_id) FROM events") == 300
    messages = [r.getMessage() for r in caplog.records if r.name == "smartcity.storage.writer"]
    assert sum("write failed" in m for m in messages) == 1
    assert sum("recovered" in m for m in messages) == 1


async def test_sqlite_lock_held_by_another_process_is_waited_out(tmp_path: object) -> None:
    from smartcity.storage.db import migrate

    url = f"sqlite+aiosqlite:///{tmp_path}/locked.db"
    await migrate(url)
    db = Database(url, sqlite_busy_timeout_ms=30)
    try:
        writer = EventWriter(db, max_wait_ms=1, max_backoff_s=0.05)
        bus = EventBus()
        sub = bus.subscribe("writer")
        task = asyncio.create_task(writer.run(sub))
        async with write_lock(db):
            await bus.publish_many([rule_event(i) for i in range(10)])
            for _ in range(100):
                if writer.failures >= 2:
                    break
                await asyncio.sleep(0.02)
            assert writer.failures >= 2 and "locked" in str(writer.last_error)
        sub.close()
        await asyncio.wait_for(task, 30)
        assert writer.committed == 10
        assert await scalar(db, "SELECT count(*) FROM events") == 10
    finally:
        await db.dispose()


async def test_direct_write_raises_and_counts_the_failure(db: Database) -> None:
    writer = EventWriter(db)
    async with table_renamed(db, "events"):
        with pytest.raises(Exception, match="events"):
            await writer.write([rule_event(1)])
    assert (writer.failures, writer.committed, writer.batches) == (1, 0, 0)
    assert await writer.write([rule_event(1)]) == 1


async def test_count_buckets_upsert_is_idempotent_and_never_goes_back(db: Database) -> None:
    writer = EventWriter(db)

    async def counts() -> dict[tuple[str, float], int]:
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT direction, bucket_start, n FROM counts"))).all()
        return {(d, s): n for d, s, n in rows}

    # within one batch, the newest total of a bucket wins (whatever the order)
    await writer.write([bucket(5, 20.0, event_id="b2"), bucket(3, 10.0, event_id="b1")])
    assert await counts() == {("in", 600.0): 5}
    await writer.write([bucket(5, 20.0, event_id="b2")])  # redelivery
    await writer.write([bucket(3, 10.0, event_id="b1-again")])  # stale total
    assert await counts() == {("in", 600.0): 5}
    await writer.write([bucket(8, 30.0, event_id="b3"), bucket(2, 31.0, event_id="o1", direction="out")])
    await writer.write([bucket(1, 40.0, event_id="b4", start=660.0)])
    assert await counts() == {("in", 600.0): 8, ("out", 600.0): 2, ("in", 660.0): 1}
    assert await scalar(db, "SELECT count(*) FROM events") == 0  # counts are not events


async def test_incident_upsert_keeps_newest_and_never_reopens(db: Database) -> None:
    writer = EventWriter(db)

    def incident(t: float, state: IncidentState, count: int, eid: str) -> Incident:
        return Incident(
            event_id=eid,
            camera_id="c1",
            t=t,
            incident_id="inc-1",
            rule_id="r1",
            kind="fall",
            severity=Severity.CRITICAL,
            state=state,
            camera_ids=("c1", "c2"),
            first_seen=1.0,
            last_seen=t,
            count=count,
            event_ids=tuple(f"e{i}" for i in range(count)),
        )

    async def row() -> tuple[object, ...]:
        async with db.engine.connect() as conn:
            r = (await conn.execute(text("SELECT state, count, last_seen, severity FROM incidents"))).one()
        return tuple(r)

    await writer.write([incident(10.0, IncidentState.OPEN, 1, "i1")])
    assert await row() == ("open", 1, 10.0, "critical")
    await writer.write([incident(20.0, IncidentState.ACKNOWLEDGED, 2, "i2")])
    await writer.write([incident(15.0, IncidentState.OPEN, 9, "i-stale")])  # older: ignored
    assert await row() == ("acknowledged", 2, 20.0, "critical")
    await writer.write([incident(30.0, IncidentState.OPEN, 3, "i3")])  # newer, but no reopening
    assert await row() == ("acknowledged", 3, 30.0, "critical")
    repo_rows = await EventRepo(db).list_events()
    assert repo_rows == []  # incidents are not events
    async with db.engine.connect() as conn:
        ids = (await conn.execute(text("SELECT camera_ids, event_ids FROM incidents"))).one()
    decoded = [v if isinstance(v, list) else json.loads(v) for v in ids]
    assert decoded == [["c1", "c2"], ["e0", "e1", "e2"]]


async def test_mixed_batch_resolves_waiters_of_every_kind(db: Database) -> None:
    writer = EventWriter(db)
    batch: list[Event] = [rule_event(1), bucket(1, 1.0, event_id="cb1")]
    done = writer.expect(["ev-c1-1", "cb1"])
    await writer.write(batch)
    assert done.done()
    assert writer.committed == 2


async def test_non_finite_numbers_in_payloads_are_stored_as_null(db: Database) -> None:
    ev = RuleEvent(
        event_id="nan",
        camera_id="c1",
        t=1.0,
        rule_id="r",
        rule_type="speed",
        kind="x",
        payload={"speed": float("nan"), "trail": [1.0, float("inf")], "ok": 2},
    )
    summary = DetectionSummary(event_id="s", camera_id="c1", t=2.0, frames=1, window_s=float("inf"))
    assert await EventWriter(db).write([ev, summary]) == 2
    rows = {r["event_id"]: r["payload"] for r in await EventRepo(db).list_events()}
    assert rows["nan"] == {"speed": None, "trail": [1.0, None], "ok": 2}
    assert rows["s"]["window_s"] is None


async def test_recent_ids_are_bounded_and_redeliveries_do_not_evict_early(db: Database) -> None:
    writer = EventWriter(db, remember_ids=5)
    await writer.write([rule_event(i) for i in range(5)])
    await writer.write([rule_event(0), rule_event(1)])  # redelivered: already remembered
    await writer.write([rule_event(5)])  # evicts the oldest, ev-c1-0
    assert writer.expect(["ev-c1-1", "ev-c1-5"]).done()
    forgotten = writer.expect(["ev-c1-0"])
    assert not forgotten.done()  # committed too long ago to be remembered: resolves on redelivery
    await writer.write([rule_event(0)])
    assert forgotten.done()
