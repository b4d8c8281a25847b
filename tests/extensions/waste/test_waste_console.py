"""The console's Waste view in real headless Chromium against the app with the waste extension
(served by uvicorn in a thread, no Ray): the latest plan's routes and the bins drawn as SVG,
coloured by level, the routes' table, and a new plan made from the page.

Needs Debian's `chromium` and the `playwright` package, as tests/web/test_console.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from testkit import CHROMIUM_ARGS, chromium_or_skip, gql_sync, serve_with_operator
from waste_harness import LOGIN, PASSWORD, city, native

pytestmark = [pytest.mark.slow]

CHROMIUM = chromium_or_skip()

from playwright.sync_api import sync_playwright  # noqa: E402 - after the skip


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The app with the waste extension on a loopback port, an operator `chief`; stopped after."""
    with serve_with_operator(tmp_path, [city(12)], "chief", PASSWORD) as base:
        yield base


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
    plan = gql_sync(base, token, "mutation { planWasteRound { id km routes { truckId stops { binId } } } }")["planWasteRound"]
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
            assert gql_sync(base, token, "{ wastePlans(limit: 1) { id trigger } }")["wastePlans"] == [{"id": plan["id"] + 1, "trigger": "demand"}]
        finally:
            browser.close()
    assert errors == []
