"""Outbox on SQLite and PostgreSQL: idempotent commits, leases, lifecycle moves, queries."""

from __future__ import annotations

import pytest

from smartcity.core.errors import NotFound, ValidationFailed
from smartcity.core.events import Incident, IncidentState, Severity
from smartcity.core.incidents import DeliveryState
from smartcity.storage.db import Database
from smartcity.storage.outbox import NewDelivery, Outbox

T = 1_700_000_000.0


def inc(iid: str = "i1", t: float = T, count: int = 1, cams: tuple[str, ...] = ("cam-1",),
        state: IncidentState = IncidentState.OPEN) -> Incident:
    return Incident(camera_id=cams[0], t=t, incident_id=iid, rule_id="r1", kind="intrusion", severity=Severity.HIGH,
                    state=state, camera_ids=cams, first_seen=T, last_seen=t, count=count, event_ids=("e1",))


async def test_commit_is_idempotent_and_newer_snapshots_win(db: Database) -> None:
    ob = Outbox(db)
    d = [NewDelivery("i1", "sms", "+1", "i1:0:sms", T), NewDelivery("i1", "sms", "+2", "i1:1:sms", T + 300, DeliveryState.SCHEDULED)]
    await ob.commit([inc(count=3, t=T + 3)], d, T)
    await ob.commit([inc(count=1, t=T + 1)], d, T)  # a stale redelivery
    rows = await ob.list_deliveries()
    assert [(r.target, r.state, r.updated_at) for r in rows] == [("+1", DeliveryState.PENDING, T), ("+2", DeliveryState.SCHEDULED, T + 300)]
    assert (await ob.get_incident("i1")).incident.count == 3


async def test_claim_leases_attempts_and_escalation_only_while_open(db: Database) -> None:
    ob = Outbox(db)
    await ob.commit([inc()], [NewDelivery("i1", "sms", "+1", "k0", T), NewDelivery("i1", "sms", "+2", "k1", T + 300, DeliveryState.SCHEDULED)], T)
    [c] = await ob.claim(T, lease_s=30)
    assert c.delivery.target == "+1" and c.delivery.attempts == 1 and c.delivery.updated_at == T + 30
    assert c.incident is not None and c.incident.incident.camera_ids == ("cam-1",)
    assert await ob.claim(T + 10, lease_s=30) == []  # leased
    [again] = await ob.claim(T + 31, lease_s=30)  # the lease ran out: the dispatcher died
    assert again.delivery.attempts == 2
    assert await ob.finish(again.delivery.id, DeliveryState.SENT, T + 32)
    assert not await ob.finish(again.delivery.id, DeliveryState.DEAD, T + 33)  # only from pending
    rec, cancelled = await ob.transition("i1", IncidentState.ACKNOWLEDGED, [IncidentState.OPEN], by="bob", at=T + 40)
    assert cancelled == 1 and rec.acknowledged_by == "bob" and rec.incident.state is IncidentState.ACKNOWLEDGED
    assert await ob.claim(T + 1000, lease_s=30) == []
    assert [r.state for r in await ob.list_deliveries()] == [DeliveryState.SENT, DeliveryState.CANCELLED]


async def test_transition_errors_leave_everything_unchanged(db: Database) -> None:
    ob = Outbox(db)
    await ob.commit([inc(state=IncidentState.RESOLVED)], [], T)
    with pytest.raises(ValidationFailed, match="from resolved to acknowledged"):
        await ob.transition("i1", IncidentState.ACKNOWLEDGED, [IncidentState.OPEN], by="x", at=T)
    with pytest.raises(NotFound):
        await ob.transition("nope", IncidentState.ACKNOWLEDGED, [IncidentState.OPEN], by="x", at=T)
    with pytest.raises(NotFound):
        await ob.replay(12345, T)
    assert (await ob.get_incident("i1")).incident.state is IncidentState.RESOLVED


async def test_list_incidents_filters(db: Database) -> None:
    ob = Outbox(db)
    await ob.commit([inc("a", cams=("cam-1", "cam-2")), inc("b", t=T + 5, cams=("cam-3",)),
                     inc("c", t=T + 9, state=IncidentState.DISMISSED)], [], T)
    assert [r.incident.incident_id for r in await ob.list_incidents(camera_id="cam-2")] == ["a"]
    assert [r.incident.incident_id for r in await ob.list_incidents(state=IncidentState.OPEN)] == ["b", "a"]
    assert [r.incident.incident_id for r in await ob.list_incidents(since=T + 1, until=T + 9)] == ["b"]
    assert [r.incident.incident_id for r in await ob.list_incidents(limit=1)] == ["c"]
