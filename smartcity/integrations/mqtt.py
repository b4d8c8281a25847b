"""MQTT (aiomqtt): one reconnecting broker link, the `mqtt` alert channel and the live bridge.

Topic tree (prefix `smartcity` by default; ids are sanitised: `/`, `+`, `#` become `_`):

    {prefix}/alerts/{target}                 alert documents of policies (outbox: at-least-once), QoS 1
    {prefix}/incidents/{incident_id}         every incident change (open, count, acknowledged...), QoS 1
    {prefix}/events/{camera_id}/{rule_type}  rule events, QoS 1
    {prefix}/counts/{camera_id}/{rule_id}    count buckets, QoS 1: `n` is the running total of
                                             one `part` of the bucket; a bucket's count is the
                                             sum over its parts of each part's largest `n`
    {prefix}/cameras/{camera_id}/status      camera health, QoS 1, retained

Payloads are JSON (`Event.to_dict()`, or the alert document). Alerts go through the outbox and
are never lost; the live bridge reads the bus through a DROP_OLDEST subscription of
`queue_size` items, so a broker outage drops (and counts) the oldest live items, never blocks
the core: the database remains the register.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiomqtt

from smartcity.core.bus import EventBus, Overflow, Subscription
from smartcity.core.clock import Clock
from smartcity.core.errors import SubscriptionClosed
from smartcity.core.events import CameraHealth, CountBucket, Event, Incident, RuleEvent
from smartcity.integrations.config import MqttConfig
from smartcity.integrations.dispatcher import TransientDeliveryError
from smartcity.integrations.messages import alert_document
from smartcity.storage.outbox import DELIVERED, DeliveryRow, IncidentRecord

log = logging.getLogger(__name__)

QOS = 1


def topic_part(s: str) -> str:
    return "".join("_" if c in "/+#\x00" else c for c in s) or "_"


def topic_for(prefix: str, ev: Event) -> tuple[str, bool] | None:
    """(topic, retained) of a live event, or None for events not published."""
    if isinstance(ev, Incident):
        return f"{prefix}/incidents/{topic_part(ev.incident_id)}", False
    if isinstance(ev, RuleEvent):
        return f"{prefix}/events/{topic_part(ev.camera_id)}/{topic_part(ev.rule_type)}", False
    if isinstance(ev, CountBucket):
        return f"{prefix}/counts/{topic_part(ev.camera_id)}/{topic_part(ev.rule_id)}", False
    if isinstance(ev, CameraHealth):
        return f"{prefix}/cameras/{topic_part(ev.camera_id)}/status", True
    return None


class MqttLink:
    """A broker connection kept up by `run()` (a supervised task), with backoff on failure."""

    def __init__(self, cfg: MqttConfig) -> None:
        self.cfg = cfg
        self._client: aiomqtt.Client | None = None
        self._connected = asyncio.Event()
        self.published = 0
        self.connects = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def run(self) -> None:
        delay = 0.2
        failing = False
        while True:
            try:
                async with aiomqtt.Client(
                    self.cfg.host,
                    self.cfg.port,
                    identifier=self.cfg.client_id,
                    username=self.cfg.username,
                    password=self.cfg.password.get_secret_value() if self.cfg.password else None,
                    timeout=10,
                ) as client:
                    self._client = client
                    self._connected.set()
                    self.connects += 1
                    delay = 0.2
                    if failing:
                        failing = False
                        log.warning("MQTT broker %s:%d reachable again", self.cfg.host, self.cfg.port)
                    async for _ in client.messages:  # ends with MqttError on disconnection
                        pass
            except aiomqtt.MqttError as exc:
                if not failing:
                    failing = True
                    log.error("MQTT broker %s:%d unavailable: %s", self.cfg.host, self.cfg.port, exc)
            finally:
                self._client = None
                self._connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.cfg.reconnect_max_s)

    async def wait_connected(self, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False, timeout_s: float = 10.0) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK; TransientDeliveryError if not."""
        if not await self.wait_connected(timeout_s):
            raise TransientDeliveryError(f"MQTT broker {self.cfg.host}:{self.cfg.port} not connected")
        client = self._client
        if client is None:
            raise TransientDeliveryError("MQTT connection lost")
        try:
            await client.publish(topic, payload, qos=QOS, retain=retain, timeout=timeout_s)
        except aiomqtt.MqttError as exc:
            raise TransientDeliveryError(f"MQTT publish to {topic}: {exc}") from exc
        self.published += 1


class MqttSender:
    """The `mqtt` alert channel: the alert document on {prefix}/alerts/{target}."""

    channel = "mqtt"

    def __init__(self, link: MqttLink, clock: Clock) -> None:
        self.link = link
        self.clock = clock

    async def send(self, delivery: DeliveryRow, incident: IncidentRecord) -> str:
        doc = alert_document(delivery, incident, self.clock.time())
        topic = f"{self.link.cfg.topic_prefix}/alerts/{topic_part(delivery.target)}"
        await self.link.publish(topic, json.dumps(doc, separators=(",", ":")).encode())
        return DELIVERED

    async def close(self) -> None:
        return None


class MqttBridge:
    """Publishes live bus events on the topic tree (see the module docstring)."""

    def __init__(self, link: MqttLink, bus: EventBus) -> None:
        self.link = link
        cfg = link.cfg
        types: list[type[Event]] = []
        if cfg.publish_events:
            types.append(RuleEvent)
        if cfg.publish_counts:
            types.append(CountBucket)
        if cfg.publish_incidents:
            types.append(Incident)
        if cfg.publish_camera_status:
            types.append(CameraHealth)
        self.sub: Subscription[Any] | None = (
            bus.subscribe("mqtt-bridge", types, maxsize=cfg.queue_size, overflow=Overflow.DROP_OLDEST) if types else None
        )
        self.failures = 0

    @property
    def dropped(self) -> int:
        return self.sub.dropped if self.sub is not None else 0

    async def run(self) -> None:
        if self.sub is None:
            return
        prefix = self.link.cfg.topic_prefix
        while True:
            try:
                ev = await self.sub.get()
            except SubscriptionClosed:
                return
            where = topic_for(prefix, ev)
            if where is None:
                continue
            payload = json.dumps(ev.to_dict(), separators=(",", ":"), default=str).encode()
            while True:
                try:
                    await self.link.publish(where[0], payload, retain=where[1])
                    break
                except TransientDeliveryError:
                    self.failures += 1
                    await asyncio.sleep(0.5)

    def close(self) -> None:
        if self.sub is not None:
            self.sub.close("mqtt bridge stopped")
