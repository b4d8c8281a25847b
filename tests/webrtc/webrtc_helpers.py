"""Test doubles with real behaviour for live views: a camera of generated frames that carry their
frame number, and an aiortc viewer on loopback that decodes what it receives."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from smartcity.sources import read_frame_counter
from smartcity.webrtc import LiveFrame, LiveViewHub
from smartcity.webrtc.hub import settle_then_close

COUNTER_BITS = 16
COUNTER_ROWS = 16
CHECKER = 8


def draw_counter(img: np.ndarray, n: int) -> None:
    """The frame number as `smartcity.sources.generate_test_clip` draws it (read by `read_frame_counter`)."""
    cell = img.shape[1] // COUNTER_BITS
    img[:COUNTER_ROWS, : cell * COUNTER_BITS] = 0
    for bit in range(COUNTER_BITS):
        if (n >> (COUNTER_BITS - 1 - bit)) & 1:
            img[:COUNTER_ROWS, bit * cell : (bit + 1) * cell] = 255


def checker(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.where(((yy // CHECKER) + (xx // CHECKER)) % 2 == 0, 30, 225).astype(np.uint8)


class CounterCamera:
    """A FrameProvider: frame `i` is captured at `start + i / fps`, with `i` drawn into its pixels.

    The picture: a grey gradient, a person box and a same-sized control box both filled with an
    8-pixel checkerboard (so that pixelation is measurable), the frame number along the top.
    """

    def __init__(
        self,
        width: int = 320,
        height: int = 240,
        fps: float = 20.0,
        person: tuple[float, float, float, float] | None = (48.0, 64.0, 144.0, 208.0),
        camera_id: str = "cam1",
    ) -> None:
        self.width, self.height, self.fps, self.camera_id = width, height, fps, camera_id
        self.person = person
        self.control = (width - 144.0, 64.0, width - 48.0, 208.0)
        base = np.empty((height, width, 3), np.uint8)
        grad = np.linspace(60, 160, width, dtype=np.float32)[None, :].repeat(height, axis=0)
        base[...] = grad[..., None].astype(np.uint8)
        for x1, y1, x2, y2 in [b for b in (person, self.control) if b is not None]:
            region = checker(int(y2 - y1), int(x2 - x1))
            base[int(y1) : int(y2), int(x1) : int(x2)] = region[..., None]
        self._base = base
        self.start = time.time()
        self.served: set[int] = set()
        self.calls = 0

    def capture_time(self, index: int) -> float:
        return self.start + index / self.fps

    async def live_frame(self, camera_id: str) -> LiveFrame | None:
        self.calls += 1
        if camera_id != self.camera_id:
            return None
        index = int((time.time() - self.start) * self.fps)
        img = self._base.copy()
        draw_counter(img, index)
        self.served.add(index)
        boxes = (self.person,) if self.person is not None else ()
        return LiveFrame(image=img, t=self.capture_time(index), index=index, person_boxes=boxes)


@dataclass
class Viewer:
    """A loopback WebRTC viewer (aiortc, no ICE server) and the frames it decoded."""

    pc: RTCPeerConnection
    track: MediaStreamTrack
    frames: list[np.ndarray] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)

    async def read(self, n: int, timeout_s: float = 10.0) -> list[np.ndarray]:
        """Decode `n` more frames; returns them as RGB arrays."""
        out = []
        async with asyncio.timeout(timeout_s):
            while len(out) < n:
                frame = await self.track.recv()
                assert isinstance(frame, av.VideoFrame)
                img = frame.to_ndarray(format="rgb24")
                out.append(img)
                self.frames.append(img)
                self.indices.append(read_frame_counter(img))
                self.received_at.append(time.time())
        return out

    async def send_pli(self) -> None:
        """Report picture loss as a browser does (RTCP PLI to the sender's SSRC)."""
        receiver: RTCRtpReceiver = self.pc.getTransceivers()[0].receiver
        stats = await receiver.getStats()
        ssrc = next(s.ssrc for s in stats.values() if s.type == "inbound-rtp")
        await receiver._send_rtcp_pli(ssrc)

    async def close(self) -> None:
        await settle_then_close(self.pc)


async def connect(hub: LiveViewHub, camera_id: str = "cam1", *, codecs: tuple[str, ...] = (), **kw: object) -> Viewer:
    """Offer/answer through `hub.answer` and wait for the video track (both ends in this process)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("video", direction="recvonly")
    if codecs:
        caps = RTCRtpReceiver.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType.split("/")[1] in codecs])
    got: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    pc.on("track", lambda track: got.done() or got.set_result(track))
    await pc.setLocalDescription(await pc.createOffer())
    try:
        answer = await hub.answer(camera_id, pc.localDescription.sdp, **kw)  # type: ignore[arg-type]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        track = await asyncio.wait_for(got, 5)
    except BaseException:
        await settle_then_close(pc)
        raise
    return Viewer(pc, track)
