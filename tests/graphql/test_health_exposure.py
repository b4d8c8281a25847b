"""/healthz and /metrics over real HTTP: anyone learns whether the server is alive, only an
admin (or Prometheus with the metrics token) learns camera ids, addresses and error text."""

from __future__ import annotations

from pathlib import Path

import httpx
from api_helpers import Api, running_server

METRICS_TOKEN = "prometheus-scrape-token-0123456789"


async def test_healthz_details_are_for_admins_only(api: Api) -> None:
    base, _, clients = api
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for headers in ({}, {"authorization": f"Bearer {clients['police-op'].token}"}, {"authorization": b"Bearer t\xc3\xb6k"}):
            r = await http.get("/healthz", headers=headers)
            assert (r.status_code, r.json()) == (200, {"status": "healthy"})
        r = await http.get("/healthz", headers={"authorization": f"Bearer {clients['admin'].token}"})
    assert r.status_code == 200
    details = r.json()
    assert details["status"] == "healthy"
    assert details["database"]["ok"] is True
    assert details["cameras"] == {}  # no health report yet (no Ray here)


async def test_metrics_need_the_metrics_token_or_an_admin(tmp_path: Path, storage_url: str) -> None:
    async with (
        running_server(tmp_path, storage_url, extra={"server": {"metrics_token": METRICS_TOKEN}}) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=30) as http,
    ):
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers={"authorization": "Bearer not-the-token"})).status_code == 401
        assert (await http.get("/metrics", headers={"authorization": b"Bearer \xff\xfe"})).status_code == 401
        r = await http.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
        assert r.status_code == 200
        assert "smartcity_bus_published_total" in r.text


async def test_metrics_without_a_metrics_token_are_for_admins(api: Api) -> None:
    base, _, clients = api
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        assert (await http.get("/metrics")).status_code == 401
        op = await http.get("/metrics", headers={"authorization": f"Bearer {clients['police-op'].token}"})
        assert op.status_code == 403
        admin = await http.get("/metrics", headers={"authorization": f"Bearer {clients['admin'].token}"})
        assert admin.status_code == 200 and "smartcity_writer_committed_total" in admin.text
