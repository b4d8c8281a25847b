"""The waste extension's links in the real app: readings from the real Mosquitto (127.0.0.1:1883)
in our JSON and as TTS v3 uplinks, plans pushed to the fleet system over MQTT and to a webhook
on a loopback HTTP server (retried after a 503, not after a 4xx)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import aiomqtt
import httpx
from test_waste_ingest import tts_uplink
from waste_harness import city, gql, native, running, token

from smartcity.core.clock import ManualClock
from smartcity.extensions.waste.config import FleetPush
from smartcity.extensions.waste.links import FleetSender
from smartcity.extensions.waste.service import WasteStats
from smartcity.extensions.waste.store import StoredPlan

PLAN = "mutation { planWasteRound { id routes { stops { binId } } } }"


async def _until(pred: object, what: str) -> None:
    for _ in range(500):
        if callable(pred) and pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not reached: {what}")


async def test_mqtt_readings_in_and_plan_out(tmp_path: Path) -> None:
    root = f"smartcity-test/{uuid.uuid4().hex[:12]}"
    entry = city(
        4,
        mqtt={
            "client_id": f"waste-{uuid.uuid4().hex[:8]}",
            "topics": [{"topic": f"{root}/readings", "format": "native"}, {"topic": f"{root}/tts/+/up", "format": "tts_v3"}],
        },
        fleet={"mqtt_topic": f"{root}/plans"},
    )
    now = time.time()
    async with running(tmp_path / "db.sqlite", entry) as (_server, client, ext):
        assert ext.mqtt is not None and ext.service is not None
        svc = ext.service
        await asyncio.wait_for(ext.mqtt.subscribed.wait(), 10)
        async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"t-{uuid.uuid4().hex[:8]}") as broker:
            await broker.subscribe(f"{root}/plans", qos=1)
            await broker.publish(f"{root}/readings", json.dumps(native("B00", 0.95, now - 60, "q-1")), qos=1)
            await broker.publish(f"{root}/readings", json.dumps(native("B00", 0.95, now - 60, "q-1")), qos=1)
            await broker.publish(f"{root}/readings", b"[1, 2]", qos=1)
            await broker.publish(f"{root}/tts/B03/up", json.dumps(tts_uplink("B03", 91.0, 5, "2026-05-04T07:00:00Z")), qos=1)
            await _until(lambda: svc.stats.accepted == 2 and svc.stats.duplicates == 1 and sum(svc.stats.rejected.values()) == 1, "readings")
            assert svc.stats.rejected == {"not_json": 1}
            op = await token(client, "chief")
            levels = {b["id"]: b["level"] for b in (await gql(client, "{ wasteBins { id level } }", op))["wasteBins"]}
            assert levels == {"B00": 0.95, "B01": None, "B02": None, "B03": 0.91}

            plan = (await gql(client, PLAN, op))["planWasteRound"]
            assert sorted(s["binId"] for r in plan["routes"] for s in r["stops"]) == ["B00", "B03"]
            async with asyncio.timeout(10):
                message = await anext(aiter(broker.messages))
            assert message.topic.value == f"{root}/plans"
            assert isinstance(message.payload, bytes)
            doc = json.loads(message.payload)
            assert doc["plan_id"] == plan["id"] and doc["trigger"] == "demand"
            assert sorted(s["bin_id"] for r in doc["routes"] for s in r["stops"]) == ["B00", "B03"]
            await broker.publish(f"{root}/plans", b"", qos=1, retain=True)  # clear the retained plan
        await _until(lambda: svc.stats.pushes["mqtt:ok"] == 1, "push counted")


class Receiver:
    """A loopback HTTP server answering each POST with the next status of `statuses`."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:] if line)}
        body = await reader.readexactly(int(headers["content-length"]))
        self.bodies.append((headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


async def test_plan_pushed_to_a_fleet_webhook(tmp_path: Path) -> None:
    receiver = Receiver([503, 200])
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    entry = city(4, fleet={"webhook_url": f"http://127.0.0.1:{port}/plans", "webhook_headers": {"authorization": "Bearer fleet-secret"}})
    try:
        async with running(tmp_path / "db.sqlite", entry) as (_server, client, ext):
            op = await token(client, "chief")
            r = await client.post("/ext/waste/readings", json=native("B02", 0.99, time.time() - 60, "w-1"), headers=op)
            assert r.status_code == 201
            plan = (await gql(client, PLAN, op))["planWasteRound"]
            assert ext.service is not None
            stats = ext.service.stats
            await _until(lambda: stats.pushes["webhook:ok"] == 1, "webhook push")  # after one retry (1 s)
            assert len(receiver.bodies) == 2
            headers, body = receiver.bodies[-1]
            assert headers["authorization"] == "Bearer fleet-secret"
            assert headers["content-type"] == "application/json"
            doc = json.loads(body)
            assert doc["plan_id"] == plan["id"]
            assert [s["bin_id"] for r in doc["routes"] for s in r["stops"]] == ["B02"]
            latest = (await client.get("/ext/waste/plans/latest.json", headers=op)).json()
            assert doc == latest  # the same document as GET /ext/waste/plans/latest.json
    finally:
        server.close()
        await server.wait_closed()


async def test_a_refused_push_is_not_retried_and_is_counted() -> None:
    seen: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(422, json={"error": "unknown truck"})

    stats = WasteStats()
    sender = FleetSender(FleetPush(webhook_url="http://fleet.invalid/plans"), stats, ManualClock(), None, httpx.MockTransport(refuse))
    await sender.send(StoredPlan(7, 1.0, "demand", "2026-05-05", {"routes": [], "unvisited": []}))
    assert len(seen) == 1
    assert json.loads(seen[0].content) == {"plan_id": 7, "created_at": 1.0, "trigger": "demand", "routes": [], "unvisited": []}
    assert stats.pushes == {"webhook:failed": 1}
