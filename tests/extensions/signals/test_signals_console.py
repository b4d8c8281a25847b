"""The console's Signals view in real headless Chromium against the app with the signals extension
(uvicorn in a thread, no Ray): an advisory junction shows its recommendation, aspects and
queues; the operator forces the fixed plan from the page, and the action is audited.

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
from signals_kit import junction_dict
from testkit import CHROMIUM_ARGS, chromium_or_skip, free_port

from smartcity.app import Server, create_app
from smartcity.core.config import load_settings
from smartcity.storage.users import create_user

pytestmark = [pytest.mark.slow]

CHROMIUM = chromium_or_skip()
PASSWORD = "correct horse battery"
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { ... on LoginSuccess { token } } }"

from playwright.sync_api import sync_playwright  # noqa: E402 - after the skip


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    settings = load_settings(
        overrides={
            "server": {"port": port},
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/db.sqlite"},
            "storage": {"data_dir": str(tmp_path / "data")},
            "extensions": [{"type": "signals", "junctions": [junction_dict()], "tick_s": 0.5}],
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
    asyncio.run_coroutine_threadsafe(
        create_user(server.db, "chief", PASSWORD, "operator", [], actor="test"), loop
    ).result(30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        web.should_exit = True
        thread.join(30)
        loop.close()


def gql(base: str, token: str, query: str) -> dict[str, Any]:
    r = httpx.post(
        f"{base}/graphql", json={"query": query}, headers={"authorization": f"Bearer {token}"}, timeout=30
    )
    body: dict[str, Any] = r.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


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
    log = gql(base, token, '{ signalActions(junction: "j1") { actor action after } }')["signalActions"]
    assert log == [{"actor": "chief", "action": "force_fixed", "after": "on"}]
    assert errors == []
