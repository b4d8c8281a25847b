"""IoT smoke and heat detectors over MQTT (the `alerts.smoke_sensors` section): their payload,
its validation, and the rule events an alarm becomes, fused with the camera's own fire and
smoke alerts into one incident (fusion correlates fire and smoke at a camera or site).

Payload (JSON object, at most 4 KiB), on any topic matching `topic`:

    {"sensor_id": "hall-b-2f-07", "state": "alarm", "kind": "smoke", "t": 1765000000.0, "battery_pct": 81}

- `sensor_id`: a sensor configured under `sensors` (which names the camera watching it);
- `state`: alarm | clear | test | fault. Only `alarm` raises an event; the others are counted;
- `kind`: smoke (default), fire or heat (heat is reported as fire);
- `t`: unix seconds of the reading (default: when received); `battery_pct`: 0-100, optional.

A payload that is not JSON, too large, of the wrong shape or from an unknown sensor is rejected
with a log line naming the problem and counted by reason (`SmokeSensors.rejected`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from smartcity.core.bus import EventBus
from smartcity.core.clock import Clock
from smartcity.core.events import RuleEvent, Severity
from smartcity.core.logsafe import safe

log = logging.getLogger(__name__)

MAX_PAYLOAD = 4096
SENSOR_NAMESPACE = uuid.UUID("0b7c4d3e-5f61-4a8e-9a51-3c2d1e0f4a77")
RULE_TYPE = "smoke_detector"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmokeSensor(_Model):
    camera_id: str = Field(
        description="Camera watching the sensor's place (its incident and evidence).",
        min_length=1,
        max_length=128,
    )
    location: str = Field("", description="Where the sensor is (shown to operators).", max_length=200)


class SensorMqtt(_Model):
    host: str = Field("127.0.0.1", description="MQTT broker host.", min_length=1, max_length=255)
    port: int = Field(1883, description="MQTT broker port.", ge=1, le=65535)
    username: str | None = Field(None, description="Broker user.", max_length=200)
    password: SecretStr | None = Field(None, description="Broker password.")
    client_id: str = Field(
        "smartcity-smoke-sensors", description="MQTT client id.", min_length=1, max_length=100
    )
    reconnect_max_s: float = Field(
        30.0, description="Longest wait between reconnection attempts.", gt=0, le=600
    )


class SmokeSensorsConfig(_Model):
    mqtt: SensorMqtt = Field(default_factory=SensorMqtt, description="The broker the detectors publish to.")
    topic: str = Field(
        "smartcity/sensors/smoke/+",
        description="Topic filter of the detectors' messages.",
        min_length=1,
        max_length=200,
    )
    sensors: dict[str, SmokeSensor] = Field(description="Known detectors by sensor_id.", max_length=100_000)


class SensorReading(_Model):
    """One detector message (see the module docstring)."""

    sensor_id: str = Field(min_length=1, max_length=128)
    state: Literal["alarm", "clear", "test", "fault"]
    kind: Literal["smoke", "fire", "heat"] = "smoke"
    t: float | None = Field(None, ge=0, le=1e11)
    battery_pct: float | None = Field(None, ge=0, le=100)


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str  # not_json, too_large, invalid, unknown_sensor
    message: str


def parse_reading(payload: bytes, cfg: SmokeSensorsConfig) -> SensorReading | Rejected:
    """The reading in a payload, or why it is rejected (a message naming the problem)."""
    if len(payload) > MAX_PAYLOAD:
        return Rejected("too_large", f"payload of {len(payload)} bytes (at most {MAX_PAYLOAD})")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        return Rejected("not_json", f"not JSON: {exc}")
    try:
        reading = SensorReading.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        return Rejected("invalid", f"{where}: {first['msg']} ({exc.error_count()} error(s))")
    if reading.sensor_id not in cfg.sensors:
        return Rejected("unknown_sensor", f"unknown sensor_id {reading.sensor_id!r}")
    return reading


def reading_event(reading: SensorReading, sensor: SmokeSensor, now: float) -> RuleEvent:
    """The rule event of an alarm: kind smoke or fire, critical, at the sensor's camera."""
    t = reading.t if reading.t is not None else now
    return RuleEvent(
        event_id=uuid.uuid5(SENSOR_NAMESPACE, f"{reading.sensor_id}/{round(t * 1000)}").hex,
        camera_id=sensor.camera_id,
        t=t,
        rule_id=f"sensor.{reading.sensor_id}"[:128],
        rule_type=RULE_TYPE,
        kind="smoke" if reading.kind == "smoke" else "fire",
        severity=Severity.CRITICAL,
        payload={
            "source": "iot",
            "sensor_id": reading.sensor_id,
            "location": sensor.location,
            "sensor_kind": reading.kind,
            "battery_pct": reading.battery_pct,
        },
    )


ClientFactory = Callable[[SensorMqtt], aiomqtt.Client]


def default_client(cfg: SensorMqtt) -> aiomqtt.Client:
    return aiomqtt.Client(
        cfg.host,
        cfg.port,
        identifier=cfg.client_id,
        username=cfg.username,
        password=cfg.password.get_secret_value() if cfg.password else None,
        timeout=10,
    )


class SmokeSensors:
    """Subscribes to the detectors' topic (a supervised task runs `run()`) and publishes an
    alarm's RuleEvent on the bus; `handle` is the whole path of one payload."""

    def __init__(
        self, cfg: SmokeSensorsConfig, bus: EventBus, clock: Clock, client: ClientFactory = default_client
    ) -> None:
        self.cfg = cfg
        self.bus = bus
        self.clock = clock
        self._factory = client
        self.rejected: Counter[str] = Counter()
        self.states: Counter[str] = Counter()
        self.alarms = 0
        self.connected = False
        self.subscribed = asyncio.Event()  # set while subscribed (tests wait for it)

    async def handle(self, payload: bytes, topic: str = "") -> RuleEvent | Rejected | None:
        got = parse_reading(payload, self.cfg)
        if isinstance(got, Rejected):
            self.rejected[got.reason] += 1
            log.warning("smoke sensor message on %s rejected: %s", safe(topic, 200), safe(got.message, 300))
            return got
        self.states[got.state] += 1
        if got.state == "fault":
            log.warning("smoke sensor %s reports a fault", got.sensor_id)
        if got.state != "alarm":
            return None
        ev = reading_event(got, self.cfg.sensors[got.sensor_id], self.clock.time())
        self.alarms += 1
        await self.bus.publish(ev)
        return ev

    async def run(self) -> None:
        delay = 0.2
        m = self.cfg.mqtt
        while True:
            try:
                async with self._factory(m) as client:
                    await client.subscribe(self.cfg.topic, qos=1)
                    if not self.connected:
                        log.info("smoke sensors: subscribed to %s on %s:%d", self.cfg.topic, m.host, m.port)
                    self.connected = True
                    self.subscribed.set()
                    delay = 0.2
                    async for message in client.messages:
                        if isinstance(message.payload, bytes | bytearray):
                            await self.handle(bytes(message.payload), message.topic.value)
                        else:
                            self.rejected["not_json"] += 1
            except aiomqtt.MqttError as exc:
                if self.connected or delay == 0.2:
                    log.warning("smoke sensors: MQTT broker %s:%d: %s (retrying)", m.host, m.port, exc)
                self.connected = False
            finally:
                self.subscribed.clear()
            await self.clock.sleep(delay)
            delay = min(delay * 2, m.reconnect_max_s)
