"""The `waste` extension's links to the outside: the MQTT broker (sensor readings in, plans out) and the fleet webhook."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

import aiomqtt
import httpx

from smartcity.core.clock import Clock

from .config import FleetPush, MqttConfig, SensorFormat
from .service import Ingested, WasteStats
from .store import StoredPlan

log = logging.getLogger(__name__)

QOS = 1
ClientFactory = Callable[[MqttConfig], aiomqtt.Client]
Ingest = Callable[[bytes, SensorFormat], Awaitable[Ingested]]


def default_client(cfg: MqttConfig) -> aiomqtt.Client:
    return aiomqtt.Client(
        cfg.host,
        cfg.port,
        identifier=cfg.client_id,
        username=cfg.username,
        password=cfg.password.get_secret_value() if cfg.password else None,
        timeout=10,
    )


class MqttIngest:
    """Keeps one broker connection (a supervised task runs `run()`), feeds every message on the
    configured topics to `ingest`, and publishes plans on it."""

    def __init__(self, cfg: MqttConfig, ingest: Ingest, clock: Clock, client: ClientFactory = default_client) -> None:
        self.cfg = cfg
        self._ingest = ingest
        self._clock = clock
        self._factory = client
        self._client: aiomqtt.Client | None = None
        self.subscribed = asyncio.Event()  # set while connected and subscribed

    def _format(self, topic: aiomqtt.Topic) -> SensorFormat | None:
        for t in self.cfg.topics:
            if topic.matches(t.topic):
                return t.format
        return None

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                async with self._factory(self.cfg) as client:
                    for t in self.cfg.topics:
                        await client.subscribe(t.topic, qos=QOS)
                    self._client = client
                    self.subscribed.set()
                    delay = 0.2
                    async for message in client.messages:
                        fmt = self._format(message.topic)
                        payload = message.payload
                        if fmt is None or not isinstance(payload, bytes | bytearray):
                            continue
                        got = await self._ingest(bytes(payload), fmt)
                        if got.outcome == "rejected":
                            log.warning("MQTT %s: %s", message.topic.value, got.message)
            except aiomqtt.MqttError as exc:
                log.warning("MQTT broker %s:%d: %s (retrying in %.1f s)", self.cfg.host, self.cfg.port, exc, delay)
            finally:
                self._client = None
                self.subscribed.clear()
            await self._clock.sleep(delay)
            delay = min(delay * 2, self.cfg.reconnect_max_s)

    async def publish(self, topic: str, body: bytes) -> None:
        client = self._client
        if client is None:
            raise ConnectionError(f"MQTT broker {self.cfg.host}:{self.cfg.port} not connected")
        await client.publish(topic, body, qos=QOS, retain=True)


class FleetSender:
    """Sends a plan to the fleet system: a webhook POST (retried) and/or an MQTT publish."""

    def __init__(
        self,
        cfg: FleetPush,
        stats: WasteStats,
        clock: Clock,
        mqtt: MqttIngest | None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.cfg = cfg
        self.stats = stats
        self.clock = clock
        self.mqtt = mqtt
        self.transport = transport

    @staticmethod
    def document(plan: StoredPlan) -> bytes:
        return json.dumps({"plan_id": plan.id, "created_at": plan.created_at, "trigger": plan.trigger, **plan.body}).encode()

    async def send(self, plan: StoredPlan) -> None:
        body = self.document(plan)
        if self.cfg.webhook_url is not None:
            ok = await self._webhook(self.cfg.webhook_url, body)
            self.stats.pushes["webhook:ok" if ok else "webhook:failed"] += 1
        if self.cfg.mqtt_topic is not None:
            ok = await self._mqtt(self.cfg.mqtt_topic, body)
            self.stats.pushes["mqtt:ok" if ok else "mqtt:failed"] += 1

    async def _webhook(self, url: str, body: bytes) -> bool:
        headers = {"content-type": "application/json", **self.cfg.webhook_headers}
        async with httpx.AsyncClient(transport=self.transport, timeout=self.cfg.timeout_s) as client:
            for attempt in range(self.cfg.attempts):
                try:
                    r = await client.post(url, content=body, headers=headers)
                    if r.status_code < 300:
                        return True
                    if r.status_code < 500 and r.status_code != 429:  # the receiver refuses it: retrying will not help
                        log.error("fleet webhook refused plan: HTTP %d", r.status_code)
                        return False
                    log.warning("fleet webhook: HTTP %d (attempt %d)", r.status_code, attempt + 1)
                except httpx.HTTPError as exc:
                    log.warning("fleet webhook: %s (attempt %d)", type(exc).__name__, attempt + 1)
                await self.clock.sleep(min(2.0**attempt, 30.0))
        return False

    async def _mqtt(self, topic: str, body: bytes) -> bool:
        if self.mqtt is None:
            return False
        for attempt in range(self.cfg.attempts):
            try:
                await self.mqtt.publish(topic, body)
                return True
            except (aiomqtt.MqttError, ConnectionError) as exc:
                log.warning("fleet MQTT push: %s (attempt %d)", exc, attempt + 1)
            await self.clock.sleep(min(2.0**attempt, 30.0))
        return False
