"""Emergency dispatch (`cap` channel): CAP 1.2 Alert/Update/Cancel valid against the OASIS XSD,
signed POSTs to a loopback endpoint, Twilio voice calls and SMS through the real SDK to the
loopback Twilio, the confirm_first policy, the audit log, and the Atom feed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from alert_helpers import ACCOUNT_SID, AUTH_TOKEN, AsgiServer, Harness
from cap_receiver import CapReceiver
from lxml import etree
from pydantic import ValidationError
from starlette.applications import Starlette
from twilio_loopback import LoopbackTwilio

from smartcity.core.clock import SystemClock
from smartcity.core.events import RuleEvent, Severity
from smartcity.core.incidents import DeliveryState
from smartcity.integrations.cap_config import CapConfig
from smartcity.integrations.cap_feed import cap_routes
from smartcity.integrations.cap_message import ATOM_NS, CapArea, CapMessage, MsgType, to_xml, validation_error
from smartcity.integrations.channels.cap import CapDispatch
from smartcity.integrations.config import AlertsConfig
from smartcity.storage.audit_repo import AuditRepo
from smartcity.storage.db import Database

SECRET = "cap-endpoint-secret-0123456789"
FEED_TOKEN = "feed-token-0123456789abcdef"
ONCALL = "+33600000001"


def cap_config(endpoint: str, twilio: str, **dispatch: Any) -> AlertsConfig:
    section: dict[str, Any] = {
        "sender": "video@massy.example",
        "language": "fr-FR",
        "utc_offset_min": 60,
        "public_url": "http://127.0.0.1:9",
        "feed_token": FEED_TOKEN,
        "places": {"cam-1": {"lat": 48.7309, "lon": 2.2713, "address": "1 place de France, Massy"}},
        "endpoints": [{"name": "sdis", "url": endpoint, "secret": SECRET}],
        "twilio": {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "from_number": "+33100000000",
            "api_base_url": twilio,
        },
    }
    section.update(dispatch)
    return AlertsConfig.model_validate(
        {
            "dispatch": section,
            "policies": [
                {
                    "name": "fire",
                    "kinds": ["fire"],
                    "notify": [
                        {"channel": "cap", "target": "sdis"},
                        {"channel": "cap", "target": f"voice:{ONCALL}"},
                        {"channel": "cap", "target": f"sms:{ONCALL}"},
                    ],
                }
            ],
            "dispatcher": {"poll_s": 0.05, "backoff_initial_s": 0.05, "backoff_max_s": 0.2, "lease_s": 5},
        }
    )


def fire_event(camera: str = "cam-1") -> RuleEvent:
    return RuleEvent(
        camera_id=camera,
        t=time.time(),
        rule_id="fire-1",
        rule_type="fire",
        kind="fire",
        severity=Severity.CRITICAL,
    )


@pytest.fixture
async def endpoint() -> AsyncIterator[CapReceiver]:
    async with CapReceiver(SECRET) as r:
        yield r


async def _until(pred: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _message(**over: Any) -> CapMessage:
    fields: dict[str, Any] = {
        "identifier": "i.alert",
        "sender": "video@city.example",
        "sent": 1_765_000_000.0,
        "msg_type": MsgType.ALERT,
        "status": "Actual",
        "scope": "Restricted",
        "restriction": "emergency services",
        "language": "en-US",
        "category": "Fire",
        "event": "Fire",
        "urgency": "Immediate",
        "severity": "Extreme",
        "certainty": "Likely",
        "headline": "Fire",
        "description": "d",
        "area": CapArea("1 main street", 48.7, 2.27, 0.1),
    }
    fields.update(over)
    return CapMessage(**fields)


def test_cap_documents_follow_the_oasis_schema_and_times_carry_offsets() -> None:
    doc = to_xml(_message(utc_offset_min=60))
    assert validation_error(doc) is None
    assert b"<sent>2025-12-06T06:46:40+01:00</sent>" in doc
    cancel = to_xml(
        _message(
            msg_type=MsgType.CANCEL, references=("video@city.example,i.alert,2025-12-06T05:46:40+00:00",)
        )
    )
    assert validation_error(cancel) is None
    zulu = doc.replace(b"+01:00</sent>", b"Z</sent>")
    assert "sent" in (validation_error(zulu) or "")
    bad_category = to_xml(_message(category="Fires"))
    assert "category" in (validation_error(bad_category) or "")


def test_dispatch_config_rejects_unknown_targets_and_numbers() -> None:
    with pytest.raises(ValidationError, match="unknown cap target 'nobody'"):
        AlertsConfig.model_validate(
            {
                "dispatch": {
                    "sender": "v@c.example",
                    "endpoints": [{"name": "sdis", "url": "http://127.0.0.1:1/", "secret": SECRET}],
                },
                "policies": [{"name": "p", "notify": [{"channel": "cap", "target": "nobody"}]}],
            }
        )
    with pytest.raises(ValidationError, match="needs a dispatch.twilio section"):
        AlertsConfig.model_validate(
            {
                "dispatch": {"sender": "v@c.example"},
                "policies": [{"name": "p", "notify": [{"channel": "cap", "target": "voice:+33600000001"}]}],
            }
        )
    with pytest.raises(ValidationError, match="sender"):
        AlertsConfig.model_validate({"dispatch": {"sender": "has space"}})


@pytest.mark.postgres
async def test_immediate_alert_call_sms_then_operator_cancel(
    pg_db: Database, endpoint: CapReceiver, twilio_server: LoopbackTwilio
) -> None:
    cfg = cap_config(endpoint.url, twilio_server.base_url)
    async with Harness(pg_db, cfg, SystemClock(), audit=AuditRepo(pg_db)) as h:
        await h.publish(fire_event())
        [alert] = await endpoint.wait("Alert")
        await twilio_server.wait_calls(1)
        await twilio_server.wait_messages(1)
        assert alert.signed and alert.schema_error is None
        assert alert.field("info/category") == "Fire" and alert.field("info/certainty") == "Likely"
        assert alert.field("info/area/circle") == "48.730900,2.271300 0.1"
        assert "place de France" in alert.field("info/area/areaDesc")
        assert alert.field("info/resource/uri").startswith("http://127.0.0.1:9/integrations/cap/evidence/")
        assert alert.field("sent").endswith("+01:00")
        [call] = twilio_server.calls
        assert call.to == ONCALL and '<Say language="fr-FR"' in call.twiml and "Incendie" in call.twiml
        assert twilio_server.messages[0].body.startswith("[ALERT]")
        [incident_id] = {r.incident_id for r in await h.deliveries()}
        ch = h.a.channels["cap"]
        assert isinstance(ch, CapDispatch)
        assert [e.message.msg_type for e in ch.feed_entries()] == [MsgType.ALERT]

        await h.a.actions.dismiss(incident_id, by="alice", comment="a barbecue")
        [cancel] = await endpoint.wait("Cancel")
        await twilio_server.wait_messages(2)
        assert cancel.signed and cancel.schema_error is None
        assert alert.field("identifier") in cancel.field("references")
        assert twilio_server.messages[1].body.startswith("[CANCELLED]")
        assert len(twilio_server.calls) == 1  # a cancellation is not a second call
        assert ch.feed_entries() == []

        async def audited() -> bool:
            actions = [r.action for r in await AuditRepo(pg_db).page(actor="dispatch")]
            return sorted(actions) == ["dispatch.alert"] * 3 + ["dispatch.cancel"] * 2

        await _until(audited)


@pytest.mark.postgres
async def test_confirm_first_waits_for_the_operator_then_goes_out_confirmed(
    pg_db: Database, endpoint: CapReceiver, twilio_server: LoopbackTwilio
) -> None:
    cfg = cap_config(
        endpoint.url,
        twilio_server.base_url,
        sites={"centre": {"mode": "confirm_first", "confirm_within_s": 600}},
    )
    async with Harness(pg_db, cfg, SystemClock(), sites={"cam-1": "centre"}, audit=AuditRepo(pg_db)) as h:
        await h.publish(fire_event())

        async def deferred() -> bool:
            rows = await h.deliveries()
            return len(rows) == 3 and all("awaiting an operator" in (r.last_error or "") for r in rows)

        await _until(deferred)
        assert endpoint.received == [] and twilio_server.calls == []
        [incident_id] = {r.incident_id for r in await h.deliveries()}
        await h.a.actions.acknowledge(incident_id, by="alice")
        [alert] = await endpoint.wait("Alert")
        await twilio_server.wait_calls(1)
        assert alert.field("info/certainty") == "Observed"
        assert endpoint.of_type("Update") == []  # confirmed before it went out: one Alert, no Update

        async def audited() -> bool:
            audit = [r.action for r in await AuditRepo(pg_db).page(actor="dispatch")]
            return "dispatch.awaiting_confirmation" in audit and audit.count("dispatch.alert") == 3

        await _until(audited)


@pytest.mark.postgres
async def test_confirm_first_goes_out_unconfirmed_after_the_delay(
    pg_db: Database, endpoint: CapReceiver, twilio_server: LoopbackTwilio
) -> None:
    cfg = cap_config(
        endpoint.url,
        twilio_server.base_url,
        default_policy={"mode": "confirm_first", "confirm_within_s": 0.3},
    )
    async with Harness(pg_db, cfg, SystemClock(), audit=AuditRepo(pg_db)) as h:
        await h.publish(fire_event("cam-1"))
        [alert] = await endpoint.wait("Alert")
        assert alert.field("info/certainty") == "Likely"


@pytest.mark.postgres
async def test_confirm_first_dismissed_in_time_sends_nothing(
    pg_db: Database, endpoint: CapReceiver, twilio_server: LoopbackTwilio
) -> None:
    cfg = cap_config(
        endpoint.url,
        twilio_server.base_url,
        default_policy={"mode": "confirm_first", "confirm_within_s": 600},
    )
    async with Harness(pg_db, cfg, SystemClock(), audit=AuditRepo(pg_db)) as h:
        await h.publish(fire_event())

        async def waiting() -> bool:
            rows = [r for r in await h.deliveries() if r.state == DeliveryState.PENDING]
            return len(rows) == 3 and all("awaiting" in (r.last_error or "") for r in rows)

        await _until(waiting)
        incident_id = next(r.incident_id for r in await h.deliveries() if r.state == DeliveryState.PENDING)
        await h.a.actions.dismiss(incident_id, by="bob", comment="false alarm")

        async def withheld() -> bool:
            rows = [r for r in await h.deliveries() if r.incident_id == incident_id]
            return all(r.state == DeliveryState.CANCELLED for r in rows)

        await _until(withheld)
        assert endpoint.received == [] and twilio_server.calls == [] and twilio_server.messages == []


@pytest.mark.postgres
async def test_atom_feed_lists_active_alerts_behind_its_token(
    pg_db: Database, endpoint: CapReceiver, twilio_server: LoopbackTwilio
) -> None:
    cfg = cap_config(endpoint.url, twilio_server.base_url)
    async with Harness(pg_db, cfg, SystemClock(), audit=AuditRepo(pg_db)) as h:
        ch = h.a.channels["cap"]
        assert isinstance(ch, CapDispatch)

        async def no_evidence(event_id: str) -> None:
            return None

        async with (
            AsgiServer(Starlette(routes=cap_routes(lambda: ch, no_evidence))) as srv,
            httpx.AsyncClient() as client,
        ):
            await h.publish(fire_event())
            [alert] = await endpoint.wait("Alert")
            assert (await client.get(f"{srv.url}/integrations/cap/feed.atom")).status_code == 401
            auth = {"Authorization": f"Bearer {FEED_TOKEN}"}
            resp = await client.get(f"{srv.url}/integrations/cap/feed.atom", headers=auth)
            assert resp.status_code == 200
            feed = etree.fromstring(resp.content)
            [link] = feed.findall(f"{{{ATOM_NS}}}entry/{{{ATOM_NS}}}link")
            path = link.get("href", "").replace("http://127.0.0.1:9", "")
            doc = await client.get(f"{srv.url}{path}", headers=auth)
            assert doc.status_code == 200 and doc.content == alert.body
            uri = alert.field("info/resource/uri").replace("http://127.0.0.1:9", srv.url)
            assert (await client.get(uri)).status_code == 404  # signed and valid, but no picture stored
            assert (await client.get(uri.replace("sig=", "sig=0"))).status_code == 403


def test_readme_dispatch_example_validates() -> None:
    import re
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Emergency: fire, smoke and dispatch", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    cfg = AlertsConfig.model_validate(yaml.safe_load(block.group(1))["alerts"])
    assert cfg.smoke_sensors is not None and "hall-b-07" in cfg.smoke_sensors.sensors
    dispatch = cfg.channels["cap"]
    assert isinstance(dispatch, CapConfig) and dispatch.policy_for("x", "station").mode == "immediate"
