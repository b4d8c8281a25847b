"""Benchmark: events through EventBus -> EventWriter -> database, committed and verified.

Publishes N events in chunks the way the Ray bridge does (register `writer.expect(ids)`, publish,
await the commit), re-publishes a slice to prove redeliveries are ignored, then counts rows and
distinct ids. Baseline: one INSERT + commit per event through the same Database.

    python bench/bus.py --quick            # 100k events, < 60 s
    python bench/bus.py --events 1000000
    python bench/bus.py --quick --sqlite   # the embedded default instead of PostgreSQL

PostgreSQL: SMARTCITY_BENCH_PG (default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres);
the benchmark creates and drops a database of its own. The last line printed is a JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smartcity.core.bus import EventBus, Overflow  # noqa: E402
from smartcity.core.events import (  # noqa: E402
    CameraHealth,
    CameraState,
    DetectionSummary,
    Event,
    RuleEvent,
    Severity,
)
from smartcity.storage.bulk import event_row  # noqa: E402
from smartcity.storage.db import Database, migrate  # noqa: E402
from smartcity.storage.tables import events as events_table  # noqa: E402
from smartcity.storage.writer import EventWriter  # noqa: E402

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def make_events(n: int, run: str) -> list[Event]:
    """A realistic mix: 90% rule events, 5% detection summaries, 5% camera health reports."""
    out: list[Event] = []
    t0 = 1.7e9
    for i in range(n):
        cam = f"cam-{i % 64:02d}"
        eid = f"{run}-{i:09d}"
        t = t0 + i * 0.001
        k = i % 20
        if k == 0:
            out.append(
                DetectionSummary(
                    event_id=eid,
                    camera_id=cam,
                    t=t,
                    frames=25,
                    window_s=5.0,
                    detections_by_class={"car": i % 7, "person": i % 3},
                    active_tracks=i % 9,
                )
            )
        elif k == 1:
            out.append(
                CameraHealth(
                    event_id=eid,
                    camera_id=cam,
                    t=t,
                    group="g1",
                    state=CameraState.ONLINE,
                    seq=i,
                    input_fps=25.0,
                )
            )
        else:
            out.append(
                RuleEvent(
                    event_id=eid,
                    camera_id=cam,
                    t=t,
                    rule_id=f"{cam}-line-{i % 3}",
                    rule_type="line_count",
                    kind="crossing",
                    object_class=("car", "bus", "bicycle", "person")[i % 4],
                    track_id=i % 5000,
                    severity=Severity.INFO,
                    payload={"direction": "in" if i % 2 else "out", "speed_px_s": i % 97},
                )
            )
    return out


async def publish_like_the_bridge(
    bus: EventBus, writer: EventWriter, events: list[Event], chunk: int
) -> None:
    """Register the commit waiter, publish the chunk, move on; await every commit at the end."""
    pending = []
    for i in range(0, len(events), chunk):
        part = events[i : i + chunk]
        pending.append(writer.expect(e.event_id for e in part))
        await bus.publish_many(part)
    await asyncio.gather(*pending)


async def baseline(db: Database, events: list[Event]) -> float:
    """One INSERT and one commit per event (what a naive writer does)."""
    cols = [c.name for c in events_table.columns if c.name != "created_at"]
    start = time.perf_counter()
    for ev in events:
        row: dict[str, Any] = dict(zip(cols, event_row(ev)))
        row["payload"] = json.loads(row["payload"])
        row["created_at"] = time.time()
        async with db.engine.begin() as conn:
            await conn.execute(insert(events_table).values(**row))
    return len(events) / (time.perf_counter() - start)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    tmp: tempfile.TemporaryDirectory[str] | None = None
    admin_dsn = ""
    db_name = ""
    if args.sqlite:
        tmp = tempfile.TemporaryDirectory(prefix="smartcity-bench-")
        url = f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    else:
        admin = make_url(os.environ.get("SMARTCITY_BENCH_PG", DEFAULT_PG))
        admin_dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
        db_name = f"smartcity_bench_{os.getpid()}_{run_id}"
        conn = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{db_name}"')
        finally:
            await conn.close()
        url = admin.set(database=db_name).render_as_string(hide_password=False)
    try:
        await migrate(url)
        db = Database(url)
        try:
            return await measure(args, db, run_id)
        finally:
            await db.dispose()
    finally:
        if tmp is not None:
            tmp.cleanup()
        if db_name:
            conn = await asyncpg.connect(admin_dsn, timeout=10)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            finally:
                await conn.close()


async def measure(args: argparse.Namespace, db: Database, run_id: str) -> dict[str, Any]:
    events = make_events(args.events, run_id)
    republish = events[: max(1, args.events // 10)]
    bus = EventBus()
    sub = bus.subscribe("writer", maxsize=args.queue, overflow=Overflow.BLOCK)
    writer = EventWriter(db, batch_size=args.batch, max_wait_ms=args.max_wait_ms)
    task = asyncio.create_task(writer.run(sub))
    try:
        # warm up connections and statement caches outside the timed part
        warm = make_events(100, f"warm-{run_id}")
        await publish_like_the_bridge(bus, writer, warm, args.chunk)
        committed0, batches0 = writer.committed, writer.batches

        start = time.perf_counter()
        await publish_like_the_bridge(bus, writer, events, args.chunk)
        seconds = time.perf_counter() - start
        committed, batches = writer.committed - committed0, writer.batches - batches0

        # a redelivery: its ids were committed moments ago, so the waiters resolve at once;
        # the writer still receives the events and must ignore every one of them
        dup_before = writer.duplicates
        await publish_like_the_bridge(bus, writer, republish, args.chunk)
    finally:
        sub.close("benchmark over")
        await task  # returns once the subscription is drained
    ignored = writer.duplicates - dup_before

    async with db.engine.connect() as conn:
        pattern = f"{run_id}-%"
        rows = (
            await conn.execute(
                text("SELECT count(*), count(DISTINCT event_id) FROM events WHERE event_id LIKE :p"),
                {"p": pattern},
            )
        ).one()
    n_rows, n_distinct = int(rows[0]), int(rows[1])

    base_events = make_events(args.baseline, f"base-{run_id}")
    base_rate = await baseline(db, base_events)
    rate = args.events / seconds
    return {
        "bench": "bus",
        "db": db.dialect,
        "events": args.events,
        "seconds": round(seconds, 3),
        "events_per_s": round(rate),
        "baseline_events": args.baseline,
        "baseline_events_per_s": round(base_rate),
        "speedup": round(rate / base_rate, 1),
        "lost": args.events - n_distinct,
        "duplicates": n_rows - n_distinct,
        "republished": len(republish),
        "duplicates_ignored": ignored,
        "committed": committed,
        "batches": batches,
        "mean_batch": round(committed / max(batches, 1)),
        "batch_size": args.batch,
        "writer_failures": writer.failures,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="100k events, 2k baseline (under a minute)")
    p.add_argument(
        "--events", type=int, default=None, help="events to push (default 1,000,000; quick 100,000)"
    )
    p.add_argument("--baseline", type=int, default=2000, help="events for the one-commit-per-event baseline")
    p.add_argument("--batch", type=int, default=5000, help="writer batch size")
    p.add_argument("--max-wait-ms", type=float, default=20.0, help="writer max wait for a fuller batch")
    p.add_argument("--queue", type=int, default=50_000, help="writer subscription size")
    p.add_argument("--chunk", type=int, default=2000, help="events per bridge publish")
    p.add_argument("--sqlite", action="store_true", help="use a temporary SQLite file instead of PostgreSQL")
    args = p.parse_args()
    if args.events is None:
        args.events = 100_000 if args.quick else 1_000_000
    result = asyncio.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
