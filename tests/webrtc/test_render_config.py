"""Pure parts of the live view: the size a viewer sees, the config, the codec choice (pixelation
and overlays are smartcity.privacy's: tests/privacy)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from smartcity.webrtc import (
    IceServerConfig,
    InvalidOffer,
    LiveViewConfig,
    LiveViewHub,
    choose_codec,
)
from smartcity.webrtc.render import fit_size


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
