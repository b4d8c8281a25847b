"""Webhooks (signed JSON, retries, dead letter, replay) and MQTT (real Mosquitto, topic tree,
QoS 1, retained camera status) through the outbox."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest
from aiohttp import web
from alert_helpers import Harness, rule_event

from smartcity.core.clock import SystemClock
from smartcity.core.events import CameraHealth, CameraState, CountBucket
from smartcity.core.incidents import DeliveryState
from smartcity.integrations.channels.mqtt import MqttSender
from smartcity.integrations.channels.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from smartcity.integrations.config import AlertsConfig
from smartcity.storage.db import Database

pytestmark = pytest.mark.postgres

SECRET = "webhook-secret-0123456789"
MQTT_HOST = os.environ.get("SMARTCITY_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("SMARTCITY_TEST_MQTT_PORT", "1883"))


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.valid: list[bool] = []
        self.keys: list[str] = []
        self.statuses: list[int] = []  # answered in order, then 200
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.valid.append(
            verify_signature(SECRET, request.headers[TIMESTAMP_HEADER], body, request.headers[SIGNATURE_HEADER], now=time.time())
        )
        self.keys.append(request.headers[IDEMPOTENCY_HEADER])
        self.bodies.append(json.loads(body))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r


def config(port: int, **over: Any) -> AlertsConfig:
    cfg: dict[str, Any] = {
        "webhooks": [{"name": "ops", "url": f"http://127.0.0.1:{port}/hook", "secret": SECRET}],
        "policies": [{"name": "all", "notify": [{"channel": "webhook", "target": "ops"}]}],
        "dispatcher": {"poll_s": 0.05, "backoff_initial_s": 0.02, "backoff_max_s": 0.05, "max_attempts": 3},
    }
    cfg.update(over)
    return AlertsConfig.model_validate(cfg)


async def _until(pred: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_webhook_is_signed_retried_and_dead_lettered_then_replayed(pg_db: Database, receiver: Receiver) -> None:
    receiver.statuses = [503, 500, 502]  # three failures: max_attempts reached
    async with Harness(pg_db, config(receiver.port), SystemClock()) as h:
        await h.publish(rule_event())

        async def dead() -> bool:
            return [r.state for r in await h.deliveries()] == [DeliveryState.DEAD]

        await _until(dead)
        [row] = await h.deliveries()
        assert row.attempts == 3 and "3 attempts" in (row.last_error or "")
        assert await h.a.outbox.list_deliveries(state=DeliveryState.DEAD) == [row]
        replayed = await h.a.actions.replay_delivery(row.id)
        assert replayed.attempts == 0
        h.a.dispatcher.notify()

        async def delivered() -> bool:
            return [r.state for r in await h.deliveries()] == [DeliveryState.DELIVERED]

        await _until(delivered)
    assert len(receiver.bodies) == 4 and all(receiver.valid)
    assert set(receiver.keys) == {row.idempotency_key}
    body = receiver.bodies[-1]
    assert body["type"] == "incident_alert" and body["incident"]["kind"] == "intrusion"
    assert body["incident"]["camera_ids"] == ["cam-1"] and body["idempotency_key"] == row.idempotency_key


def test_signature_verification_rejects_tampering_and_stale_timestamps() -> None:
    from smartcity.integrations.channels.webhook import sign

    sig = sign(SECRET, "1000.000", b'{"a":1}')
    assert verify_signature(SECRET, "1000.000", b'{"a":1}', sig, now=1000)
    assert not verify_signature(SECRET, "1000.000", b'{"a":2}', sig, now=1000)
    assert not verify_signature("another-secret-xxxxxxxx", "1000.000", b'{"a":1}', sig, now=1000)
    assert not verify_signature(SECRET, "1000.000", b'{"a":1}', sig, now=1000 + 301)


async def test_a_client_error_fails_permanently_without_retry(pg_db: Database, receiver: Receiver) -> None:
    receiver.statuses = [400]
    async with Harness(pg_db, config(receiver.port), SystemClock()) as h:
        await h.publish(rule_event())

        async def failed() -> bool:
            return [r.state for r in await h.deliveries()] == ["failed"]

        await _until(failed)
    assert len(receiver.bodies) == 1


async def _mqtt_available() -> bool:
    try:
        async with aiomqtt.Client(MQTT_HOST, MQTT_PORT, timeout=2):
            return True
    except aiomqtt.MqttError:
        return False


async def test_mqtt_topic_tree_with_qos1_and_retained_camera_status(pg_db: Database) -> None:
    if not await _mqtt_available():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"no MQTT broker at {MQTT_HOST}:{MQTT_PORT} (required when CI=true)")
        pytest.skip(f"no MQTT broker at {MQTT_HOST}:{MQTT_PORT}")
    prefix = f"sctest{uuid.uuid4().hex[:8]}"
    cfg = AlertsConfig.model_validate(
        {
            "mqtt": {"host": MQTT_HOST, "port": MQTT_PORT, "topic_prefix": prefix, "client_id": f"sc-{prefix}"},
            "policies": [{"name": "all", "notify": [{"channel": "mqtt", "target": "operators"}]}],
            "dispatcher": {"poll_s": 0.05},
        }
    )
    got: dict[str, list[tuple[dict[str, Any], int, bool]]] = {}
    async with aiomqtt.Client(MQTT_HOST, MQTT_PORT, identifier=f"sub-{prefix}") as sub:
        await sub.subscribe(f"{prefix}/#", qos=1)
        async with Harness(pg_db, cfg, SystemClock()) as h:
            mqtt = h.a.channels["mqtt"]
            assert isinstance(mqtt, MqttSender) and await mqtt.link.wait_connected(5)
            ev = rule_event(camera="cam/1")
            await h.publish(ev)
            await h.bus.publish(CameraHealth(camera_id="cam/1", t=time.time(), group="g", state=CameraState.ONLINE))
            await h.bus.publish(CountBucket(camera_id="cam/1", t=time.time(), rule_id="line-1", object_class="car",
                                            direction="in", bucket_start=0.0, bucket_s=60, n=3))
            wanted = {f"{prefix}/alerts/operators", f"{prefix}/cameras/cam_1/status", f"{prefix}/counts/cam_1/line-1",
                      f"{prefix}/events/cam_1/intrusion"}
            async with asyncio.timeout(10):
                async for m in sub.messages:
                    got.setdefault(str(m.topic), []).append((json.loads(m.payload), m.qos, m.retain))  # type: ignore[arg-type]
                    if wanted <= set(got) and any(t.startswith(f"{prefix}/incidents/") for t in got):
                        break
            [row] = await h.deliveries()
            await _until(lambda: _state(h, row.id, DeliveryState.DELIVERED))
        # a late subscriber gets the retained camera status
        async with aiomqtt.Client(MQTT_HOST, MQTT_PORT, identifier=f"late-{prefix}") as late:
            await late.subscribe(f"{prefix}/cameras/+/status", qos=1)
            async with asyncio.timeout(5):
                async for m in late.messages:
                    assert m.retain and json.loads(m.payload)["state"] == "online"  # type: ignore[arg-type]
                    break
            await late.publish(f"{prefix}/cameras/cam_1/status", b"", qos=1, retain=True)  # clear it
    alert, qos, _ = got[f"{prefix}/alerts/operators"][0]
    assert qos == 1 and alert["incident"]["camera_ids"] == ["cam/1"]
    assert got[f"{prefix}/events/cam_1/intrusion"][0][0]["event_id"] == ev.event_id
    assert got[f"{prefix}/counts/cam_1/line-1"][0][0]["n"] == 3
    assert all(q == 1 for msgs in got.values() for _, q, _ in msgs)


async def _state(h: Harness, delivery_id: int, state: str) -> bool:
    rows = await h.a.outbox.list_deliveries_by_id([delivery_id])
    return bool(rows) and rows[0].state == state
