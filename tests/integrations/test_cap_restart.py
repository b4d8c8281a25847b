"""Emergency dispatch survives a server restart (SQLite and PostgreSQL): an operator's cancel
after a restart still sends the Cancel to every target that got the Alert, referencing that
Alert; a confirm_first delivery deferred before the restart goes out when confirmed after it,
or at once when its delay ended while the server was down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alert_helpers import Harness
from cap_receiver import CapReceiver
from test_cap_dispatch import ONCALL, SECRET, cap_config, fire_event
from twilio_loopback import LoopbackTwilio

from smartcity.core.clock import SystemClock
from smartcity.core.dispatch_state import DispatchRecord
from smartcity.core.incidents import DeliveryState
from smartcity.integrations.cap_message import message_from_json, message_to_json
from smartcity.integrations.channels.cap import CapDispatch
from smartcity.storage.audit_repo import AuditRepo
from smartcity.storage.cap_state import CapStateRepo
from smartcity.storage.db import Database, migrate


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of this test alone, on each dialect (PostgreSQL: created and migrated by the
    integrations conftest)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/restart.db"
    url: str = request.getfixturevalue("pg_db_url")
    return url


@pytest.fixture
async def db(fresh_url: str) -> AsyncIterator[Database]:
    await migrate(fresh_url)  # a no-op where the fixture migrated it
    database = Database(fresh_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def endpoint() -> AsyncIterator[CapReceiver]:
    async with CapReceiver(SECRET) as r:
        yield r


async def _incident_of(h: Harness) -> str:
    [incident_id] = {r.incident_id for r in await h.deliveries()}
    return incident_id


async def _deferred(h: Harness, n: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = [r for r in await h.deliveries() if r.state == DeliveryState.PENDING]
        if len(rows) == n and all("awaiting an operator" in (r.last_error or "") for r in rows):
            return
        assert time.monotonic() < deadline, f"deliveries not deferred: {rows}"
        await asyncio.sleep(0.02)


async def test_cancel_after_a_restart_reaches_the_targets_of_the_alert(
    db: Database, endpoint: CapReceiver, twilio_server: LoopbackTwilio
) -> None:
    cfg = cap_config(endpoint.url, twilio_server.base_url)
    async with Harness(db, cfg, SystemClock(), audit=AuditRepo(db)) as h:
        await h.publish(fire_event())
        [alert] = await endpoint.wait("Alert")
        await twilio_server.wait_calls(1)
        await twilio_server.wait_messages(1)
        incident_id = await _incident_of(h)
        for r in await h.deliveries():  # every send finished before the server goes down
            await h.wait_state(r.id, DeliveryState.DELIVERED if r.target == "sdis" else DeliveryState.SENT)
    # a new server process: nothing in memory, the same database
    async with Harness(db, cfg, SystemClock(), audit=AuditRepo(db)) as h2:
        ch = h2.a.channels["cap"]
        assert isinstance(ch, CapDispatch)
        assert [e.message.identifier for e in ch.feed_entries()] == [alert.field("identifier")]
        await h2.a.actions.dismiss(incident_id, by="alice", comment="a barbecue")
        [cancel] = await endpoint.wait("Cancel")
        await twilio_server.wait_messages(2)
        assert cancel.signed and cancel.schema_error is None
        # the reference names the Alert as it went out: sender, identifier and sent time
        assert cancel.field("references") == ",".join(
            (alert.field("sender"), alert.field("identifier"), alert.field("sent"))
        )
        assert twilio_server.messages[1].to == ONCALL and twilio_server.messages[1].body.startswith("[CANCELLED]")
        assert len(twilio_server.calls) == 1 and len(endpoint.received) == 2
        assert ch.feed_entries() == []
    stored = await CapStateRepo(db).get(incident_id)
    assert stored is not None and not stored.active and stored.followed == ("dismissed",)
    assert set(stored.targets) == {"sdis", f"sms:{ONCALL}", f"voice:{ONCALL}"}


async def test_confirm_after_a_restart_releases_the_deferred_alert_at_once(
    db: Database, endpoint: CapReceiver, twilio_server: LoopbackTwilio
) -> None:
    cfg = cap_config(
        endpoint.url, twilio_server.base_url, default_policy={"mode": "confirm_first", "confirm_within_s": 600}
    )
    async with Harness(db, cfg, SystemClock(), audit=AuditRepo(db)) as h:
        await h.publish(fire_event())
        await _deferred(h, 3)
        incident_id = await _incident_of(h)
    assert endpoint.received == [] and twilio_server.calls == []
    async with Harness(db, cfg, SystemClock(), audit=AuditRepo(db)) as h2:
        await h2.a.actions.acknowledge(incident_id, by="alice")
        [alert] = await endpoint.wait("Alert")  # 600 s early: released by the stored deferral
        await twilio_server.wait_calls(1)
        assert alert.field("info/certainty") == "Observed"


async def test_confirm_first_delay_that_ended_while_down_goes_out_at_start(
    db: Database, endpoint: CapReceiver, twilio_server: LoopbackTwilio
) -> None:
    # long enough that the deferred deliveries are seen before the delay ends, even on a loaded machine
    # (at 1 s, a run at load 10 saw them sent before it looked)
    delay_s = 4.0
    cfg = cap_config(
        endpoint.url, twilio_server.base_url, default_policy={"mode": "confirm_first", "confirm_within_s": delay_s}
    )
    async with Harness(db, cfg, SystemClock(), audit=AuditRepo(db)) as h:
        await h.publish(fire_event())
        await _deferred(h, 3)
        created = min(r.created_at for r in await h.deliveries())
    assert endpoint.received == []
    while time.time() < created + delay_s:  # the server is down while the delay ends
        await asyncio.sleep(0.05)
    async with Harness(db, cfg, SystemClock(), audit=AuditRepo(db)):
        [alert] = await endpoint.wait("Alert")
        assert alert.field("info/certainty") == "Likely"


async def test_stored_dispatch_round_trips_its_messages(db: Database) -> None:
    from test_cap_dispatch import _message

    repo = CapStateRepo(db)
    msg = _message(parameters=(("kind", "fire"),), references=("a,b,c",))
    assert message_from_json(message_to_json(msg)) == msg
    rec = DispatchRecord("inc-1", message_to_json(msg), ("e1",), ("sdis",), None, (), True, (4, 2), 5.0)
    await repo.save(rec)
    await repo.save(DispatchRecord("inc-2", None, waiting=(9,), updated_at=6.0))
    await repo.save(rec)  # written again: replaced, not duplicated
    assert [r.incident_id for r in await repo.recent(10)] == ["inc-2", "inc-1"]
    got = await repo.get("inc-1")
    assert got is not None and got.waiting == (2, 4) and message_from_json(got.alert or {}) == msg
    with pytest.raises(ValueError, match="not a stored CAP message"):
        message_from_json({"identifier": "x"})
