"""The actor's durable outbox: order, sequence numbers and evidence snapshots survive a restart;
outboxes written by the version before the event envelope are still read."""

from __future__ import annotations

import base64
import json
import pickle
import sqlite3
from pathlib import Path

import pytest

from smartcity.actors.spool import EventSpool, SpoolFull
from smartcity.core.events import CameraHealth, CameraState, CountBucket, EventEnvelope, RuleEvent


def bucket(n: int) -> CountBucket:
    return CountBucket(camera_id="c", t=float(n), rule_id="r", object_class="car", direction="in",
                       bucket_start=0.0, bucket_s=60, n=n)


def test_append_read_ack_and_reopen_keeps_order_and_sequence(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    sp = EventSpool(path, max_events=100)
    events = [bucket(i) for i in range(5)]
    assert sp.append(events) == [1, 2, 3, 4, 5]
    assert [e.seq for e in sp.read(after=2, limit=10)] == [3, 4, 5]
    assert sp.read(after=0, limit=2)[1] == EventEnvelope(events[1], 2, None)
    assert sp.ack(3) == 3
    assert sp.pending == 2
    sp.close()

    # a restarted actor sees the unacknowledged events with the same seq and continues after
    sp = EventSpool(path, max_events=100)
    assert [e.event for e in sp.read(after=0, limit=10)] == events[3:]
    assert sp.append([bucket(5)]) == [6]
    sp.ack(6)
    sp.close()
    # even once everything is acknowledged, sequence numbers are never reused
    sp = EventSpool(path, max_events=100)
    assert sp.pending == 0
    assert sp.append([bucket(6)]) == [7]
    sp.close()


def test_bound_is_enforced_unless_forced(tmp_path: Path) -> None:
    sp = EventSpool(tmp_path / "g.sqlite", max_events=3)
    sp.append([bucket(0), bucket(1), bucket(2)])
    with pytest.raises(SpoolFull, match="3 unacknowledged"):
        sp.append([bucket(3)])
    assert sp.append([bucket(3)], force=True) == [4]
    assert sp.pending == 4
    sp.close()


def test_evidence_is_spooled_with_its_event_and_health_carries_the_outbox_seq(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    sp = EventSpool(path)
    shot = RuleEvent(camera_id="c", t=1.0, rule_id="r", rule_type="dwell", kind="dwell_exceeded")
    plain = RuleEvent(camera_id="c", t=2.0, rule_id="r", rule_type="dwell", kind="dwell_exceeded")
    health = CameraHealth(camera_id="c", t=3.0, group="g", state=CameraState.ONLINE)
    sp.append([shot, plain], evidence={shot.event_id: b"\xff\xd8jpeg\xff\xd9"}, force=True)
    sp.append([health])
    sp.close()
    sp = EventSpool(path)  # the snapshot survives the actor's restart with its event
    got = sp.read(after=0, limit=10)
    sp.close()
    assert got[0] == EventEnvelope(shot, 1, b"\xff\xd8jpeg\xff\xd9")
    assert pickle.loads(pickle.dumps(got[0])) == got[0]  # as Ray hands it to the server
    assert got[1] == EventEnvelope(plain, 2, None)
    assert isinstance(got[2].event, CameraHealth) and got[2].event.seq == 3 and got[2].seq == 3


def test_an_outbox_of_the_previous_version_is_read_with_its_evidence(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    shot = RuleEvent(camera_id="c", t=1.0, rule_id="r", rule_type="dwell", kind="dwell_exceeded")
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE spool (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    old.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    body = {**shot.to_dict(), "seq": 7, "evidence_jpeg_b64": base64.b64encode(b"old-jpeg").decode()}
    old.execute("INSERT INTO spool VALUES (7, ?)", (json.dumps(body),))
    old.execute("INSERT INTO spool VALUES (8, ?)", (json.dumps({"type": "no_such_event", "seq": 8}),))
    old.execute("INSERT INTO meta VALUES ('last_seq', 8)")
    old.commit()
    old.close()
    sp = EventSpool(path)
    assert sp.read(after=0, limit=10) == [EventEnvelope(shot, 7, b"old-jpeg")]
    # the unreadable row is dropped and counted, so that it neither blocks the cursor nor returns
    assert (sp.unreadable, sp.pending) == (1, 1)
    assert sp.read(after=7, limit=10) == []
    assert sp.append([bucket(9)]) == [9]
    sp.close()
