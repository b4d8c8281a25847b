"""Count buckets in storage: late parts add up, redeliveries change nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

from smartcity.analytics.counts import CountAggregator
from smartcity.storage.db import Database
from smartcity.storage.register import count_series
from smartcity.storage.writer import EventWriter


async def _series(db: Database, bucket_s: int = 60) -> list[tuple[float, str, int]]:
    # the reader behind the GraphQL `counts` query
    rows = await count_series(
        db, camera_id="cam", rule_id="line", object_class=None, direction=None, bucket_s=bucket_s, since=0.0,
        until=3600.0,
    )  # fmt: skip
    return [(r["bucket_start"], r["direction"], r["n"]) for r in rows]


async def test_a_late_part_adds_to_its_bucket_and_redeliveries_change_nothing(db: Database) -> None:
    writer = EventWriter(db)
    agg = CountAggregator("cam")
    for t in (5.0, 15.0, 25.0):
        agg.add("line", "car", "in", t)
    first = agg.buckets(flush_before=60.0)  # minute [0, 60) handed out for good: n = 3
    await writer.write(first)
    agg.add("line", "car", "in", 59.0)  # confirmed late, interpolated back into that minute
    late = agg.buckets()
    await writer.write(late)
    assert await _series(db) == [(0.0, "in", 4)]
    # at-least-once: both batches again, together and in the other order
    await writer.write(late + first)
    await writer.write(first)
    assert await _series(db) == [(0.0, "in", 4)]
    assert await _series(db, 3600) == [(0.0, "in", 4)]


async def test_two_totals_of_one_part_in_one_batch_keep_the_larger(db: Database) -> None:
    writer = EventWriter(db)
    agg = CountAggregator("cam")
    agg.add("line", "car", "out", 70.0)
    one = agg.buckets()
    agg.add("line", "car", "out", 80.0)
    two = agg.buckets()
    # a writer that fell behind gets both running totals of the bucket in one batch
    await writer.write(one + two)
    assert await _series(db) == [(60.0, "out", 2)]
    await writer.write(one)  # a stale redelivery never lowers it
    assert await _series(db) == [(60.0, "out", 2)]
