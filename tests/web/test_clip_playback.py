"""An evidence clip as the console shows it: real headless Chromium plays the WebM (VP8) that
`render_clip` makes in a <video> element, at its size and its duration."""

from __future__ import annotations

import pytest
from testkit import CHROMIUM_ARGS, TexturedSource, chromium_or_skip

from smartcity.core.privacy_mask import PrivacyMask
from smartcity.privacy.clip import keep_frame, render_clip

CHROMIUM = chromium_or_skip()

from playwright.sync_api import Route, sync_playwright  # noqa: E402 - after the skip

PAGE = "http://127.0.0.1:9/clip.html"  # never reached: the page and the clip are routed here
PLAYED = """async () => {
  const v = document.querySelector("video");
  if (v.readyState < 2) await new Promise((ok, ko) => { v.onloadeddata = ok; v.onerror = () => ko(String(v.error && v.error.message)); });
  await v.play();
  await new Promise((ok) => { const step = () => (v.currentTime > 0.3 ? ok() : requestAnimationFrame(step)); step(); });
  return { w: v.videoWidth, h: v.videoHeight, duration: v.duration, error: v.error };
}"""


def test_chromium_plays_an_evidence_clip() -> None:
    src = TexturedSource(1, 320, 240)
    mask = PrivacyMask.from_boxes([(200.0, 60.0, 240.0, 200.0)], 320, 240)
    clip = render_clip([keep_frame(src.image, i * 0.2, mask, width=320, quality=6) for i in range(10)])

    def serve(route: Route) -> None:
        if route.request.url.endswith(".webm"):
            route.fulfill(status=200, body=clip, content_type="video/webm")
        else:
            route.fulfill(status=200, content_type="text/html", body='<video muted src="/e.webm"></video>')

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("http://127.0.0.1:9/**", serve)
            page.goto(PAGE)
            got = page.evaluate(PLAYED)
        finally:
            browser.close()
    assert got["error"] is None
    assert (got["w"], got["h"]) == (320, 240)
    assert got["duration"] == pytest.approx(1.8, abs=0.25)  # 10 frames 0.2 s apart (the last shown ~0.2 s)
