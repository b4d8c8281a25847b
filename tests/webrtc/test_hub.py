"""Live views end to end: real aiortc on both ends (loopback host candidates, no ICE server)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from webrtc_helpers import CounterCamera, Viewer, connect

from smartcity.webrtc import InvalidOffer, LiveViewConfig, LiveViewError, LiveViewHub, TooManyViewers


async def wait_for(cond, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout_s):
        while not cond():
            await asyncio.sleep(0.02)


def edge_energy(img: np.ndarray, box: tuple[float, float, float, float], margin: int = 6) -> float:
    """Mean absolute difference between horizontal neighbours inside `box` (0 for a flat patch)."""
    x1, y1, x2, y2 = (int(v) for v in box)
    patch = img[y1 + margin : y2 - margin, x1 + margin : x2 - margin].astype(np.float32).mean(axis=2)
    return float(np.abs(np.diff(patch, axis=1)).mean())


@pytest.fixture
async def hub_and_camera():  # type: ignore[no-untyped-def]
    cam = CounterCamera()
    hub = LiveViewHub(cam, LiveViewConfig(fps=10, keyframe_interval_s=300, keyframe_min_interval_s=0))
    viewers: list[Viewer] = []
    yield hub, cam, viewers
    for v in viewers:
        await v.close()
    await hub.close()


async def test_viewer_decodes_frames_whose_content_advances(hub_and_camera) -> None:  # type: ignore[no-untyped-def]
    hub, cam, viewers = hub_and_camera
    viewers.append(v := await connect(hub))
    frames = await v.read(8)
    assert all(f.shape == (cam.height, cam.width, 3) for f in frames)
    # the frame numbers drawn by the camera come back strictly increasing: live, not a still
    assert all(b > a for a, b in zip(v.indices, v.indices[1:])), v.indices
    assert set(v.indices) <= cam.served
    s = hub.stats().camera("cam1")
    assert s.viewers == 1 and s.encoders == 1
    assert s.encodes >= 8 and s.packets_sent >= 8
    assert s.keyframes == 1  # the first frame only: no periodic key frame within 300 s


async def test_vp8_viewer_when_the_offer_has_no_h264(hub_and_camera) -> None:  # type: ignore[no-untyped-def]
    hub, _, viewers = hub_and_camera
    viewers.append(v := await connect(hub, codecs=("VP8",)))
    await v.read(4)
    assert all(b > a for a, b in zip(v.indices, v.indices[1:])), v.indices
    assert v.pc.getTransceivers()[0].receiver._track is not None
    sdp = v.pc.remoteDescription.sdp
    assert "VP8/90000" in sdp and "H264/90000" not in sdp


async def test_four_viewers_share_one_encoder(hub_and_camera) -> None:  # type: ignore[no-untyped-def]
    hub, cam, viewers = hub_and_camera
    for _ in range(4):
        viewers.append(await connect(hub))
    await asyncio.gather(*(v.read(10) for v in viewers))
    s = hub.stats().camera("cam1")
    assert s.viewers == 4 and s.encoders == 1
    # one encode per source frame taken, whatever the number of viewers
    assert s.encodes == s.frames_in
    assert s.encodes <= len(cam.served)
    decoded = sum(len(v.indices) for v in viewers)
    assert decoded >= 40 and s.packets_sent >= decoded
    assert s.encodes < decoded / 2
    # the same packets decode to the same pixels at every viewer
    common = set.intersection(*(set(v.indices) for v in viewers))
    assert common
    i = max(common)
    pictures = [v.frames[v.indices.index(i)] for v in viewers]
    assert all(np.array_equal(pictures[0], p) for p in pictures[1:])


async def test_a_new_viewer_gets_a_forced_key_frame(hub_and_camera) -> None:  # type: ignore[no-untyped-def]
    hub, _, viewers = hub_and_camera
    viewers.append(first := await connect(hub))
    await first.read(3)
    before = hub.stats().camera("cam1")
    assert before.keyframes_forced == 0
    viewers.append(second := await connect(hub))
    # with periodic key frames 300 s apart, the second viewer can only decode thanks to a forced one
    await second.read(2, timeout_s=5)
    after = hub.stats().camera("cam1")
    assert after.keyframes_forced == 1
    assert after.keyframes == before.keyframes + 1
    assert after.encoders == 1


async def test_picture_loss_report_forces_a_key_frame(hub_and_camera) -> None:  # type: ignore[no-untyped-def]
    hub, _, viewers = hub_and_camera
    viewers.append(v := await connect(hub))
    await v.read(3)
    assert hub.stats().camera("cam1").keyframes_forced == 0
    await v.send_pli()
    await wait_for(lambda: hub.stats().camera("cam1").keyframes_forced == 1)
    await v.read(2)
    assert all(b > a for a, b in zip(v.indices, v.indices[1:]))


async def test_people_are_pixelated_unless_an_admin_turns_it_off(hub_and_camera) -> None:  # type: ignore[no-untyped-def]
    hub, cam, viewers = hub_and_camera
    viewers.append(private := await connect(hub))
    viewers.append(clear := await connect(hub, pixelate=False))
    (p_img,) = (await private.read(3))[-1:]
    (c_img,) = (await clear.read(3))[-1:]
    assert cam.person is not None
    # the checkerboard under the person is flattened into blocks; the control patch keeps its edges
    assert edge_energy(p_img, cam.person) < 5.0, edge_energy(p_img, cam.person)
    assert edge_energy(p_img, cam.control) > 18.0
    assert edge_energy(c_img, cam.person) > 18.0
    # the block means keep the region's average brightness (mosaic, not a black box)
    x1, y1, x2, y2 = (int(b) for b in cam.person)
    assert abs(float(p_img[y1:y2, x1:x2].mean()) - 127.5) < 20
    # two privacy variants of one camera: two encoders, each shared by its own viewers
    assert hub.stats().camera("cam1").encoders == 2


async def test_whole_picture_hidden_when_nobody_can_be_located() -> None:
    cam = CounterCamera()
    cam.person = None

    async def unknown_people(camera_id: str):  # type: ignore[no-untyped-def]
        frame = await CounterCamera.live_frame(cam, camera_id)
        assert frame is not None
        return type(frame)(frame.image, frame.t, frame.index, person_boxes=None)

    class NoAnalysis:
        live_frame = staticmethod(unknown_people)

    hub = LiveViewHub(NoAnalysis(), LiveViewConfig(fps=10))
    v = await connect(hub)
    try:
        img = (await v.read(2))[-1]
        assert edge_energy(img, cam.control) < 5.0
    finally:
        await v.close()
        await hub.close()


async def test_rule_geometry_is_drawn_and_can_be_replaced(hub_and_camera) -> None:  # type: ignore[no-untyped-def]
    hub, cam, viewers = hub_and_camera
    line = [(0.05, 0.5), (0.95, 0.5)]
    viewers.append(v := await connect(hub, overlay=[line]))
    img = (await v.read(3))[-1]
    y = round(0.5 * (cam.height - 1))
    row = img[y, int(0.2 * cam.width) : int(0.8 * cam.width)].astype(np.int32)
    assert np.abs(row - np.array([255, 200, 0])).max(axis=1).mean() < 40
    off_line = img[y + 20, int(0.2 * cam.width) : int(0.8 * cam.width)].astype(np.int32)
    assert np.abs(off_line - np.array([255, 200, 0])).max(axis=1).mean() > 80
    hub.set_overlay("cam1", [])
    await v.read(4)
    img = v.frames[-1]
    row = img[y, int(0.2 * cam.width) : int(0.8 * cam.width)].astype(np.int32)
    assert np.abs(row - np.array([255, 200, 0])).max(axis=1).mean() > 80


async def test_last_viewer_leaving_stops_the_encoder(hub_and_camera) -> None:  # type: ignore[no-untyped-def]
    hub, _, viewers = hub_and_camera
    a = await connect(hub)
    b = await connect(hub)
    await asyncio.gather(a.read(2), b.read(2))
    await a.close()
    await wait_for(lambda: hub.stats().camera("cam1").viewers == 1, 10)
    assert hub.stats().camera("cam1").encoders == 1
    await b.read(2)  # the other viewer is unaffected
    await b.close()
    await wait_for(lambda: hub.stats().camera("cam1").encoders == 0, 10)
    assert hub.stats().camera("cam1").viewers == 0


async def test_viewer_that_never_connects_is_dropped() -> None:
    cam = CounterCamera()
    hub = LiveViewHub(cam, LiveViewConfig(connect_timeout_s=0.5))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    try:
        await hub.answer("cam1", pc.localDescription.sdp)  # the answer is never applied
        assert hub.stats().camera("cam1").viewers == 1
        await wait_for(lambda: hub.stats().camera("cam1").viewers == 0, 5)
        assert hub.stats().camera("cam1").encoders == 0
    finally:
        await pc.close()
        await hub.close()


async def test_bad_offers_and_limits_are_refused() -> None:
    cam = CounterCamera()
    hub = LiveViewHub(cam, LiveViewConfig(max_viewers_per_camera=1))
    audio_only = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    audio_only.addTransceiver("audio", direction="recvonly")
    await audio_only.setLocalDescription(await audio_only.createOffer())
    v = None
    try:
        with pytest.raises(InvalidOffer, match="unparsable|no video"):
            await hub.answer("cam1", "not an sdp")
        with pytest.raises(InvalidOffer, match="no video"):
            await hub.answer("cam1", audio_only.localDescription.sdp)
        v = await connect(hub)
        with pytest.raises(TooManyViewers):
            await connect(hub)
        assert hub.stats().camera("cam1").viewers == 1
        with pytest.raises(ValueError, match="normalised"):
            hub.set_overlay("cam1", [[(0.0, 0.0), (2.0, 1.0)]])
    finally:
        await audio_only.close()
        if v is not None:
            await v.close()
        await hub.close()


async def test_close_ends_every_view_and_refuses_new_ones() -> None:
    cam = CounterCamera()
    hub = LiveViewHub(cam, LiveViewConfig(fps=10))
    viewers = [await connect(hub), await connect(hub, pixelate=False)]
    try:
        await asyncio.gather(*(v.read(2) for v in viewers))
        await hub.close()
        s = hub.stats().camera("cam1")
        assert (s.viewers, s.encoders) == (0, 0)
        with pytest.raises(LiveViewError):
            await connect(hub)
        await wait_for(lambda: all(v.pc.connectionState in ("closed", "failed") for v in viewers), 10)
    finally:
        for v in viewers:
            await v.close()


async def test_a_bad_picture_is_skipped_and_the_view_goes_on() -> None:
    cam = CounterCamera()

    class SometimesGrey:
        async def live_frame(self, camera_id: str):  # type: ignore[no-untyped-def]
            frame = await cam.live_frame(camera_id)
            assert frame is not None
            if frame.index % 3 == 0:  # not H x W x 3: the renderer refuses it
                return type(frame)(frame.image[..., 0], frame.t, frame.index, frame.person_boxes)
            return frame

    hub = LiveViewHub(SometimesGrey(), LiveViewConfig(fps=10))
    v = await connect(hub)
    try:
        await v.read(6)
        assert all(i % 3 != 0 for i in v.indices)
        assert all(b > a for a, b in zip(v.indices, v.indices[1:]))
        s = hub.stats().camera("cam1")
        assert s.encoders == 1 and s.frames_in > s.encodes
    finally:
        await v.close()
        await hub.close()
