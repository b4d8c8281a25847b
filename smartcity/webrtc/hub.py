"""The live-view hub: answers viewers' WebRTC offers and shares one encoder per camera among them.

One hub per server. `answer()` is what the GraphQL signalling mutation calls (offer SDP in, answer
SDP out, non-trickle ICE: both descriptions carry their candidates). An offer is bounded in size and
candidates before it is parsed, and parsed off the event loop; its candidates outside the allowed
networks are dropped, and the answer names only the advertised addresses (`offers`). A viewer is
dropped when its connection closes or fails, or when it does not connect within `connect_timeout_s`;
a camera's encoder stops with its last viewer. `close()` ends every connection, encoder and task.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.sdp import SessionDescription

from smartcity.core.aio import wait_for
from smartcity.webrtc.config import Codec, LiveViewConfig
from smartcity.webrtc.offers import CandidatePolicy, check_offer_size, restrict_answer, restrict_offer
from smartcity.webrtc.stream import CameraStream, Counters, ViewerTrack
from smartcity.webrtc.types import (
    CameraLiveStats,
    FrameProvider,
    InvalidOffer,
    LiveViewError,
    LiveViewStats,
    OverlayShape,
    Point,
    TooManyViewers,
)

log = logging.getLogger(__name__)

StreamKey = tuple[str, Codec, bool]  # camera, codec, pixelated
OverlayInput = Sequence[OverlayShape | Sequence[Point]]


@dataclass(eq=False)
class _Viewer:
    id: str
    label: str
    camera_id: str
    key: StreamKey
    pc: RTCPeerConnection
    track: ViewerTrack
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    retiring: bool = False


def choose_codec(offer_sdp: str, preferences: Sequence[Codec]) -> Codec:
    """The first preferred codec that the offer's video section can receive; InvalidOffer otherwise."""
    try:
        description = SessionDescription.parse(offer_sdp)
    except Exception as exc:  # aiortc raises ValueError, IndexError, KeyError... on bad SDP
        raise InvalidOffer(f"unparsable SDP offer: {exc!r}") from exc
    videos = [m for m in description.media if m.kind == "video"]
    if not videos:
        raise InvalidOffer("the offer has no video section")
    video = videos[0]
    if video.direction not in ("recvonly", "sendrecv"):
        raise InvalidOffer(f"the offer's video section cannot receive (direction {video.direction})")
    offered = {c.mimeType.lower() for c in video.rtp.codecs}
    for codec in preferences:
        if f"video/{codec.lower()}" in offered:
            return codec
    raise InvalidOffer(f"no video codec in common: offer has {sorted(offered)}, server sends {list(preferences)}")


async def settle_then_close(pc: RTCPeerConnection, max_wait_s: float = 2.0) -> None:
    """Close a peer connection, first letting ICE checks that are under way finish (bounded).

    aioice 0.13 starts its consent-freshness task when its checks complete; if `close()` lands while
    they are completing, that task starts after the close and then loops forever. Waiting for the
    checks to end (they end within a few round trips on a live path) avoids the stray task.
    """
    if pc.iceConnectionState == "checking":
        settled = asyncio.Event()

        def on_change() -> None:
            if pc.iceConnectionState != "checking":
                settled.set()

        pc.on("iceconnectionstatechange", on_change)
        with contextlib.suppress(TimeoutError):
            await wait_for(settled.wait(), max_wait_s)
        pc.remove_listener("iceconnectionstatechange", on_change)
    await pc.close()


class LiveViewHub:
    """Live views of every camera: `answer()` a viewer's offer; `stats()`; `close()`."""

    def __init__(self, provider: FrameProvider, config: LiveViewConfig | None = None) -> None:
        self._provider = provider
        self.config = config or LiveViewConfig()
        self._streams: dict[StreamKey, CameraStream] = {}
        self._stream_tasks: dict[StreamKey, asyncio.Task[None]] = {}
        self._viewers: dict[str, _Viewer] = {}
        self._counters: dict[str, Counters] = {}
        self._overlays: dict[str, tuple[OverlayShape, ...]] = {}
        # watchers wait for a viewer to connect (cancelled when it leaves); closers close a viewer's
        # connection and are awaited, never cancelled, so that no connection is left half-closed
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._closers: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._closed = False
        self._policy = CandidatePolicy.of(self.config.allowed_candidate_networks, self.config.advertise_addresses)

    # -- public API -------------------------------------------------------------------------------

    def rtc_configuration(self) -> RTCConfiguration:
        """aiortc's configuration: the configured ICE servers only (never aiortc's default STUN)."""
        return RTCConfiguration(
            iceServers=[
                RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                for s in self.config.ice_servers
            ]
        )

    def browser_ice_servers(self) -> list[dict[str, Any]]:
        """The ICE servers in the browser's `RTCPeerConnection({iceServers})` shape, for the console."""
        return [s.model_dump(exclude_none=True) for s in self.config.ice_servers]

    async def answer(
        self,
        camera_id: str,
        offer_sdp: str,
        *,
        pixelate: bool = True,
        overlay: OverlayInput | None = None,
        viewer: str = "",
    ) -> str:
        """Answer a viewer's SDP offer for `camera_id`; returns the answer SDP.

        `pixelate`: privacy mode (people pixelated); the caller turns it off only for an admin.
        `overlay`: the camera's rule geometry (normalised points); it replaces the geometry drawn
        for every viewer of the camera, None keeps the current one. `viewer`: who asks (the user
        name, also in logs): one holds at most `max_views_per_user` views.
        Raises InvalidOffer (too big, bad SDP, no common codec, no candidate on an allowed network),
        TooManyViewers, LiveViewError (closed, no address to advertise).
        """
        if self._closed:
            raise LiveViewError("live views are shut down")
        check_offer_size(offer_sdp, self.config.max_offer_bytes, self.config.max_offer_candidates)
        self._check_slots(camera_id, viewer)
        # parsing is linear once bounded, but still milliseconds of CPU: not on the event loop
        codec, offer_sdp = await asyncio.to_thread(self._read_offer, offer_sdp)
        if self._closed:
            raise LiveViewError("live views are shut down")
        self._check_slots(camera_id, viewer)  # again: other offers may have taken slots meanwhile
        if overlay is not None:
            self.set_overlay(camera_id, overlay)

        key: StreamKey = (camera_id, codec, pixelate)
        stream = self._stream(key)
        pc = RTCPeerConnection(configuration=self.rtc_configuration())
        track = ViewerTrack(stream, self.config.viewer_queue_frames)
        v = _Viewer(f"v{next(self._ids)}", viewer, camera_id, key, pc, track)
        self._viewers[v.id] = v
        try:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(
                [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() in (f"video/{codec.lower()}", "video/rtx")]
            )
            self._hook_loss_reports(transceiver.sender, stream)
            pc.on("connectionstatechange", lambda: self._on_state(v))
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            if self._closed:
                raise LiveViewError("live views are shut down")
            answer = restrict_answer(str(pc.localDescription.sdp), self._policy)
        except Exception as exc:
            await self._retire(v)
            if isinstance(exc, LiveViewError):
                raise
            raise InvalidOffer(f"cannot answer the offer: {exc!r}") from exc
        self._watchers[v.id] = self._spawn(self._watch(v), f"live-view-watch-{v.id}")
        log.info("live view %s (%s) of camera %s: %s, pixelate=%s", v.id, viewer, camera_id, codec, pixelate)
        return answer

    def set_overlay(self, camera_id: str, overlay: OverlayInput) -> None:
        """Replace the geometry drawn on every live view of a camera (e.g. after a rule change)."""
        shapes = tuple(OverlayShape.coerce(s) for s in overlay)
        for shape in shapes:
            if not all(0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 for x, y in shape.points):
                raise ValueError(f"overlay points must be normalised to 0..1, got {shape.points}")
        self._overlays[camera_id] = shapes
        for (cam, _, _), stream in self._streams.items():
            if cam == camera_id:
                stream.overlay = shapes

    def stats(self) -> LiveViewStats:
        cameras = {}
        for cam in sorted(set(self._counters) | {v.camera_id for v in self._viewers.values()}):
            c = self._counters.get(cam, Counters())
            cameras[cam] = CameraLiveStats(
                viewers=sum(1 for v in self._viewers.values() if v.camera_id == cam),
                encoders=sum(1 for k in self._streams if k[0] == cam),
                frames_in=c.frames_in,
                encodes=c.encodes,
                bytes_encoded=c.bytes_encoded,
                packets_sent=c.packets_sent,
                keyframes=c.keyframes,
                keyframes_forced=c.keyframes_forced,
                frames_dropped=c.frames_dropped,
            )
        return LiveViewStats(cameras)

    async def close(self) -> None:
        """Close every viewer's connection and every encoder; leaves no task running."""
        self._closed = True
        watchers = list(self._watchers.values())
        for task in watchers:
            task.cancel()
        await asyncio.gather(*(self._retire(v) for v in list(self._viewers.values())))
        for key in list(self._streams):
            await self._stop_stream(key)
        await asyncio.gather(*watchers, *self._closers, return_exceptions=True)

    # -- internals --------------------------------------------------------------------------------

    def _check_slots(self, camera_id: str, viewer: str) -> None:
        views = list(self._viewers.values())
        if sum(1 for v in views if v.camera_id == camera_id) >= self.config.max_viewers_per_camera:
            raise TooManyViewers(f"camera {camera_id} already has {self.config.max_viewers_per_camera} live viewers")
        limit = self.config.max_views_per_user
        if viewer and sum(1 for v in views if v.label == viewer) >= limit:
            raise TooManyViewers(
                f"{viewer} already holds {limit} live views (live_view.max_views_per_user): close one first"
            )

    def _read_offer(self, offer_sdp: str) -> tuple[Codec, str]:
        """The codec to send and the offer restricted to allowed candidates (runs in a thread)."""
        return choose_codec(offer_sdp, self.config.codecs), restrict_offer(offer_sdp, self._policy)

    def _stream(self, key: StreamKey) -> CameraStream:
        stream = self._streams.get(key)
        if stream is None:
            camera_id, codec, pixelate = key
            counters = self._counters.setdefault(camera_id, Counters())
            stream = CameraStream(
                camera_id, codec, pixelate, self._provider, self.config, counters, self._overlays.get(camera_id, ())
            )
            self._streams[key] = stream
            self._stream_tasks[key] = asyncio.get_running_loop().create_task(
                self._run_stream(stream), name=f"live-view-encoder-{camera_id}-{codec}-{'private' if pixelate else 'clear'}"
            )
        return stream

    @staticmethod
    async def _run_stream(stream: CameraStream) -> None:
        try:
            await stream.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            # a crashed encoder leaves its viewers frozen: log it once with its camera
            log.exception("live view encoder of camera %s failed", stream.camera_id)

    async def _stop_stream(self, key: StreamKey) -> None:
        self._streams.pop(key, None)
        task = self._stream_tasks.pop(key, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @staticmethod
    def _hook_loss_reports(sender: RTCRtpSender, stream: CameraStream) -> None:
        # aiortc answers RTCP PLI/FIR by calling the sender's `_send_keyframe()`, which only affects
        # frames the sender encodes itself; our packets come pre-encoded, so the request must reach
        # the camera's shared encoder instead. tests/webrtc checks that a PLI still gets through.
        if not callable(getattr(sender, "_send_keyframe", None)):
            log.warning("this aiortc has no RTCRtpSender._send_keyframe: loss reports will not force key frames")
            return
        setattr(sender, "_send_keyframe", lambda: stream.request_keyframe("viewer reported loss"))  # noqa: B010

    def _on_state(self, v: _Viewer) -> None:
        state = v.pc.connectionState
        if state == "connected":
            v.connected.set()
        elif state in ("failed", "closed") and not v.retiring:
            log.info("live view %s of camera %s: connection %s", v.id, v.camera_id, state)
            self._close_later(v)

    async def _watch(self, v: _Viewer) -> None:
        try:
            await wait_for(v.connected.wait(), self.config.connect_timeout_s)
        except TimeoutError:
            log.info("live view %s of camera %s did not connect in %.0fs", v.id, v.camera_id, self.config.connect_timeout_s)
            self._close_later(v)

    def _close_later(self, v: _Viewer) -> None:
        closer = self._spawn(self._retire(v), f"live-view-close-{v.id}")
        self._closers.add(closer)
        closer.add_done_callback(self._closers.discard)

    async def _retire(self, v: _Viewer) -> None:
        if v.retiring:
            return
        v.retiring = True
        self._viewers.pop(v.id, None)
        watcher = self._watchers.pop(v.id, None)
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
        v.track.stop()
        if not any(other.key == v.key for other in self._viewers.values()):
            await self._stop_stream(v.key)
        try:
            await settle_then_close(v.pc)
        except Exception:
            log.exception("closing live view %s", v.id)

    @staticmethod
    def _spawn(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(LiveViewHub._task_done)
        return task

    @staticmethod
    def _task_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("live view task %s failed", task.get_name(), exc_info=task.exception())
