"""SMS alerts end to end: fusion -> outbox (PostgreSQL) -> dispatcher -> real Twilio SDK ->
loopback Messages API -> signed status callbacks -> our Starlette route."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alert_helpers import (
    ACCOUNT_SID,
    BACKUP,
    ONCALL,
    AsgiServer,
    Harness,
    alerts_config,
    rule_event,
)
from starlette.applications import Starlette
from testkit import free_port
from twilio_loopback import LoopbackTwilio

from smartcity.core.clock import ManualClock, SystemClock
from smartcity.core.events import IncidentState
from smartcity.core.incidents import DeliveryState
from smartcity.integrations.channels.sms import STATUS_PATH, twilio_status_route
from smartcity.storage.db import Database

pytestmark = pytest.mark.postgres

@pytest.fixture
async def callback_server() -> AsyncIterator[tuple[AsgiServer, dict[str, Any]]]:
    holder: dict[str, Any] = {"alerting": None}
    app = Starlette(routes=[twilio_status_route(lambda: holder["alerting"].twilio_status if holder["alerting"] else None)])
    async with AsgiServer(app) as server:
        yield server, holder


async def test_an_incident_sends_one_sms_and_tracks_its_delivery(
    pg_db: Database, twilio_server: LoopbackTwilio, callback_server: tuple[AsgiServer, dict[str, Any]]
) -> None:
    server, holder = callback_server
    cfg = alerts_config(twilio_server.base_url, server.url + STATUS_PATH)
    async with Harness(pg_db, cfg, SystemClock()) as h:
        holder["alerting"] = h.a
        # three events of the same person in the zone: one incident, one SMS
        t0 = time.time()
        for i in range(3):
            await h.publish(rule_event(t=t0 + i))
        await twilio_server.wait_messages(1)
        rows = await h.deliveries()
        now_step = [r for r in rows if r.target == ONCALL]
        assert len(now_step) == 1
        delivered = await h.wait_state(now_step[0].id, DeliveryState.DELIVERED)
        assert delivered.attempts == 1
        incidents = await h.a.outbox.list_incidents()
        assert len(incidents) == 1 and incidents[0].incident.count == 3
        assert [r.state for r in rows if r.target == BACKUP] == [DeliveryState.SCHEDULED]
    assert len(twilio_server.messages) == 1
    msg = twilio_server.messages[0]
    assert msg.to == ONCALL and msg.from_ == "+15559999999"
    assert "intrusion" in msg.body and "HIGH" in msg.body
    assert msg.idempotency_key == now_step[0].idempotency_key
    assert ("delivered", 204) in twilio_server.callbacks_sent


async def test_two_server_errors_then_success_make_exactly_one_message(
    pg_db: Database, twilio_server: LoopbackTwilio
) -> None:
    twilio_server.fail_statuses = [500, 500]
    async with Harness(pg_db, alerts_config(twilio_server.base_url, None), SystemClock()) as h:
        await h.publish(rule_event())
        await twilio_server.wait_messages(1)
        [row] = [r for r in await h.deliveries() if r.target == ONCALL]
        sent = await h.wait_state(row.id, DeliveryState.SENT)
        await asyncio.sleep(0.3)  # no further attempt comes
    assert twilio_server.requests == 3
    assert len(twilio_server.messages) == 1
    assert sent.attempts == 3
    assert h.a.dispatcher.retried == 2


async def test_a_forged_status_callback_is_rejected_and_changes_nothing(
    pg_db: Database,
    twilio_server: LoopbackTwilio,
    callback_server: tuple[AsgiServer, dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, holder = callback_server
    url = server.url + STATUS_PATH
    cfg = alerts_config(twilio_server.base_url, url)
    async with Harness(pg_db, cfg, SystemClock()) as h:
        holder["alerting"] = h.a
        # no automatic callbacks: the test sends its own
        twilio_server.final_status = "sent"
        await h.publish(rule_event())
        await twilio_server.wait_messages(1)
        [row] = [r for r in await h.deliveries() if r.target == ONCALL]
        await h.wait_state(row.id, DeliveryState.SENT)
        cb = f"{url}?delivery={row.id}"
        params = {"MessageSid": twilio_server.messages[0].sid, "MessageStatus": "failed", "AccountSid": ACCOUNT_SID}
        forged = twilio_server.signed(cb, params, token="not-the-auth-token")
        assert await twilio_server.post_callback(cb, params, forged) == 403
        assert await twilio_server.post_callback(cb, params, "") == 403
        tampered = twilio_server.signed(cb, {**params, "MessageStatus": "delivered"})
        assert await twilio_server.post_callback(cb, params, tampered) == 403
        assert (await h.wait_state(row.id, DeliveryState.SENT)).state == DeliveryState.SENT
        # a forged MessageSid cannot forge log lines: control characters are escaped
        lure = {**params, "MessageSid": "SM1\nCRITICAL smartcity.auth: admin password changed\r\x1b[2J"}
        assert await twilio_server.post_callback(cb, lure, "") == 403
        assert h.a.twilio_status is not None and h.a.twilio_status.rejected == 4
        # the genuine one is applied: failed -> the backup is escalated to at once
        assert await twilio_server.post_callback(cb, params, twilio_server.signed(cb, params)) == 204
        await twilio_server.wait_messages(2)
    assert twilio_server.messages[1].to == BACKUP
    assert "invalid signature" in caplog.text
    rejected = [r.getMessage() for r in caplog.records if "invalid signature" in r.getMessage()]
    assert any("SM1\\nCRITICAL" in m and "\\x1b[2J" in m for m in rejected), rejected
    assert not any(c in m for m in rejected for c in "\n\r\x1b"), rejected


async def test_acknowledging_stops_the_escalation(pg_db: Database, twilio_server: LoopbackTwilio) -> None:
    clock = ManualClock(start=time.time())
    async with Harness(pg_db, alerts_config(twilio_server.base_url, None), clock) as h:
        await h.publish(rule_event(t=clock.time()))
        await twilio_server.wait_messages(1)
        # nobody acknowledges for 5 minutes: the backup is alerted
        await clock.advance(301)
        h.a.dispatcher.notify()
        await twilio_server.wait_messages(2)
        assert [m.to for m in twilio_server.messages] == [ONCALL, BACKUP]

        # a second incident, acknowledged before its escalation is due
        await h.publish(rule_event(camera="cam-2", track=9, t=clock.time()))
        await twilio_server.wait_messages(3)
        [inc] = list(await h.a.outbox.list_incidents(camera_id="cam-2"))
        rec = await h.a.actions.acknowledge(inc.incident.incident_id, by="alice", comment="on my way")
        assert rec.incident.state is IncidentState.ACKNOWLEDGED
        assert rec.acknowledged_by == "alice" and rec.acknowledged_at == clock.time() and rec.comment == "on my way"
        await clock.advance(3600)
        h.a.dispatcher.notify()
        await asyncio.sleep(0.3)
        rows = await h.a.outbox.list_deliveries(incident_id=inc.incident.incident_id)
    assert len(twilio_server.messages) == 3
    assert sorted(r.state for r in rows) == [DeliveryState.CANCELLED, DeliveryState.SENT]


def test_free_port_helper_gives_a_bindable_port() -> None:
    assert 1024 < free_port() < 65536
