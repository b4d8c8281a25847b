"""Sensor payloads through POST /ext/waste/readings in the real app: good ones stored once, a
redelivery acknowledged and not stored again, a malformed one refused with a 400 naming the
problem; each counted on /metrics. A crew's collection report resets the bin's level."""

from __future__ import annotations

import json
import time
from pathlib import Path

import sqlalchemy as sa
from waste_harness import city, gql, native, running, token

from smartcity.extensions.waste.tables import collections, readings

BINS = "{ wasteBins { id level levelAt crossesAt } }"


def tts_uplink(device: str, percent: float, f_cnt: int, received_at: str) -> dict[str, object]:
    """An application uplink as The Things Stack v3 sends it (webhook or MQTT), trimmed."""
    return {
        "end_device_ids": {"device_id": device, "application_ids": {"application_id": "bins"}, "dev_eui": "70B3D57ED0000001"},
        "correlation_ids": [f"as:up:01HTEST{f_cnt:04d}", "rpc:/ttn.lorawan.v3.AppAs/SimulateUplink:1"],
        "received_at": received_at,
        "uplink_message": {
            "session_key_id": "AYfg",
            "f_port": 2,
            "f_cnt": f_cnt,
            "frm_payload": "AEs=",
            "decoded_payload": {"fill_level": percent, "battery": 3.6},
            "received_at": received_at,
        },
    }


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_sensor_payloads_good_malformed_and_duplicated(tmp_path: Path) -> None:
    now = time.time()
    entry = city(
        4,
        sensors={
            "tts_v3": {"device_bins": {"eui-70b3d57ed0000001": "B01"}},
            "field_map": {"bin_id": "sensor.bin", "level": {"path": "data.dist_cm", "kind": "distance", "empty_distance": 120, "full_distance": 20},
                          "t": "data.at", "message_id": "id"},
        },
    )
    async with running(tmp_path / "db.sqlite", entry) as (server, client, _ext):
        op = await token(client, "chief")
        admin = await token(client, "boss")
        viewer = await token(client, "watcher")
        url = "/ext/waste/readings"

        good = native("B00", 0.42, now - 600, "m-1")
        r = await client.post(url, json=good, headers=op)
        assert r.status_code == 201, r.text
        assert r.json() == {"status": "stored", "bin_id": "B00", "message_id": "m-1"}
        again = await client.post(url, json=good, headers=op)  # a retry of the same message
        assert again.status_code == 200
        assert again.json()["status"] == "duplicate"

        tts = tts_uplink("eui-70b3d57ed0000001", 75.0, 17, "2026-05-04T07:30:00.123456789Z")
        r = await client.post(f"{url}/tts_v3", json=tts, headers=op)
        assert r.status_code == 201, r.text
        assert r.json() == {"status": "stored", "bin_id": "B01", "message_id": "as:up:01HTEST0017"}
        vendor = {"id": "v-9", "sensor": {"bin": "B02"}, "data": {"dist_cm": 45, "at": "2026-05-04T08:00:00+02:00"}}
        r = await client.post(f"{url}?format=field_map", json=vendor, headers=op)
        assert r.status_code == 201, r.text

        bad = [
            (b"{not json", "native payload: payload: not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
            (json.dumps({"bin_id": "B00", "t": "2026-05-04T07:30:00Z", "message_id": "m-2"}).encode(),
             "native payload: level: give exactly one of level, level_percent"),
            (json.dumps({**native("B00", 0.5, now, "m-3"), "t": "2026-05-04T07:30:00"}).encode(), "native payload: t: time has no zone"),
            (json.dumps({**native("B00", 0.5, now, "m-4"), "colour": "red"}).encode(), "native payload: colour: unknown field"),
            (json.dumps(native("B99", 0.5, now, "m-5")).encode(), "unknown bin 'B99': not in the bin registry"),
        ]
        for body, message in bad:
            r = await client.post(url, content=body, headers=op)
            assert r.status_code == 400, r.text
            assert r.json() == {"error": message}
        no_decoder = tts_uplink("eui-70b3d57ed0000001", 10.0, 18, "2026-05-04T07:31:00Z")
        del no_decoder["uplink_message"]["decoded_payload"]  # type: ignore[attr-defined]
        r = await client.post(f"{url}/tts_v3", json=no_decoder, headers=op)
        assert r.status_code == 400
        assert r.json()["error"] == "tts_v3 payload: uplink_message.decoded_payload: missing: set a payload formatter"
        assert (await client.post(f"{url}/csv", json=good, headers=op)).status_code == 404
        assert (await client.post(url, json=native("B03", 0.1, now, "m-6"), headers=viewer)).status_code == 403
        assert (await client.post(url, json=native("B03", 0.1, now, "m-6"))).status_code == 401

        assert server.db is not None
        async with server.db.engine.connect() as conn:
            rows = (await conn.execute(sa.select(readings.c.message_id, readings.c.bin_id, readings.c.level).order_by(readings.c.id))).all()
        assert [(m, b, round(lv, 3)) for m, b, lv in rows] == [("m-1", "B00", 0.42), ("as:up:01HTEST0017", "B01", 0.75), ("v-9", "B02", 0.75)]

        # the TTS webhook retries the same uplink: one row still
        assert (await client.post(f"{url}/tts_v3", json=tts, headers=op)).json()["status"] == "duplicate"

        m = (await client.get("/metrics", headers=admin)).text
        assert metric(m, "smartcity_waste_readings_accepted_total") == 3
        assert metric(m, "smartcity_waste_readings_duplicate_total") == 2
        assert metric(m, 'smartcity_waste_readings_rejected_total{reason="not_json"}') == 1
        assert metric(m, 'smartcity_waste_readings_rejected_total{reason="invalid_field"}') == 3
        assert metric(m, 'smartcity_waste_readings_rejected_total{reason="unknown_field"}') == 1
        assert metric(m, 'smartcity_waste_readings_rejected_total{reason="unknown_bin"}') == 1
        assert metric(m, "smartcity_waste_bins") == 4

        levels = {b["id"]: b["level"] for b in (await gql(client, BINS, viewer))["wasteBins"]}
        assert levels == {"B00": 0.42, "B01": 0.75, "B02": 0.75, "B03": None}

        # a crew empties B00 (HTTP) and B01 (GraphQL): their levels reset
        r = await client.post("/ext/waste/collections", json={"bin_id": "B00"}, headers=op)
        assert r.status_code == 201, r.text
        assert (await client.post("/ext/waste/collections", json={"bin_id": "nope"}, headers=op)).status_code == 404
        assert (await client.post("/ext/waste/collections", json={"bin": "B00"}, headers=op)).status_code == 400
        done = await gql(
            client, 'mutation { reportWasteCollection(binId: "B01", at: "2026-05-04T09:00:00Z") { id level levelAt } }', op
        )
        assert done["reportWasteCollection"] == {"id": "B01", "level": 0.0, "levelAt": "2026-05-04T09:00:00+00:00"}
        levels = {b["id"]: b["level"] for b in (await gql(client, BINS, viewer))["wasteBins"]}
        assert levels == {"B00": 0.0, "B01": 0.0, "B02": 0.75, "B03": None}
        async with server.db.engine.connect() as conn:
            rows = (await conn.execute(sa.select(collections.c.bin_id, collections.c.reported_by, collections.c.via).order_by(collections.c.id))).all()
        assert [tuple(r) for r in rows] == [("B00", "chief", "http"), ("B01", "chief", "graphql")]
        assert metric((await client.get("/metrics", headers=admin)).text, "smartcity_waste_collections_total") == 2
