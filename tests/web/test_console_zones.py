"""The privacy-zone editor in real headless Chromium against the real server on the demo camera:
an admin draws a zone on the live picture (the rule editor's polygon drawing), saves it, and the
zone is filled in the live video, in the clear view the admin turns privacy mode off for, and in
the snapshot; the change is in the audit log (operators are refused: tests/graphql/test_privacy_zones.py).

Runs like tests/web/test_console.py (Debian's chromium and the playwright package)."""

from __future__ import annotations

import io

import av
import httpx
import numpy as np
import pytest
from console_server import ADMIN
from test_console import CHROMIUM, CHROMIUM_ARGS, gql, watch_errors

from smartcity.privacy.zones import ZONE_RGB

pytestmark = [pytest.mark.slow]

from playwright.sync_api import Page, sync_playwright  # noqa: E402 - after test_console's skips

# the zone drawn: the top-right corner of the picture (a window of the hall)
CORNERS = [(0.70, 0.05), (0.95, 0.05), (0.95, 0.35), (0.70, 0.35)]
INSIDE = (0.82, 0.2)

# mean colour of a small square of the playing video around INSIDE, read through a canvas
VIDEO_PATCH = """(at) => {
  const v = document.querySelector('#live-video');
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  const x = Math.round(at[0] * c.width), y = Math.round(at[1] * c.height);
  const d = g.getImageData(x - 8, y - 8, 16, 16).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
  const n = d.length / 4;
  return [sum[0] / n, sum[1] / n, sum[2] / n];
}"""


@pytest.fixture
def server(console_server: str) -> str:
    """The folder's one console server (tests/web/conftest.py)."""
    return console_server


def video_shows_zone(page: Page) -> bool:
    rgb = page.evaluate(VIDEO_PATCH, list(INSIDE))
    return bool(max(abs(a - b) for a, b in zip(rgb, ZONE_RGB)) <= 12)


def wait_zone_in_video(page: Page) -> None:
    for _ in range(60):  # the actor gets the zone within a second or two; frames keep coming
        if video_shows_zone(page):
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"zone not filled in the video: {page.evaluate(VIDEO_PATCH, list(INSIDE))}")


def test_admin_draws_a_privacy_zone_that_even_the_clear_view_keeps(server: str) -> None:
    base = server
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
            watch_errors(page, errors)
            page.goto(base)
            page.fill("#login-user", ADMIN[0])
            page.fill("#login-password", ADMIN[1])
            page.press("#login-password", "Enter")
            page.wait_for_selector(".tile[data-camera=demo][data-state=online]", timeout=60_000)
            page.goto(f"{base}/#/camera/demo")
            page.wait_for_function(
                "() => Number(document.querySelector('#live-video')?.dataset.frames || 0) >= 5",
                timeout=60_000,
            )
            assert not video_shows_zone(page)

            # ---- draw the zone: click its corners, Enter closes it ------------------------------
            page.click("#edit-zones")
            page.click("#zone-add")
            canvas = page.locator("#rule-canvas").bounding_box()
            assert canvas is not None
            for fx, fy in CORNERS:
                page.mouse.click(canvas["x"] + fx * canvas["width"], canvas["y"] + fy * canvas["height"])
            page.keyboard.press("Enter")
            page.wait_for_selector("#zone-list li[data-zone='0']")
            assert "4 points" in page.inner_text("#zone-list")
            page.click("#zone-save")
            page.wait_for_selector("#edit-zones:has-text('Privacy zones (1)')")

            # ---- filled in the live video, then in the admin's clear view ------------------------
            wait_zone_in_video(page)
            page.uncheck("#privacy")
            page.wait_for_selector(".stage-badge:has-text('privacy OFF')", timeout=30_000)
            page.wait_for_function(
                "() => Number(document.querySelector('#live-video')?.dataset.frames || 0) >= 5",
                timeout=30_000,
            )
            wait_zone_in_video(page)
            assert not errors, errors
        finally:
            browser.close()

    token = gql(
        base,
        "",
        f'mutation {{ login(username: "{ADMIN[0]}", password: "{ADMIN[1]}") {{ ... on LoginSuccess {{ token }} }} }}',
    )["login"]["token"]
    cam = gql(base, token, '{ camera(id: "demo") { privacyZones snapshotUrl } }')["camera"]
    assert len(cam["privacyZones"]) == 1 and len(cam["privacyZones"][0]) == 4
    # the snapshot, pixelated or not, has the zone filled too
    r = httpx.get(f"{base}{cam['snapshotUrl']}", headers={"authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200
    with av.open(io.BytesIO(r.content)) as c:
        img = next(c.decode(video=0)).to_ndarray(format="rgb24")
    h, w = img.shape[:2]
    patch = img[
        int(INSIDE[1] * h) - 8 : int(INSIDE[1] * h) + 8, int(INSIDE[0] * w) - 8 : int(INSIDE[0] * w) + 8
    ]
    assert np.abs(patch.reshape(-1, 3).mean(axis=0) - np.array(ZONE_RGB)).max() <= 12
    audit = gql(base, token, "{ auditLog { action actor target } }")["auditLog"]
    assert {"action": "camera.privacy", "actor": ADMIN[0], "target": "camera:demo"} in audit
