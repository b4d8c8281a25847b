"""The bin registry through GraphQL: bins added one by one or imported (CSV, GeoJSON) beside the
configured ones, refused with the field named when invalid, all or nothing, audited, kept across
a restart, removable; the configuration's own bins are changed only in the configuration."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from waste_harness import city, gql, native, running, token

from smartcity.storage.audit_repo import AuditRepo

SAVE = """mutation($b: [WasteBinInput!]!) { saveWasteBins(bins: $b) { id stream capacityL threshold } }"""
IMPORT = """mutation($f: WasteBinFormat!, $t: String!) { importWasteBins(format: $f, text: $t) { id } }"""
REMOVE = """mutation($id: String!) { removeWasteBin(id: $id) { id } }"""
BINS = "{ wasteBins { id level } }"


async def errors(client: httpx.AsyncClient, query: str, headers: dict[str, str], variables: dict[str, Any]) -> list[str]:
    r = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return [e["message"] for e in r.json().get("errors") or []]


async def ids(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    return [b["id"] for b in (await gql(client, BINS, headers))["wasteBins"]]


async def test_registry_through_the_api_survives_a_restart(tmp_path: Path) -> None:
    db_file = tmp_path / "db.sqlite"
    async with running(db_file, city(2)) as (server, client, _ext):
        op = await token(client, "chief")
        viewer = await token(client, "watcher")
        kiosk = {"id": "K-1", "lat": 48.851, "lon": 2.351, "capacityL": 660, "stream": "paper", "accessStart": "07:00:00"}
        saved = (await gql(client, SAVE, op, {"b": [kiosk]}))["saveWasteBins"]
        assert [b["id"] for b in saved] == ["B00", "B01", "K-1"]
        assert saved[2] == {"id": "K-1", "stream": "paper", "capacityL": 660, "threshold": 0.8}

        assert await errors(client, SAVE, op, {"b": [{**kiosk, "id": "B00"}]}) == [
            "bin 'B00' comes from the configuration: change it there"
        ]
        assert await errors(client, SAVE, op, {"b": [{**kiosk, "id": "K-2", "lat": 91.0}]}) == [
            "bin 0: lat: Input should be less than or equal to 90"
        ]
        assert await errors(client, SAVE, op, {"b": [{**kiosk, "accessStart": "09:00:00", "accessEnd": "08:00:00"}]}) == [
            "bin 0: access_start/access_end: Value error, end must be after start"
        ]
        refused = await errors(client, SAVE, viewer, {"b": [kiosk]})
        assert refused and "operator or admin" in refused[0]

        csv_text = "id,lat,lon,capacity_l,stream\nC-1,48.852,2.352,240,glass\nC-2,48.853,2.353,240,glass\n"
        imported = (await gql(client, IMPORT, op, {"f": "CSV", "t": csv_text}))["importWasteBins"]
        assert [b["id"] for b in imported] == ["B00", "B01", "C-1", "C-2", "K-1"]
        broken = "id,lat,lon,capacity_l\nC-3,48.85,2.35,240\nC-4,48.85,2.35,-5\n"
        assert await errors(client, IMPORT, op, {"f": "CSV", "t": broken}) == [
            "csv: row 2: capacity_l: Input should be greater than 0"
        ]
        geo = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.354, 48.854]},
             "properties": {"id": "G-1", "capacity_l": 1000}}]}
        await gql(client, IMPORT, op, {"f": "GEOJSON", "t": json.dumps(geo)})
        assert "C-3" not in await ids(client, op)  # all or nothing

        # a bin added through the API takes sensor readings like a configured one
        r = await client.post("/ext/waste/readings", json=native("G-1", 0.5, time.time() - 60, "g-1"), headers=op)
        assert r.status_code == 201, r.text

        assert server.db is not None
        actions = [(e.actor, e.action) for e in await AuditRepo(server.db).page(action="waste.")]
        assert actions == [("chief", "waste.bins.import"), ("chief", "waste.bins.import"), ("chief", "waste.bins.save")]

    async with running(db_file, city(2)) as (server, client, _ext):  # a restart
        op = await token(client, "chief")
        after = (await gql(client, BINS, op))["wasteBins"]
        assert [b["id"] for b in after] == ["B00", "B01", "C-1", "C-2", "G-1", "K-1"]
        assert next(b["level"] for b in after if b["id"] == "G-1") == 0.5

        assert [b["id"] for b in (await gql(client, REMOVE, op, {"id": "C-2"}))["removeWasteBin"]] == [
            "B00", "B01", "C-1", "G-1", "K-1"
        ]
        assert await errors(client, REMOVE, op, {"id": "B01"}) == ["bin 'B01' comes from the configuration: remove it there"]
        assert await errors(client, REMOVE, op, {"id": "nope"}) == ["unknown bin 'nope': not in the bin registry"]
        assert server.db is not None
        removed = (await AuditRepo(server.db).page(action="waste.bins.remove"))[0]
        assert (removed.target, removed.before["capacity_l"]) == ("bin:C-2", 240)

    # a configured id takes over a bin of the same id added through the API
    async with running(db_file, city(2, bins=[*city(2)["bins"], {"id": "K-1", "lat": 48.86, "lon": 2.36, "capacity_l": 120}])) as (
        _server, client, _ext
    ):
        op = await token(client, "chief")
        assert await errors(client, SAVE, op, {"b": [kiosk]}) == ["bin 'K-1' comes from the configuration: change it there"]
        assert await ids(client, op) == ["B00", "B01", "C-1", "G-1", "K-1"]
