"""What a viewer's offer may make the server do: bounded offers, STUN only to allowed networks,
answers naming only advertised addresses, a few live views per user and unconnected offers freed.
Everything stays on loopback: "other" networks here are other 127.x addresses."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from pydantic import ValidationError
from webrtc_helpers import CounterCamera, Viewer, connect

from smartcity.webrtc import InvalidOffer, LiveViewConfig, LiveViewError, LiveViewHub, TooManyViewers
from smartcity.webrtc.hub import settle_then_close
from smartcity.webrtc.offers import CandidatePolicy


async def wait_for(cond, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout_s):
        while not cond():
            await asyncio.sleep(0.02)


@pytest.fixture
async def peers() -> AsyncIterator[list[RTCPeerConnection]]:
    pcs: list[RTCPeerConnection] = []
    yield pcs
    for pc in pcs:
        await settle_then_close(pc)


async def offer(peers: list[RTCPeerConnection]) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    peers.append(pc)
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def with_candidates(sdp: str, lines: list[str]) -> str:
    """The offer with extra candidate lines placed before its own (checked first)."""
    at = sdp.index("a=candidate:")
    return sdp[:at] + "".join(f"{line}\r\n" for line in lines) + sdp[at:]


def candidate(address: str, port: int, priority: int = 2130706432) -> str:
    return f"a=candidate:extra{port} 1 udp {priority} {address} {port} typ host"


async def test_big_offers_are_refused_before_they_are_parsed(peers: list[RTCPeerConnection]) -> None:
    cam = CounterCamera()
    hub = LiveViewHub(cam, LiveViewConfig())
    try:
        _, sdp = await offer(peers)
        with pytest.raises(InvalidOffer, match=r"40 ICE candidates: at most 32 \(live_view.max_offer_candidates\)"):
            await hub.answer("cam1", with_candidates(sdp, [candidate("127.0.0.1", 20000 + i) for i in range(39)]))
        huge = with_candidates(sdp, [candidate("127.0.0.1", 20000 + i % 40000) for i in range(10_000)])
        assert len(huge) > 600_000
        with pytest.raises(InvalidOffer, match=r"at most 65536 \(live_view.max_offer_bytes\)"):
            await hub.answer("cam1", huge)
        assert hub.stats().camera("cam1").viewers == 0
    finally:
        await hub.close()


async def test_the_server_never_contacts_a_candidate_outside_the_allowed_networks(
    peers: list[RTCPeerConnection],
) -> None:
    trap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    trap.bind(("127.0.0.3", 0))
    trap.setblocking(False)
    cam = CounterCamera()
    hub = LiveViewHub(cam, LiveViewConfig(allowed_candidate_networks=["127.0.0.1/32"]))
    try:
        pc, sdp = await offer(peers)
        # only candidates elsewhere: refused, nothing is sent
        own = [line for line in sdp.splitlines() if line.startswith("a=candidate:")]
        elsewhere = sdp
        for line in own:
            elsewhere = elsewhere.replace(line, line.replace(" 127.0.0.1 ", " 127.0.0.3 "))
        with pytest.raises(InvalidOffer, match="none of the offer's 1 ICE candidates is on a network live views accept"):
            await hub.answer("cam1", elsewhere)
        # a candidate elsewhere (checked first, by priority) next to an allowed one: the view works
        # through the allowed one, and the other never receives a packet
        got: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        pc.on("track", lambda track: got.done() or got.set_result(track))
        answer = await hub.answer("cam1", with_candidates(sdp, [candidate("127.0.0.3", trap.getsockname()[1])]))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        viewer = Viewer(pc, await asyncio.wait_for(got, 10))  # type: ignore[arg-type]
        await viewer.read(4)
        with pytest.raises(BlockingIOError):
            trap.recv(2048)
    finally:
        trap.close()
        await hub.close()


@pytest.mark.parametrize(
    "config",
    [
        LiveViewConfig(advertise_addresses=["127.0.0.1"]),
        LiveViewConfig(allowed_candidate_networks=["127.0.0.1/32"]),  # no list: the allowed ones
    ],
    ids=["advertised", "allowed"],
)
async def test_answers_name_only_the_advertised_addresses(monkeypatch: pytest.MonkeyPatch, config: LiveViewConfig) -> None:
    def two_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1", "127.0.0.5"] if use_ipv4 else []

    monkeypatch.setattr(aioice.ice, "get_host_addresses", two_addresses)  # the server has two "interfaces"
    cam = CounterCamera()
    hub = LiveViewHub(cam, config)
    viewer = None
    try:
        viewer = await connect(hub)
        answer = viewer.pc.remoteDescription.sdp
        hosts = [line.split()[4] for line in answer.splitlines() if line.startswith("a=candidate:")]
        assert hosts == ["127.0.0.1"]
        assert "127.0.0.5" in viewer.pc.localDescription.sdp  # it was there to be named
        await viewer.read(2)
    finally:
        if viewer is not None:
            await viewer.close()
        await hub.close()


async def test_nothing_to_advertise_is_an_error_that_says_what_to_set(peers: list[RTCPeerConnection]) -> None:
    hub = LiveViewHub(CounterCamera(), LiveViewConfig(advertise_addresses=["127.0.0.9"]))
    try:
        _, sdp = await offer(peers)
        with pytest.raises(LiveViewError, match="set live_view.advertise_addresses"):
            await hub.answer("cam1", sdp)
        assert hub.stats().camera("cam1").viewers == 0
    finally:
        await hub.close()


async def test_one_user_cannot_take_every_slot_and_unconnected_offers_are_freed(
    peers: list[RTCPeerConnection],
) -> None:
    cam = CounterCamera()
    hub = LiveViewHub(cam, LiveViewConfig(max_viewers_per_camera=3, max_views_per_user=2, connect_timeout_s=0.5))
    admin = None
    try:
        for _ in range(2):  # answers never applied: these never connect
            _, sdp = await offer(peers)
            await hub.answer("cam1", sdp, viewer="mallory")
        _, sdp = await offer(peers)
        with pytest.raises(TooManyViewers, match=r"mallory already holds 2 live views \(live_view.max_views_per_user\)"):
            await hub.answer("cam1", sdp, viewer="mallory")
        admin = await connect(hub, viewer="admin")  # the camera's last slot is still free for others
        await admin.read(2)
        # the unconnected offers are dropped after connect_timeout_s, and their slots with them
        await wait_for(lambda: hub.stats().camera("cam1").viewers == 1)
        _, sdp = await offer(peers)
        await hub.answer("cam1", sdp, viewer="mallory")
    finally:
        if admin is not None:
            await admin.close()
        await hub.close()


def test_live_view_limits_config() -> None:
    cfg = LiveViewConfig()
    assert cfg.allowed_candidate_networks == ["127.0.0.0/8", "::1/128"]
    assert cfg.connect_timeout_s <= 15 and cfg.max_views_per_user == 2
    assert (cfg.max_offer_bytes, cfg.max_offer_candidates) == (65536, 32)
    assert LiveViewConfig(allowed_candidate_networks=["10.20.0.7/16"]).allowed_candidate_networks == ["10.20.0.0/16"]
    with pytest.raises(ValidationError, match="is not an IP address or CIDR network"):
        LiveViewConfig(allowed_candidate_networks=["city-lan"])
    with pytest.raises(ValidationError, match="is not an IP address"):
        LiveViewConfig(advertise_addresses=["10.0.0.0/8"])
    with pytest.raises(ValidationError, match="finite"):
        LiveViewConfig(connect_timeout_s=float("nan"))


def test_candidate_policy_reads_addresses_strictly() -> None:
    policy = CandidatePolicy.of(["127.0.0.0/8", "::1/128"])
    allowed = ["127.0.0.3", "::1", "::ffff:127.0.0.1"]  # an IPv4-mapped address is judged as IPv4
    refused = ["10.0.0.1", "::ffff:10.0.0.1", "fe80::1", "3f2a.local", "localhost", ""]
    assert [policy.allows(a) for a in allowed] == [True] * 3
    assert [policy.allows(a) for a in refused] == [False] * 6
    assert CandidatePolicy.of(["127.0.0.0/8"], ["127.0.0.1"]).advertises("127.0.0.2") is False
