"""The `mqtt` channel (aiomqtt): its config (the `alerts.mqtt` section), one reconnecting broker
link, the alert sender and the live bridge of bus events.

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
from typing import Any, Literal

import aiomqtt
from pydantic import Field, SecretStr

from smartcity.core.bus import EventBus, Overflow, Subscription
from smartcity.core.errors import SubscriptionClosed
from smartcity.core.events import CameraHealth, CountBucket, Event, Incident, RuleEvent
from smartcity.core.incidents import DeliveryRecord, DeliveryState, IncidentRecord
from smartcity.integrations.channel import (
    AlertChannel,
    ChannelConfig,
    ChannelContext,
    TransientDeliveryError,
    expect_config,
    register_channel,
)
from smartcity.integrations.messages import alert_document

log = logging.getLogger(__name__)

QOS = 1


class MqttConfig(ChannelConfig):
    type: Literal["mqtt"] = "mqtt"
    host: str = Field("127.0.0.1", description="Broker host.", min_length=1, max_length=255)
    port: int = Field(1883, description="Broker TCP port.", ge=1, le=65535)
    username: str | None = Field(None, description="Broker user name.", max_length=200)
    password: SecretStr | None = Field(None, description="Broker password.")
    client_id: str = Field("smartcity", description="MQTT client identifier.", min_length=1, max_length=64)
    topic_prefix: str = Field("smartcity", description="Root of the topic tree.", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    publish_events: bool = Field(True, description="Publish every rule event.")
    publish_counts: bool = Field(True, description="Publish count buckets.")
    publish_incidents: bool = Field(True, description="Publish every incident change.")
    publish_camera_status: bool = Field(True, description="Publish camera health (retained).")
    queue_size: int = Field(
        10_000, description="Live events held while the broker is away; the oldest are dropped and counted.", ge=10, le=1_000_000
    )
    reconnect_max_s: float = Field(30.0, description="Longest delay between reconnection attempts.", gt=0, le=600)


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


@register_channel
class MqttSender(AlertChannel):
    """The `mqtt` alert channel: the alert document on {prefix}/alerts/{target}; it also runs
    the broker link and the live bridge (started and stopped with alerting)."""

    type = "mqtt"
    config_model = MqttConfig
    cfg: MqttConfig

    def __init__(self, cfg: ChannelConfig, ctx: ChannelContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg = expect_config(cfg, MqttConfig)
        self.link = MqttLink(self.cfg)
        self.bridge = MqttBridge(self.link, ctx.bus)
        self.clock = ctx.clock
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def outbound_hosts(cls, cfg: ChannelConfig) -> list[tuple[str, str]]:
        return [("host", expect_config(cfg, MqttConfig).host)]

    async def start(self) -> None:
        self._tasks.append(self.ctx.supervisor.start("mqtt-link", self.link.run))
        self._tasks.append(self.ctx.supervisor.start("mqtt-bridge", self.bridge.run))

    async def send(self, delivery: DeliveryRecord, incident: IncidentRecord) -> DeliveryState:
        doc = alert_document(delivery, incident, self.clock.time())
        topic = f"{self.link.cfg.topic_prefix}/alerts/{topic_part(delivery.target)}"
        await self.link.publish(topic, json.dumps(doc, separators=(",", ":")).encode())
        return DeliveryState.DELIVERED

    async def close(self) -> None:
        for task in reversed(self._tasks):
            task.cancel()
        for task in reversed(self._tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("MQTT task %s failed while stopping", task.get_name())
        self._tasks.clear()
        self.bridge.close()


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
