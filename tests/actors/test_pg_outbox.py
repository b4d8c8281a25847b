"""The camera-group outbox in PostgreSQL: a group reopened anywhere (another node) serves the
unacknowledged events of the previous actor with the same sequence numbers and snapshots, and
an older actor still running after the takeover is fenced off instead of numbering twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from smartcity.actors.pg_outbox import OutboxFenced, OutboxUnavailable, PostgresOutbox
from smartcity.actors.spool import SpoolFull
from smartcity.core.events import CameraHealth, CameraState, CountBucket, EventEnvelope, RuleEvent
from smartcity.storage.db import libpq_dsn


def bucket(n: int) -> CountBucket:
    return CountBucket(
        camera_id="c",
        t=float(n),
        rule_id="r",
        object_class="car",
        direction="in",
        bucket_start=0.0,
        bucket_s=60,
        n=n,
    )


@pytest.fixture
def dsn(pg_url: str) -> Iterator[str]:
    dsn = libpq_dsn(pg_url)
    yield dsn
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS actor_outbox, actor_outbox_owner")


def test_a_group_reopened_elsewhere_serves_what_the_dead_actor_left(dsn: str) -> None:
    first = PostgresOutbox(dsn, "g1", max_events=100)
    shot = RuleEvent(camera_id="c", t=1.0, rule_id="r", rule_type="dwell", kind="dwell_exceeded")
    events = [bucket(0), shot, bucket(2)]
    assert first.append(events, evidence={shot.event_id: b"\xff\xd8jpeg"}, force=True) == [1, 2, 3]
    assert first.ack(1) == 1
    first.close()  # the node dies: nothing of it is needed any more

    second = PostgresOutbox(dsn, "g1", max_events=100)
    assert second.epoch == first.epoch + 1
    assert second.pending == 2
    assert second.read(after=1, limit=10) == [
        EventEnvelope(shot, 2, b"\xff\xd8jpeg"),
        EventEnvelope(events[2], 3, None),
    ]
    health = CameraHealth(camera_id="c", t=3.0, group="g1", state=CameraState.ONLINE)
    assert second.append([health]) == [4]  # numbering continues: no sequence number twice
    got = second.read(after=3, limit=10)
    assert isinstance(got[0].event, CameraHealth) and got[0].event.seq == 4
    assert second.ack(4) == 3
    assert second.pending == 0
    second.close()
    # other groups have their own numbering
    other = PostgresOutbox(dsn, "g2")
    assert other.append([bucket(9)]) == [1]
    other.close()


def test_an_actor_that_lost_its_outbox_to_a_newer_one_is_fenced(dsn: str) -> None:
    old = PostgresOutbox(dsn, "g1")
    assert old.append([bucket(0)]) == [1]
    new = PostgresOutbox(dsn, "g1")  # the reconciler restarted the group while the old one ran on
    with pytest.raises(OutboxFenced, match="taken over"):
        old.append([bucket(1)])
    assert new.append([bucket(2)]) == [2]
    assert [e.seq for e in new.read(after=0, limit=10)] == [1, 2]
    old.close()
    new.close()


def test_bound_is_enforced_unless_forced(dsn: str) -> None:
    box = PostgresOutbox(dsn, "g1", max_events=2)
    box.append([bucket(0), bucket(1)])
    with pytest.raises(SpoolFull, match="2 unacknowledged"):
        box.append([bucket(2)])
    assert box.append([bucket(2)], force=True) == [3]
    box.close()


def test_a_lost_connection_records_nothing_then_reconnects(dsn: str) -> None:
    import psycopg

    box = PostgresOutbox(dsn, "g1")
    first, second = bucket(0), bucket(1)
    assert box.append([first]) == [1]
    with psycopg.connect(dsn, autocommit=True) as admin:  # the database restarts under the actor
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'smartcity-outbox:g1'"
        )
    with pytest.raises(OutboxUnavailable):
        box.append([second])  # not recorded: the actor keeps it and appends it again
    assert box.append([second]) == [2]  # reconnected; the numbering went on without a gap
    assert [e.event for e in box.read(after=0, limit=10)] == [first, second]
    box.close()
