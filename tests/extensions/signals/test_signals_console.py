"""The console's Signals view in real headless Chromium against the app with the signals extension
(uvicorn in a thread, no Ray): an advisory junction shows its recommendation, aspects and
queues; the operator forces the fixed plan from the page, and the action is audited.

Needs Debian's `chromium` and the `playwright` package, as tests/web/test_console.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from signals_kit import junction_dict
from testkit import CHROMIUM_ARGS, chromium_or_skip, gql_sync, serve_with_operator

pytestmark = [pytest.mark.slow]

CHROMIUM = chromium_or_skip()
PASSWORD = "correct horse battery"
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { ... on LoginSuccess { token } } }"

from playwright.sync_api import sync_playwright  # noqa: E402 - after the skip


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The app with the signals extension on a loopback port, an operator `chief`; stopped after."""
    with serve_with_operator(tmp_path, [{"type": "signals", "junctions": [junction_dict()], "tick_s": 0.5}], "chief", PASSWORD) as base:
        yield base


def test_advisory_junction_shows_its_recommendation_and_the_operator_forces_the_fixed_plan(
    served: str,
) -> None:
    base = served
    r = httpx.post(
        f"{base}/graphql", json={"query": LOGIN, "variables": {"u": "chief", "p": PASSWORD}}, timeout=30
    )
    token = r.json()["data"]["login"]["token"]
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None
            )
            page.goto(base)
            page.fill("#login-user", "chief")
            page.fill("#login-password", PASSWORD)
            page.press("#login-password", "Enter")
            page.wait_for_selector("#nav-signals:not([hidden])", timeout=30_000)
            page.click("a[data-route=signals]")
            page.wait_for_selector(".signals-junction[data-junction=j1]", timeout=30_000)
            card = ".signals-junction[data-junction=j1]"
            assert page.get_attribute(card, "data-mode") == "advisory"
            advice = page.get_attribute(f"{card} .signals-advice", "data-recommendation")
            assert advice in ("NS", "EW", "PED")
            assert "Recommended now: phase" in page.inner_text(f"{card} .signals-advice")
            assert page.eval_on_selector_all(
                f"{card} .signals-group", "gs => gs.map(g => g.dataset.group)"
            ) == ["ns", "ew", "ped"]
            states = page.eval_on_selector_all(f"{card} .signals-group", "gs => gs.map(g => g.dataset.state)")
            assert states.count("green") <= 1  # conflicting groups: never two greens
            assert page.eval_on_selector_all(f"{card} .signals-lanes tbody tr", "rs => rs.length") == 2
            assert "stale" in page.inner_text(
                f"{card} .signals-fallback"
            )  # no camera data: the fixed plan runs
            assert page.query_selector(f"{card} .signals-mode-btn") is None  # no adapter: advisory only
            page.click(f"{card} .signals-fixed-btn")
            page.wait_for_function(
                "() => document.querySelector('.signals-fixed-btn').textContent === 'Release fixed plan'",
                timeout=30_000,
            )
            assert "forced by an operator" in page.inner_text(f"{card} .signals-fallback")
        finally:
            browser.close()
    log = gql_sync(base, token, '{ signalActions(junction: "j1") { actor action after } }')["signalActions"]
    assert log == [{"actor": "chief", "action": "force_fixed", "after": "on"}]
    assert errors == []
