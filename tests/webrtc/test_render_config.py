"""Pure parts of the live view: what a viewer sees (pixelation, overlay, size) and the config."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from smartcity.webrtc import (
    IceServerConfig,
    InvalidOffer,
    LiveViewConfig,
    LiveViewHub,
    OverlayShape,
    choose_codec,
)
from smartcity.webrtc.render import compose, fit_size, pixelate, rasterise


def noise(h: int = 120, w: int = 160) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_pixelate_flattens_blocks_inside_the_box_only() -> None:
    img = noise()
    out = img.copy()
    pixelate(out, (16.0, 8.0, 112.0, 104.0))  # 96 x 96: blocks of 16
    inside = out[8:104, 16:112].astype(np.float32)
    block = inside[:16, :16]
    assert np.ptp(block.reshape(-1, 3), axis=0).max() == 0
    # each block holds its own mean (rounded down), not a constant for the whole box
    assert np.allclose(block[0, 0], img[8:24, 16:32].reshape(-1, 3).mean(axis=0), atol=1.0)
    assert len({tuple(inside[y, x]) for y in range(0, 96, 16) for x in range(0, 96, 16)}) > 30
    outside = np.ones(img.shape[:2], bool)
    outside[8:104, 16:112] = False
    assert np.array_equal(out[outside], img[outside])


@settings(max_examples=60, deadline=None)
@given(
    x1=st.floats(-50, 200), y1=st.floats(-50, 150), w=st.floats(0, 220), h=st.floats(0, 170)
)
def test_pixelate_any_box_keeps_shape_and_the_pixels_outside(x1: float, y1: float, w: float, h: float) -> None:
    img = noise()
    out = img.copy()
    pixelate(out, (x1, y1, x1 + w, y1 + h))
    assert out.shape == img.shape and out.dtype == np.uint8
    xa, ya = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
    xb, yb = min(160, int(np.ceil(x1 + w))), min(120, int(np.ceil(y1 + h)))
    mask = np.ones((120, 160), bool)
    if xb > xa and yb > ya:
        mask[ya:yb, xa:xb] = False
    assert np.array_equal(out[mask], img[mask])


def test_compose_hides_everything_when_people_cannot_be_located_and_keeps_the_input() -> None:
    img = noise()
    before = img.copy()
    out = compose(img, None, pixelate_people=True, overlay=None)
    assert np.array_equal(img, before)
    # blocks of min(160, 120) // 6 = 20 pixels: at most 8 x 6 distinct colours
    assert len(np.unique(out.reshape(-1, 3), axis=0)) <= 48
    assert np.array_equal(compose(img, None, pixelate_people=False, overlay=None), img)
    with pytest.raises(ValueError, match="uint8"):
        compose(img.astype(np.float32), (), pixelate_people=True, overlay=None)


def test_overlay_lines_and_closed_zones_are_drawn_over_pixelation() -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    zone = OverlayShape.coerce([(0.1, 0.1), (0.5, 0.1), (0.5, 0.9)])
    line = OverlayShape(((0.6, 0.5), (0.9, 0.5)), rgb=(0, 255, 0))
    assert zone.closed and not line.closed
    raster = rasterise([zone, line], 200, 100)
    out = compose(img, [(0.0, 0.0, 200.0, 100.0)], pixelate_people=True, overlay=raster)
    yellow = np.all(out == (255, 200, 0), axis=2)
    green = np.all(out == (0, 255, 0), axis=2)
    # the closing edge (0.5, 0.9) -> (0.1, 0.1) of the zone is drawn: a pixel on its midpoint
    assert yellow[round(0.5 * 99), round(0.3 * 199)]
    assert green[round(0.5 * 99), round(0.75 * 199)] and not green[10, 10]
    # thickness 4 (4:2:0 chroma keeps the hue): a horizontal line covers 4 rows
    assert green[:, round(0.75 * 199)].sum() == 4
    with pytest.raises(ValueError, match="rasterised for"):
        compose(np.zeros((50, 50, 3), np.uint8), (), pixelate_people=False, overlay=raster)


def test_fit_size_keeps_aspect_even_and_never_upscales() -> None:
    assert fit_size(640, 480, 1280, 720) == (640, 480)
    assert fit_size(1920, 1080, 1280, 720) == (1280, 720)
    assert fit_size(1000, 1000, 640, 480) == (480, 480)
    w, h = fit_size(1279, 721, 640, 360)
    assert w % 2 == 0 and h % 2 == 0 and w <= 640 and h <= 360


def test_config_rejects_unknown_keys_and_bad_ice_servers() -> None:
    with pytest.raises(ValidationError, match="extra"):
        LiveViewConfig.model_validate({"fps": 10, "colour": "red"})
    with pytest.raises(ValidationError, match="less than or equal"):
        LiveViewConfig(fps=60)
    with pytest.raises(ValidationError, match="stun:, turn: or turns:"):
        IceServerConfig(urls=["http://example.org"])
    with pytest.raises(ValidationError, match="username and a credential"):
        IceServerConfig(urls=["turn:turn.example.org:3478"])
    with pytest.raises(ValidationError, match="repeat"):
        LiveViewConfig(codecs=["VP8", "VP8"])


def test_hub_hands_the_configured_ice_servers_to_aiortc_and_browsers_never_a_default() -> None:
    class NoFrames:
        async def live_frame(self, camera_id: str) -> None:
            return None

    assert LiveViewHub(NoFrames()).rtc_configuration().iceServers == []
    turn = IceServerConfig(urls=["turn:turn.example.org:3478"], username="u", credential="p")
    hub = LiveViewHub(NoFrames(), LiveViewConfig(ice_servers=[IceServerConfig(urls=["stun:stun.example.org"]), turn]))
    servers = hub.rtc_configuration().iceServers
    assert [s.urls for s in servers] == [["stun:stun.example.org"], ["turn:turn.example.org:3478"]]
    assert (servers[1].username, servers[1].credential) == ("u", "p")
    assert hub.browser_ice_servers() == [
        {"urls": ["stun:stun.example.org"]},
        {"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"},
    ]


OFFER = """v=0
o=- 1 1 IN IP4 0.0.0.0
s=-
t=0 0
a=group:BUNDLE 0
m=video 9 UDP/TLS/RTP/SAVPF 96 97
c=IN IP4 0.0.0.0
a=mid:0
a={direction}
a=rtcp-mux
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF
a=setup:actpass
a=rtpmap:96 {first}/90000
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
"""


def test_codec_choice_follows_server_preference_within_the_offer() -> None:
    vp8_only = OFFER.format(direction="recvonly", first="VP8").replace("\n", "\r\n")
    assert choose_codec(vp8_only, ["H264", "VP8"]) == "VP8"
    with pytest.raises(InvalidOffer, match="no video codec in common"):
        choose_codec(vp8_only, ["H264"])
    with pytest.raises(InvalidOffer, match="cannot receive"):
        choose_codec(OFFER.format(direction="sendonly", first="VP8").replace("\n", "\r\n"), ["VP8"])
