"""Road distances in the running extension: a configured matrix file sets the plan's kilometres
(a bin it lacks fails the plan with the reason, counted), and `roads.osrm_url` makes the planner
ask that OSRM server's table API (transport injected)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from waste_harness import city, native, running, token

from smartcity.extensions.waste import Point, WasteConfig, WasteExtension

PLAN = "mutation { planWasteRound { id km routes { stops { binId } } } }"


async def test_plan_km_come_from_the_matrix_file(tmp_path: Path) -> None:
    ids = ["D1", "B00", "B01", "B02"]
    n = len(ids)
    matrix = {
        "ids": ids,
        "distance_m": [[0 if i == j else 1500 for j in range(n)] for i in range(n)],
        "duration_s": [[0 if i == j else 120 for j in range(n)] for i in range(n)],
    }
    f = tmp_path / "roads.json"
    f.write_text(json.dumps(matrix))
    entry = city(3, roads={"matrix_file": str(f)})
    now = time.time()
    async with running(tmp_path / "db.sqlite", entry) as (_server, client, ext):
        op = await token(client, "chief")
        for b in ("B00", "B02"):
            assert (await client.post("/ext/waste/readings", json=native(b, 0.9, now - 60, f"m-{b}"), headers=op)).status_code == 201
        r = await client.post("/graphql", json={"query": PLAN}, headers=op)
        plan = r.json()["data"]["planWasteRound"]
        assert sorted(s["binId"] for route in plan["routes"] for s in route["stops"]) == ["B00", "B02"]
        assert plan["km"] == 4.5  # one truck: depot, B00, B02, depot at 1.5 km a leg

        # a bin the matrix does not know: the plan fails, saying which, and is counted
        matrix["ids"] = ["D1", "B00", "B01", "B09"]
        f.write_text(json.dumps(matrix))
    entry["bins"] = [*entry["bins"], {"id": "B03", "lat": 48.851, "lon": 2.351, "capacity_l": 500}]  # type: ignore[list-item]
    async with running(tmp_path / "db.sqlite", entry) as (_server, client, ext):
        op = await token(client, "chief")
        assert (await client.post("/ext/waste/readings", json=native("B03", 0.9, now - 60, "m-B03"), headers=op)).status_code == 201
        r = await client.post("/graphql", json={"query": PLAN}, headers=op)
        assert r.json()["errors"][0]["message"] == "no plan: matrix file has no row for ['B02', 'B03'] (2 missing)"
        assert ext.service is not None and ext.service.stats.plan_failures == 1


def test_osrm_url_makes_the_planner_ask_that_server() -> None:
    asked: list[str] = []

    def osrm(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(200, json={"code": "Ok", "distances": [[0, 700], [800, 0]], "durations": [[0, 60], [70, 0]]})

    cfg = WasteConfig.model_validate(city(1, roads={"osrm_url": "http://osrm.test:5000/", "osrm_profile": "truck"}))
    ext = WasteExtension(cfg, osrm_transport=httpx.MockTransport(osrm))
    source = ext._distances()
    assert source is not None
    dist, dur = source.matrix([Point("D1", 48.85, 2.35), Point("B00", 48.86, 2.36)])
    assert dist.tolist() == [[0, 700], [800, 0]] and dur.tolist() == [[0, 60], [70, 0]]
    # sources then destinations (the table is asked block by block)
    assert asked == ["/table/v1/truck/2.350000,48.850000;2.360000,48.860000;2.350000,48.850000;2.360000,48.860000"]
