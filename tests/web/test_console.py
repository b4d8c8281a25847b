"""The operator console in real headless Chromium against the real server on the demo camera:
log in, camera wall, WebRTC live view (frames advance), a counting line drawn on the picture
(invalid geometry refused with the API's error next to the drawing), its counts rising on the
dashboard (CSV export), a live incident with its sound cue, acknowledged from the console;
keyboard use and layouts from 1280x720 to a 4K wall.

Needs Debian's `chromium` (/usr/bin/chromium) and the `playwright` package (its driver only:
no browser is downloaded). SMARTCITY_SCREENSHOTS=DIR also saves the README's screenshots there.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_server import ADMIN
from testkit import CHROMIUM_ARGS, chromium_or_skip

pytestmark = [pytest.mark.slow]

CHROMIUM = chromium_or_skip()

from playwright.sync_api import Page, sync_playwright  # noqa: E402 - after the skip


@pytest.fixture
def server(console_server: str) -> str:
    """The folder's one console server (tests/web/conftest.py)."""
    return console_server


def shot(page: Page, tmp_path: Path, name: str, *, publish: bool = True) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path))
    target = os.environ.get("SMARTCITY_SCREENSHOTS")
    if target and publish:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


def tidy(page: Page) -> None:
    """Screenshots without passing toasts and alert cards, from the top of the page."""
    page.evaluate(
        "document.getElementById('toasts').replaceChildren();"
        "document.getElementById('alert-banner').hidden = true; window.scrollTo(0, 0)"
    )


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def gql(base: str, token: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    r = httpx.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"authorization": f"Bearer {token}"} if token else {},
        timeout=10,
    )
    body: dict[str, Any] = r.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def smoke_alarm(base: str) -> None:
    """A smoke detector of the test's server raises its alarm over MQTT (real Mosquitto)."""
    import asyncio
    import threading
    import time as _time

    import aiomqtt
    from console_server import smoke_topic

    port = int(base.rsplit(":", 1)[1])
    body = json.dumps({"sensor_id": "hall-1", "state": "alarm", "kind": "smoke", "t": _time.time()})

    async def publish() -> None:
        async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"console-test-pub-{port}") as client:
            await client.publish(f"{smoke_topic(port)}/hall-1", body, qos=1)

    # playwright's sync API runs its own event loop in this thread: publish from another one
    errors: list[BaseException] = []
    worker = threading.Thread(target=lambda: _run_catching(asyncio.run, publish(), errors))
    worker.start()
    worker.join(30)
    assert not worker.is_alive() and not errors, errors


def _run_catching(run: Any, coro: Any, errors: list[BaseException]) -> None:
    try:
        run(coro)
    except BaseException as exc:  # reported by the caller's assertion
        errors.append(exc)


def watch_errors(page: Page, errors: list[str]) -> None:
    """Script errors, and what the Content-Security-Policy refused (Chromium reports those in the
    console only: a refused inline style or script breaks no script). The policy has no
    'unsafe-eval': `wait_for_function` takes functions ("() => ..."), which Playwright compiles
    once, not expressions, which it would evaluate as strings on each poll."""
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)


def test_console_end_to_end(server: str, tmp_path: Path) -> None:
    base = server
    page_errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)
            page = context.new_page()
            watch_errors(page, page_errors)

            # ---- log in (a wrong password first) ------------------------------------------
            page.goto(base)
            page.fill("#login-user", ADMIN[0])
            page.fill("#login-password", "not the password")
            page.click("#login-submit")
            page.wait_for_function("() => document.querySelector('#login-error').textContent.length > 0")
            assert page.is_visible("#login")
            page.fill("#login-password", ADMIN[1])
            page.press("#login-password", "Enter")

            # ---- camera wall: state colour and the latest (pixelated) snapshot ----------------
            page.wait_for_selector(".tile[data-camera=demo][data-state=online]", timeout=60_000)
            page.wait_for_selector(".tile[data-camera=demo].has-picture", timeout=30_000)
            assert page.eval_on_selector(".tile[data-camera=demo] img", "i => i.naturalWidth") == 768
            assert "Hall (demo)" in page.inner_text(".tile[data-camera=demo]")
            assert page.get_attribute("#conn", "data-state") == "live"
            page.wait_for_selector(".tile[data-camera=north-gate][data-state=offline]", timeout=30_000)
            page.wait_for_selector(".tile[data-camera=demo-2].has-picture", timeout=30_000)
            assert "1 offline" in page.inner_text(".wall-summary")
            assert no_horizontal_scroll(page)
            tidy(page)
            shot(page, tmp_path, "wall.png")

            # keyboard: the tile is reached with Tab and opened with Enter
            page.focus("a[data-route=wall]")
            for _ in range(10):
                page.keyboard.press("Tab")
                if page.evaluate("document.activeElement.dataset.camera") == "demo":
                    break
            assert page.evaluate("document.activeElement.dataset.camera") == "demo"
            page.keyboard.press("Enter")

            # ---- live view over WebRTC: frames advance in the page ----------------------------
            page.wait_for_function(
                "() => Number(document.querySelector('#live-video')?.dataset.frames || 0) >= 5", timeout=30_000
            )
            t0, f0 = page.eval_on_selector("#live-video", "v => [v.currentTime, Number(v.dataset.frames)]")
            # the picture keeps moving: playback time and decoded frames advance (no rate
            # asserted: a loaded machine delivers fewer frames per second, but they come)
            page.wait_for_function(
                f"() => {{ const v = document.querySelector('#live-video');"
                f" return v.currentTime > {t0} + 1.0 && Number(v.dataset.frames) >= {f0} + 4; }}",
                timeout=30_000,
            )
            f1 = int(page.get_attribute("#live-video", "data-frames") or 0)
            assert page.eval_on_selector("#live-video", "v => v.videoWidth") == 768
            assert "people pixelated" in page.inner_text(".stage-badge")
            page.wait_for_function("() => document.querySelector('#live-stats').textContent.length > 0")
            assert page.inner_text("#live-stats").split(" · ")[0] in ("H264", "VP8")

            # ---- rule editor: a zero-length line is refused, the API's error shown on the drawing
            page.click("#new-rule")
            assert page.input_value("#rule-type") == "line_count"
            page.fill("#rule-name", "Hall crossing")
            for box in page.locator("input[name=rule-class]").all():
                box.set_checked(box.get_attribute("value") == "person")
            canvas = page.locator("#rule-canvas").bounding_box()
            assert canvas is not None

            def at(fx: float, fy: float) -> tuple[float, float]:
                return canvas["x"] + fx * canvas["width"], canvas["y"] + fy * canvas["height"]

            page.mouse.click(*at(0.5, 0.3))
            page.mouse.click(*at(0.5, 0.3))
            page.click("#rule-save")
            page.wait_for_selector("#rule-errors:not([hidden])")
            errors = page.inner_text("#rule-errors")
            assert "params.line" in errors and "zero length" in errors, errors
            assert page.get_attribute("#rule-geometry", "aria-invalid") == "true"
            assert page.locator(".rule-item").count() == 0

            # a vertical line across the middle of the hall, people counted both ways
            page.click("#rule-draw")
            page.mouse.click(*at(0.52, 0.12))
            page.mouse.click(*at(0.48, 0.95))
            geometry = page.input_value("#rule-geometry")
            assert '"line":[[0.52,0.12],[0.48,0.95]]' in geometry, geometry
            assert '"in_direction":[0.9988,0.0481]' in geometry, geometry  # left of a->b: rightwards
            # drag the arrow's round handle (drawn 14% of the picture's height from the line's
            # middle) to the left of the line: "in" becomes leftwards; Flip turns it back
            mid = at(0.5, 0.535)
            length = max(40.0, min(canvas["width"], canvas["height"]) * 0.14)
            page.mouse.move(mid[0] + length, mid[1] + 0.0481 * canvas["height"] / canvas["width"] * length)
            page.mouse.down()
            page.mouse.move(mid[0] - 60, mid[1], steps=4)
            page.mouse.up()
            dragged = json.loads(page.input_value("#rule-geometry"))["in_direction"]
            assert dragged[0] < 0 and abs(dragged[1]) < 0.02, dragged
            page.click("#rule-flip")
            flipped = json.loads(page.input_value("#rule-geometry"))["in_direction"]
            assert flipped[0] == -dragged[0] and flipped[0] > 0, flipped
            page.check("input[name=rule-schedule][value='1h']")
            page.click("#rule-save")
            page.wait_for_selector(".rule-item")
            assert page.is_hidden("#rule-errors")
            line_rule = page.get_attribute(".rule-item", "data-rule")
            assert line_rule
            assert "line count · person" in page.inner_text(".rule-item")
            assert "for 1 h (60 min left)" in page.inner_text(".rule-item")

            # editing keeps the camera streaming and bumps the rule's version
            page.click(f".rule-item[data-rule='{line_rule}'] button:has-text('Edit')")
            assert page.is_disabled("#rule-type")
            page.fill("#rule-name", "Hall crossing (east-west)")
            page.click("#rule-save")
            page.wait_for_selector(f".rule-item[data-rule='{line_rule}']:has-text('v2')")
            assert "Hall crossing (east-west)" in page.inner_text(f".rule-item[data-rule='{line_rule}']")
            assert int(page.get_attribute("#live-video", "data-frames") or 0) > f1

            # ---- an occupancy rule on the whole image: its incident alerts the console --------
            page.click("#new-rule")
            # the editor is rebuilt after the previous save: wait for the new, empty one
            page.wait_for_selector("#rule-type:not([disabled])")
            page.select_option("#rule-type", "occupancy")
            page.fill("#rule-name", "Anyone in the hall")
            page.click("#rule-whole")
            page.fill("#param-thresholds", "1")
            page.click("#rule-more summary")
            page.fill("#param-hold_s", "0")
            page.fill("#param-sample_interval_s", "0")
            page.click("#rule-save")
            try:
                page.wait_for_selector(".rule-item >> nth=1")
            except Exception as exc:  # say what the editor showed instead of only timing out
                shown = page.inner_text("#rule-errors") if page.is_visible("#rule-errors") else "(no error shown)"
                raise AssertionError(f"occupancy rule not listed; editor says: {shown}") from exc
            page.wait_for_function("() => window.smartcityConsole.sound.played >= 1", timeout=60_000)
            sound = page.evaluate("window.smartcityConsole.sound")
            assert sound["oscillators"] >= 2 and sound["lastState"] == "running", sound
            alert = page.evaluate("window.smartcityConsole.alerts[0]")
            assert alert["kind"] == "occupancy_above" and alert["cameraIds"] == ["demo"], alert
            assert page.is_visible("#alert-banner")
            assert "occupancy above" in page.inner_text("#alert-banner")
            page.click("#alert-banner button")  # the alert card closes
            assert page.is_hidden("#alert-banner")
            page.wait_for_timeout(1000)  # the server draws the new rules into the video too
            tidy(page)
            shot(page, tmp_path, "live-view-rules.png")

            # ---- incidents: open it, Escape cancels, then acknowledge with a comment ----------
            page.click("a[data-route=incidents]")
            item = f".incident-item[data-id='{alert['incidentId']}']"
            page.click(item)
            page.wait_for_selector("#incident-state")
            assert page.inner_text("#incident-state") == "open"
            # the incident's own evidence snapshot (people pixelated), loaded with the token
            page.wait_for_selector(".evidence img", timeout=15_000)
            page.wait_for_function("() => document.querySelector('.evidence img').naturalWidth > 0", timeout=10_000)
            page.click("button[data-action=acknowledge]")
            page.wait_for_selector("dialog[open]")
            page.keyboard.press("Escape")
            page.wait_for_selector("dialog", state="detached")
            assert page.inner_text("#incident-state") == "open"
            page.click("button[data-action=acknowledge]")
            page.fill("#dlg-comment", "seen on the wall, patrol informed")
            page.click("dialog button[type=submit]")
            page.wait_for_function(
                "() => document.querySelector('#incident-state')?.textContent === 'acknowledged'"
            )
            assert "chief" in page.inner_text(".facts")
            shot(page, tmp_path, "incidents.png")
            token = gql(
                base,
                "",
                'mutation { login(username: "chief", password: "chief\'s password") { ... on LoginSuccess { token } } }',
            )["login"]["token"]
            acked = gql(
                base,
                token,
                '{ incidents(state: "acknowledged") { edges { node { id acknowledgedBy comment } } } }',
            )
            assert {
                "id": alert["incidentId"],
                "acknowledgedBy": "chief",
                "comment": "seen on the wall, patrol informed",
            } in [e["node"] for e in acked["incidents"]["edges"]]

            # ---- an emergency (a smoke detector's alarm): red, on top, its own sound, one click --
            smoke_alarm(base)
            first_item = ".incident-list li:first-child .incident-item[data-emergency=true]"
            page.wait_for_selector(first_item, timeout=30_000)
            assert "smoke" in page.inner_text(first_item).lower()
            page.wait_for_function("() => window.smartcityConsole.sound.lastSound === 'emergency'", timeout=30_000)
            assert page.get_attribute("#alert-banner", "data-emergency") == "true"
            emergency_id = page.get_attribute(first_item, "data-id")
            page.click(".incident-list li.emergency button.confirm")
            # confirmed: it leaves the list of open incidents (and the server says who confirmed)
            page.wait_for_selector(f".incident-item[data-id='{emergency_id}']", state="detached", timeout=10_000)
            confirmed = gql(base, token, '{ incidents(state: "acknowledged") { edges { node { id kind acknowledgedBy } } } }')
            assert {"id": emergency_id, "kind": "smoke", "acknowledgedBy": "chief"} in [
                e["node"] for e in confirmed["incidents"]["edges"]
            ]

            # ---- counts dashboard: the line's count rises, CSV export ------------------------
            page.goto(f"{base}/#/counts?camera=demo&rule={line_rule}&range=1h")
            page.wait_for_function(
                "() => Number(document.querySelector('#count-total')?.dataset.value || 0) > 0", timeout=60_000
            )
            first = int(page.get_attribute("#count-total", "data-value") or 0)
            page.wait_for_function(
                f"() => Number(document.querySelector('#count-total').dataset.value) > {first}", timeout=60_000
            )
            shown = int(page.get_attribute("#count-total", "data-value") or 0)
            assert shown > first >= 1
            assert page.locator("#dash-chart svg rect").count() >= 1
            header = page.locator(".kpi table.data thead th").all_inner_texts()
            assert header == ["Class", "in", "out", "Total"], header
            with page.expect_download() as dl:
                page.click("#dash-csv")
            rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
            assert rows and {r["rule_id"] for r in rows} == {line_rule}
            assert {r["class"] for r in rows} == {"person"}
            assert sum(int(r["n"]) for r in rows) >= shown
            assert no_horizontal_scroll(page)
            tidy(page)
            shot(page, tmp_path, "dashboard.png")

            # ---- a 4K wall screen: same views, larger type, no horizontal scroll --------------
            page.set_viewport_size({"width": 3840, "height": 2160})
            page.goto(f"{base}/#/wall")
            page.wait_for_selector(".tile[data-camera=demo].has-picture")
            font = page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
            assert font >= 24, font
            assert page.eval_on_selector(".tile", "t => t.getBoundingClientRect().width") > 600
            assert no_horizontal_scroll(page)
            shot(page, tmp_path, "wall-4k.png", publish=False)
            context.close()

            # ---- an operator scoped to the police group: privacy mode cannot be turned off ----
            created = gql(
                base,
                token,
                'mutation { createUser(input: {username: "agent-12", password: "agent-12 password!", role: "operator",'
                ' groups: ["police"]}) { __typename } }',
            )
            assert created["createUser"]["__typename"] == "User"
            operator = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
            watch_errors(operator, page_errors)
            operator.goto(base)
            operator.fill("#login-user", "agent-12")
            operator.fill("#login-password", "agent-12 password!")
            operator.click("#login-submit")
            operator.wait_for_selector(".tile[data-camera=demo]")
            assert sorted(operator.eval_on_selector_all(".tile", "ts => ts.map(t => t.dataset.camera)")) == [
                "demo",
                "demo-2",
            ]
            operator.click(".tile[data-camera=demo]")
            operator.wait_for_function(
                "() => document.querySelector('.stage-badge')?.dataset.state === 'playing'", timeout=30_000
            )
            assert operator.is_disabled("#privacy") and operator.is_checked("#privacy")
            assert "people pixelated" in operator.inner_text(".stage-badge")
        finally:
            browser.close()
    assert page_errors == []
