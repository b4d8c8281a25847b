"""A restart of the server does not make a second incident (nor a second alert) for the same
ongoing thing: fusion resumes the incidents still active in the register."""

from __future__ import annotations

import time

from alert_helpers import Harness, rule_event

from smartcity.core.clock import SystemClock
from smartcity.core.events import IncidentState
from smartcity.integrations.config import AlertsConfig
from smartcity.storage.db import Database, migrate
from smartcity.storage.writer import EventWriter


async def test_same_person_after_a_restart_extends_the_open_incident(db_url: str) -> None:
    await migrate(db_url)
    db = Database(db_url)
    writer = EventWriter(db)
    cfg = AlertsConfig.model_validate({})
    try:
        t0 = time.time()
        first = rule_event(track=7, t=t0)
        other = rule_event(track=9, t=t0)  # another person: its own incident, closed before the restart
        async with Harness(db, cfg, SystemClock()) as h:
            for ev in (first, other):
                await writer.write([ev])  # the register holds the events, as in the server
                await h.publish(ev)
            (closed,) = [r.incident for r in await h.a.outbox.list_incidents() if other.event_id in r.incident.event_ids]
            await h.a.actions.resolve(closed.incident_id, by="op", comment="left")
            assert len(await h.a.outbox.list_incidents()) == 2

        # a fresh server process: new fusion engine, same database
        async with Harness(db, cfg, SystemClock()) as h:
            again = rule_event(track=7, t=t0 + 5)
            await writer.write([again])
            await h.publish(again)
            back = rule_event(track=9, t=t0 + 5)  # the resolved one comes back: a new incident
            await writer.write([back])
            await h.publish(back)
            rows = await h.a.outbox.list_incidents()
        by_event = {e: r.incident for r in rows for e in r.incident.event_ids}
        assert len(rows) == 3, [(r.incident.state, r.incident.event_ids) for r in rows]
        assert by_event[again.event_id].incident_id == by_event[first.event_id].incident_id
        assert by_event[again.event_id].count == 2 and by_event[again.event_id].state is IncidentState.OPEN
        assert by_event[back.event_id].incident_id != by_event[other.event_id].incident_id
    finally:
        await db.dispose()
