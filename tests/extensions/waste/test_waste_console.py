"""The console's Waste view in real headless Chromium against the app with the waste extension
(served by uvicorn in a thread, no Ray): the latest plan's routes and the bins drawn as SVG,
coloured by level, the routes' table, and a new plan made from the page.

Needs Debian's `chromium` and the `playwright` package, as tests/web/test_console.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from testkit import CHROMIUM_ARGS, chromium_or_skip, free_port
from waste_harness import LOGIN, PASSWORD, city, native

from smartcity.app import Server, create_app
from smartcity.core.config import load_settings
from smartcity.storage.users import create_user

pytestmark = [pytest.mark.slow]

CHROMIUM = chromium_or_skip()

from playwright.sync_api import sync_playwright  # noqa: E402 - after the skip


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The app with the waste extension on a loopback port, an operator `chief`; stopped after."""
    port = free_port()
    settings = load_settings(
        overrides={
            "server": {"port": port},
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/db.sqlite"},
            "storage": {"data_dir": str(tmp_path / "data")},
            "extensions": [city(12)],
        },
        environ={},
    )
    app = create_app(settings, with_ray=False)
    web = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(web.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not web.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    server: Server = app.state.server
    assert server.db is not None
    asyncio.run_coroutine_threadsafe(create_user(server.db, "chief", PASSWORD, "operator", [], actor="test"), loop).result(30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        web.should_exit = True
        thread.join(30)
        loop.close()


def gql(base: str, token: str, query: str) -> dict[str, Any]:
    r = httpx.post(f"{base}/graphql", json={"query": query}, headers={"authorization": f"Bearer {token}"}, timeout=30)
    body: dict[str, Any] = r.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def test_waste_view_draws_the_plan_and_plans_again(served: str) -> None:
    base = served
    r = httpx.post(f"{base}/graphql", json={"query": LOGIN, "variables": {"u": "chief", "p": PASSWORD}}, timeout=30)
    token = r.json()["data"]["login"]["token"]
    now = time.time()
    levels = {f"B{i:02d}": (0.95 if i < 4 else 0.3) for i in range(11)}  # B11 never reports
    for bin_id, level in levels.items():
        r = httpx.post(f"{base}/ext/waste/readings", json=native(bin_id, level, now - 600, f"c-{bin_id}"),
                       headers={"authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 201, r.text
    plan = gql(base, token, "mutation { planWasteRound { id km routes { truckId stops { binId } } } }")["planWasteRound"]
    served_bins = sorted(s["binId"] for r in plan["routes"] for s in r["stops"])
    assert served_bins == ["B00", "B01", "B02", "B03"]  # the full ones; none of the 30 % bins is worth a detour

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(base)
            page.fill("#login-user", "chief")
            page.fill("#login-password", PASSWORD)
            page.press("#login-password", "Enter")
            page.wait_for_selector("#nav-waste:not([hidden])", timeout=30_000)
            page.click("a[data-route=waste]")
            page.wait_for_selector("#waste-map svg .waste-route", timeout=30_000)

            assert page.eval_on_selector_all(".waste-bin", "cs => cs.length") == 12
            classes = dict(page.eval_on_selector_all(".waste-bin", "cs => cs.map(c => [c.dataset.bin, c.getAttribute('class')])"))
            assert {b for b, c in classes.items() if c.endswith(" full")} == {"B00", "B01", "B02", "B03"}
            assert classes["B11"] == "waste-bin unknown"
            assert classes["B05"] == "waste-bin low"
            stops = page.eval_on_selector_all(".waste-route", "ls => ls.map(l => Number(l.dataset.stops))")
            assert sum(stops) == 4 and len(stops) == len(plan["routes"])
            # the fill colour comes from the stylesheet (no inline styles under the CSP)
            assert page.eval_on_selector(".waste-bin[data-bin=B00]", "c => getComputedStyle(c).fill") == "rgb(239, 68, 68)"
            points = page.eval_on_selector(".waste-route", "l => l.points.numberOfItems")
            assert points == stops[0] + 2  # depot, the stops, depot
            assert page.eval_on_selector_all("#waste-routes tbody tr", "rs => rs.length") == len(plan["routes"])
            assert page.get_attribute("#waste-map svg", "role") == "img"
            assert f"plan {plan['id']} for" in page.inner_text("#waste-summary")
            assert page.get_attribute("main", "data-plan-id") == str(plan["id"])

            page.click("#waste-plan-now")
            page.wait_for_function(f"() => document.querySelector('main').dataset.planId === '{plan['id'] + 1}'", timeout=30_000)
            assert page.eval_on_selector_all(".waste-route", "ls => ls.length") == len(plan["routes"])
            assert gql(base, token, "{ wastePlans(limit: 1) { id trigger } }")["wastePlans"] == [{"id": plan["id"] + 1, "trigger": "demand"}]
        finally:
            browser.close()
    assert errors == []
