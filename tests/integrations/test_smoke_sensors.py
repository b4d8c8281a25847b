"""IoT smoke detectors over MQTT (real Mosquitto on loopback): an alarm becomes a critical rule
event fused with the camera's own fire or smoke alert into one incident; bad payloads are
rejected with a reason and counted."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

import aiomqtt
import pytest

from smartcity.core.bus import EventBus
from smartcity.core.clock import SystemClock
from smartcity.core.events import RuleEvent, Severity
from smartcity.core.supervisor import TaskSupervisor
from smartcity.fusion.engine import FusionEngine
from smartcity.integrations.smoke_sensors import Rejected, SmokeSensors, SmokeSensorsConfig, parse_reading

MQTT_HOST = os.environ.get("SMARTCITY_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("SMARTCITY_TEST_MQTT_PORT", "1883"))


def config(topic: str) -> SmokeSensorsConfig:
    return SmokeSensorsConfig.model_validate(
        {
            "mqtt": {"host": MQTT_HOST, "port": MQTT_PORT, "client_id": f"t-{uuid.uuid4().hex[:8]}"},
            "topic": f"{topic}/+",
            "sensors": {"hall-b-07": {"camera_id": "cam-hall", "location": "Hall B, 2nd floor"}},
        }
    )


def test_bad_payloads_name_their_problem() -> None:
    cfg = config("x")
    bad = parse_reading(b"{not json", cfg)
    assert isinstance(bad, Rejected) and bad.reason == "not_json" and bad.message.startswith("not JSON")
    too_big = parse_reading(b" " * 5000, cfg)
    assert isinstance(too_big, Rejected) and too_big.reason == "too_large"
    wrong = parse_reading(json.dumps({"sensor_id": "hall-b-07", "state": "burning"}).encode(), cfg)
    assert isinstance(wrong, Rejected) and wrong.reason == "invalid" and wrong.message.startswith("state:")
    extra = parse_reading(json.dumps({"sensor_id": "hall-b-07", "state": "alarm", "x": 1}).encode(), cfg)
    assert isinstance(extra, Rejected) and extra.message.startswith("x:")
    unknown = parse_reading(json.dumps({"sensor_id": "nope", "state": "alarm"}).encode(), cfg)
    assert isinstance(unknown, Rejected) and unknown.reason == "unknown_sensor"


def test_a_sensor_alarm_and_the_cameras_fire_make_one_incident() -> None:
    engine = FusionEngine()
    now = time.time()
    cam = RuleEvent(
        camera_id="cam-hall",
        t=now,
        rule_id="fire-1",
        rule_type="fire",
        kind="fire",
        severity=Severity.CRITICAL,
    )
    first = engine.ingest(cam, now)
    sensor = RuleEvent(
        camera_id="cam-hall",
        t=now + 5,
        rule_id="sensor.hall-b-07",
        rule_type="smoke_detector",
        kind="smoke",
        severity=Severity.CRITICAL,
    )
    second = engine.ingest(sensor, now + 5)
    assert first.opened and not second.opened
    assert second.incident.incident_id == first.incident.incident_id and second.incident.count == 2
    elsewhere = RuleEvent(
        camera_id="cam-other",
        t=now + 6,
        rule_id="sensor.x",
        rule_type="smoke_detector",
        kind="smoke",
        severity=Severity.CRITICAL,
    )
    assert engine.ingest(elsewhere, now + 6).opened  # another camera without a shared site: its own incident


async def test_mqtt_alarm_reaches_the_bus_and_bad_messages_are_counted() -> None:
    topic = f"test/smoke/{uuid.uuid4().hex[:8]}"
    bus, sup = EventBus(), TaskSupervisor()
    sub = bus.subscribe("test", [RuleEvent])
    sensors = SmokeSensors(config(topic), bus, SystemClock())
    sup.start("smoke-sensors", sensors.run)
    try:
        try:
            await asyncio.wait_for(sensors.subscribed.wait(), 10)
        except TimeoutError:
            if os.environ.get("CI") == "true":
                raise
            pytest.skip(f"no MQTT broker at {MQTT_HOST}:{MQTT_PORT}")
        async with aiomqtt.Client(MQTT_HOST, MQTT_PORT, identifier=f"pub-{uuid.uuid4().hex[:8]}") as pub:
            await pub.publish(f"{topic}/hall-b-07", b"\xff garbage", qos=1)
            await pub.publish(
                f"{topic}/hall-b-07", json.dumps({"sensor_id": "hall-b-07", "state": "test"}), qos=1
            )
            alarm = {
                "sensor_id": "hall-b-07",
                "state": "alarm",
                "kind": "smoke",
                "t": 1_765_000_000.5,
                "battery_pct": 80,
            }
            await pub.publish(f"{topic}/hall-b-07", json.dumps(alarm), qos=1)
        [ev] = await asyncio.wait_for(sub.get_batch(10), 10)
        assert ev.kind == "smoke" and ev.camera_id == "cam-hall" and ev.severity is Severity.CRITICAL
        assert ev.t == 1_765_000_000.5 and ev.payload["location"] == "Hall B, 2nd floor"
        assert sensors.rejected == {"not_json": 1} and sensors.states == {"test": 1, "alarm": 1}
    finally:
        await sup.stop()
