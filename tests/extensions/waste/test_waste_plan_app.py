"""Plans in the real app: `planWasteRound` routes the fleet within truck capacities, bin access
windows and shifts; the plan is announced to subscribers, exported as GeoJSON, and read back
after the server restarts on the same database."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from waste_harness import city, gql, native, running, token

from smartcity.core.config import load_settings
from smartcity.extension_wiring import extension_schema
from smartcity.graphql.auth import Principal

PARIS = ZoneInfo("Europe/Paris")
PLAN = """mutation { planWasteRound { id trigger day km missedDue
  routes { truckId km loadL start end stops { binId arrive depart litres due } }
  unvisited { binId due reason } } }"""
PLANS = "{ wastePlans { id trigger day km routes { truckId loadL stops { binId arrive } } unvisited { binId reason } } }"


async def test_plan_respects_capacities_and_windows_and_survives_a_restart(tmp_path: Path) -> None:
    now = time.time()
    entry = city(12)  # 12 bins of 1,000 l, odd ones open 06:00-09:00 only; 2 trucks of 3,000 l
    db_file = tmp_path / "db.sqlite"
    async with running(db_file, entry) as (server, client, ext):
        op = await token(client, "chief")
        for i in range(12):  # every bin at 90 %: all due (threshold 80 %), 900 l each
            r = await client.post("/ext/waste/readings", json=native(f"B{i:02d}", 0.9, now - 3600, f"r-{i}"), headers=op)
            assert r.status_code == 201
        assert (await client.get("/ext/waste/plans/latest.geojson", headers=op)).status_code == 404

        host = server.extensions
        assert host is not None
        schema = extension_schema(load_settings(environ={}), host.graphql())
        feed = await schema.subscribe(
            "subscription { wastePlanMade { id trigger } }",
            context_value={"principal": Principal(1, "watcher", "viewer", None)},
        )
        assert not isinstance(feed, Exception) and hasattr(feed, "__anext__")
        announced = asyncio.ensure_future(feed.__anext__())
        await asyncio.sleep(0.05)  # the subscription is listening

        plan = (await gql(client, PLAN, op))["planWasteRound"]
        tomorrow = (datetime.fromtimestamp(now, PARIS) + timedelta(days=1)).date()
        assert plan["trigger"] == "demand"
        assert plan["day"] == tomorrow.isoformat()
        routes = plan["routes"]
        assert 1 <= len(routes) <= 2  # two trucks
        served = [s["binId"] for r in routes for s in r["stops"]]
        assert len(served) == len(set(served))
        for r in routes:
            assert r["truckId"] == "T-res"
            assert r["loadL"] == sum(s["litres"] for s in r["stops"]) <= 3000
            start, end = datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"])
            assert start.astimezone(PARIS).hour >= 6
            assert end.astimezone(PARIS) <= datetime(tomorrow.year, tomorrow.month, tomorrow.day, 14, tzinfo=PARIS)
            for s in r["stops"]:
                assert s["litres"] == 900 and s["due"]
                arrive = datetime.fromisoformat(s["arrive"]).astimezone(PARIS)
                assert arrive.date() == tomorrow and arrive.hour >= 6
                if int(s["binId"][1:]) % 2:  # the morning-only bins are served by 09:00
                    assert arrive.time() <= datetime.strptime("09:00", "%H:%M").time()
        # 3 bins of 900 l fill a 3,000 l truck: at most 6 of the 12 due bins, the rest are named
        assert len(served) == 6
        missed = sorted(u["binId"] for u in plan["unvisited"])
        assert missed == sorted(plan["missedDue"]) == sorted({f"B{i:02d}" for i in range(12)} - set(served))
        assert all(u["due"] and u["reason"] == "not_chosen" for u in plan["unvisited"])

        got = await asyncio.wait_for(announced, 10)
        assert got.data == {"wastePlanMade": {"id": plan["id"], "trigger": "demand"}}
        await feed.aclose()

        geo = await client.get("/ext/waste/plans/latest.geojson", headers=op)
        assert geo.status_code == 200
        assert geo.headers["content-type"] == "application/geo+json"
        doc = geo.json()
        lines = [f for f in doc["features"] if f["geometry"]["type"] == "LineString"]
        assert len(lines) == len(routes)
        assert sorted(f["properties"]["bin"] for f in doc["features"] if f["properties"]["kind"] == "stop") == sorted(served)
        assert doc["properties"]["plan_id"] == plan["id"]
        before = (await gql(client, PLANS, op))["wastePlans"]
        assert ext.service is not None and ext.service.stats.plans["demand"] == 1

    # a new server on the same database file: the plan and the levels are still there
    async with running(db_file, entry) as (_server, client, _ext):
        viewer = await token(client, "watcher")
        after = (await gql(client, PLANS, viewer))["wastePlans"]
        assert after == before
        assert after[0]["id"] == plan["id"]
        levels = {b["id"]: b["level"] for b in (await gql(client, "{ wasteBins { id level } }", viewer))["wasteBins"]}
        assert levels == {f"B{i:02d}": 0.9 for i in range(12)}
        geo2 = await client.get("/ext/waste/plans/latest.geojson", headers=viewer)
        assert geo2.json() == doc
        refused = await client.post("/graphql", json={"query": PLAN}, headers=viewer)
        assert "operator or admin" in refused.json()["errors"][0]["message"]
