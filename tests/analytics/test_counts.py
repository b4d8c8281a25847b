"""CountAggregator parts: a crossing confirmed after its bucket was flushed is never lost."""

from __future__ import annotations

from smartcity.analytics.counts import CountAggregator, merge_parts, rollup


def test_a_crossing_added_after_its_bucket_was_flushed_opens_a_part_and_is_counted() -> None:
    agg = CountAggregator("cam")
    agg.add("line", "car", "in", 10.0)
    agg.add("line", "car", "in", 20.0)
    agg.add("line", "car", "out", 30.0)
    first = agg.buckets(flush_before=60.0)  # the minute [0, 60) is final and forgotten
    assert [(b.direction, b.n) for b in first] == [("in", 2), ("out", 1)]
    assert agg.snapshot() == []
    # confirmed late, interpolated back into the flushed minute: a new part of it
    agg.add("line", "car", "in", 59.5)
    agg.add("line", "car", "in", 70.0)
    late = agg.buckets()
    assert [(b.bucket_start, b.n) for b in late] == [(0.0, 1), (60.0, 1)]
    assert late[0].part != first[0].part
    agg.add("line", "car", "in", 58.0)  # the late part grows as a running total
    later = agg.buckets(flush_before=120.0)
    assert [(b.bucket_start, b.part, b.n) for b in later] == [(0.0, late[0].part, 2)]
    # every emission, redelivered and in any order, sums to the crossings per bucket
    emissions = first + late + later
    merged = merge_parts(emissions + emissions[::-1])
    assert [(b.bucket_start, b.direction, b.n) for b in merged] == [(0.0, "in", 4), (0.0, "out", 1), (60.0, "in", 1)]
    assert [(b.direction, b.n) for b in rollup(merged, 3600)] == [("in", 5), ("out", 1)]
    # each emission is its own event (a redelivery is the same event)
    assert len({b.event_id for b in emissions}) == len(emissions)


def test_parts_are_named_the_same_on_every_run_and_differ_between_aggregators() -> None:
    def run(times: list[float]) -> list[str]:
        agg = CountAggregator("cam")
        names = []
        for t in times:
            agg.add("line", "car", "in", t)
            names += [b.part for b in agg.buckets(flush_before=t)]
        return names

    assert run([10.0, 59.0, 61.0]) == run([10.0, 59.0, 61.0])
    # a camera restarted mid-minute (a new aggregator) starts another part of that minute
    assert run([10.0])[0] != run([12.5])[0]
