from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.actors.spool import EventSpool, SpoolFull


def test_append_read_ack_and_reopen_keeps_order_and_sequence(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    sp = EventSpool(path, max_events=100)
    assert sp.append([{"n": i} for i in range(5)]) == [1, 2, 3, 4, 5]
    assert [e.seq for e in sp.read(after=2, limit=10)] == [3, 4, 5]
    assert sp.read(after=0, limit=2)[1].body == {"n": 1, "seq": 2}
    assert sp.ack(3) == 3
    assert sp.pending == 2
    sp.close()

    # a restarted actor sees the unacknowledged events with the same seq and continues after
    sp = EventSpool(path, max_events=100)
    assert [e.body["n"] for e in sp.read(after=0, limit=10)] == [3, 4]
    assert sp.append([{"n": 5}]) == [6]
    sp.ack(6)
    sp.close()
    # even once everything is acknowledged, sequence numbers are never reused
    sp = EventSpool(path, max_events=100)
    assert sp.pending == 0
    assert sp.append([{"n": 6}]) == [7]
    sp.close()


def test_bound_is_enforced_unless_forced(tmp_path: Path) -> None:
    sp = EventSpool(tmp_path / "g.sqlite", max_events=3)
    sp.append([{}, {}, {}])
    with pytest.raises(SpoolFull, match="3 unacknowledged"):
        sp.append([{}])
    assert sp.append([{}], force=True) == [4]
    assert sp.pending == 4
    sp.close()
