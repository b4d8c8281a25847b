"""SortedBatch (pure): how one writer batch is split by table and de-duplicated."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smartcity.core.events import CameraHealth, CameraState, CountBucket, Event, RuleEvent
from smartcity.storage.bulk import EVENT_COLUMNS, SortedBatch, event_row


def _event(kind: int, eid: str, t: float) -> Event:
    if kind == 0:
        return RuleEvent(event_id=eid, camera_id="c", t=t, rule_id="r", rule_type="line", kind="x")
    if kind == 1:
        return CameraHealth(event_id=eid, camera_id="c", t=t, group="g", state=CameraState.ONLINE)
    return CountBucket(
        event_id=eid, camera_id="c", t=t, rule_id="r", object_class="car", direction="in",
        bucket_start=0.0, bucket_s=60, n=int(t),
    )  # fmt: skip


events_st = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from("abcdefgh"), st.floats(0, 100, allow_nan=False)), max_size=40
)


@given(events_st)
def test_each_id_once_in_first_seen_order_and_repeats_counted(spec: list[tuple[int, str, float]]) -> None:
    batch = [_event(k, eid, t) for k, eid, t in spec]
    sorted_ = SortedBatch.of(batch)
    first_seen = list(dict.fromkeys(e.event_id for e in batch))
    assert sorted_.ids == first_seen
    assert sorted_.repeated == len(batch) - len(first_seen)
    firsts = {}
    for e in batch:
        firsts.setdefault(e.event_id, e)
    row_ids = [r[0] for r in sorted_.events]
    assert row_ids == [i for i in first_seen if not isinstance(firsts[i], CountBucket)]
    buckets = [e for e in firsts.values() if isinstance(e, CountBucket)]
    if buckets:
        # all buckets are totals of one part: the largest (the latest running total) is kept
        (kept,) = sorted_.counts.values()
        assert kept.n == max(b.n for b in buckets)
    else:
        assert sorted_.counts == {}


def test_event_row_matches_the_column_order() -> None:
    ev = RuleEvent(
        event_id="e", camera_id="c", t=1.5, rule_id="r", rule_type="zone", kind="enter",
        object_class="bus", track_id=7, payload={"a": [1, 2]}, evidence_path="p.jpg",
    )  # fmt: skip
    assert dict(zip(EVENT_COLUMNS, event_row(ev))) == {
        "event_id": "e",
        "type": "rule_event",
        "camera_id": "c",
        "t": 1.5,
        "rule_id": "r",
        "rule_type": "zone",
        "kind": "enter",
        "object_class": "bus",
        "track_id": 7,
        "severity": "info",
        "payload": '{"a":[1,2]}',
        "evidence_path": "p.jpg",
    }
