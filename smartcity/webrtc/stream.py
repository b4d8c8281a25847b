"""One camera's shared live stream: pull the latest frame, render it once, encode it once, fan the
packets out to every subscribed viewer track (an aiortc `MediaStreamTrack` returning `av.Packet`).

Key frames: periodic (`keyframe_interval_s`), and forced when a viewer subscribes, overflows its
queue or reports loss (RTCP PLI/FIR), at most one forced key frame per `keyframe_min_interval_s`
so that one lossy viewer cannot flood the others. A viewer's packets start at a key frame.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.video.stream import VideoStream

from smartcity.core.privacy_mask import PrivacyMask
from smartcity.privacy import OverlayRaster, compose, rasterise
from smartcity.webrtc.config import Codec, LiveViewConfig
from smartcity.webrtc.encoder import EncodedFrame, VideoEncoder
from smartcity.webrtc.render import fit_size
from smartcity.webrtc.types import Box, FrameProvider, LiveFrame, OverlayShape

log = logging.getLogger(__name__)


@dataclass
class Counters:
    """Mutable counters of one camera, owned by the hub, updated by its streams and tracks."""

    frames_in: int = 0
    encodes: int = 0
    bytes_encoded: int = 0
    packets_sent: int = 0
    keyframes: int = 0
    keyframes_forced: int = 0
    frames_dropped: int = 0


class ViewerTrack(MediaStreamTrack):
    """The track one viewer's RTP sender reads: the camera's shared packets, from a key frame on.

    Queue policy: at most `max_frames` packets; on overflow the backlog is dropped (counted), a key
    frame is requested and the viewer resumes at it (an H.264/VP8 decoder cannot skip inter frames).
    """

    kind = "video"

    def __init__(self, stream: CameraStream, max_frames: int) -> None:
        super().__init__()
        self._stream = stream
        self._queue: deque[EncodedFrame] = deque()
        self._max = max_frames
        self._wake = asyncio.Event()
        self._need_key = True
        self._subscribed = False
        self.frames_sent = 0

    def push(self, frame: EncodedFrame) -> None:
        if self.readyState != "live":
            return
        if len(self._queue) >= self._max:
            self._stream.counters.frames_dropped += len(self._queue)
            self._queue.clear()
            self._need_key = True
            self._stream.request_keyframe("viewer queue overflow")
        if self._need_key and not frame.keyframe:
            return
        self._need_key = False
        self._queue.append(frame)
        self._wake.set()

    async def recv(self) -> av.Packet[VideoStream]:
        if not self._subscribed:
            # the sender reads only once the connection is up: join (and ask for a key frame) now,
            # not at answer time, so the key frame is not spent before the viewer can receive it
            self._subscribed = True
            self._stream.subscribe(self)
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._wake.clear()
            await self._wake.wait()
        frame = self._queue.popleft()
        self.frames_sent += 1
        self._stream.counters.packets_sent += 1
        return frame.packet

    def stop(self) -> None:
        super().stop()
        self._stream.unsubscribe(self)
        self._queue.clear()
        self._wake.set()


class CameraStream:
    """The shared encoder of one (camera, codec, privacy) variant and its subscribed viewers."""

    def __init__(
        self,
        camera_id: str,
        codec: Codec,
        pixelate: bool,
        provider: FrameProvider,
        config: LiveViewConfig,
        counters: Counters,
        overlay: tuple[OverlayShape, ...],
    ) -> None:
        self.camera_id = camera_id
        self.codec: Codec = codec
        self.pixelate = pixelate
        self.counters = counters
        self.overlay = overlay
        self._provider = provider
        self._config = config
        self._subscribers: set[ViewerTrack] = set()
        self._encoder: VideoEncoder | None = None
        self._raster: OverlayRaster | None = None
        self._raster_key: tuple[int, int, tuple[OverlayShape, ...]] | None = None
        self._key_requested = False
        self._last_key: float | None = None
        self._t0: float | None = None
        self._failing = False
        self._bad_frames = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, track: ViewerTrack) -> None:
        self._subscribers.add(track)
        self.request_keyframe("viewer joined")

    def unsubscribe(self, track: ViewerTrack) -> None:
        self._subscribers.discard(track)

    def request_keyframe(self, reason: str) -> None:
        log.debug("camera %s: key frame requested (%s)", self.camera_id, reason)
        self._key_requested = True

    def _want_keyframe(self, now: float) -> tuple[bool, bool]:
        """(key frame now?, forced by a request?)"""
        if self._last_key is None or now - self._last_key >= self._config.keyframe_interval_s:
            return True, False
        if self._key_requested and now - self._last_key >= self._config.keyframe_min_interval_s:
            return True, True
        return False, False

    async def run(self) -> None:
        period = 1.0 / self._config.fps
        next_tick = time.monotonic()
        last_index: int | None = None
        while True:
            frame = await self._latest()
            if frame is not None and frame.index != last_index and self._subscribers:
                last_index = frame.index
                self.counters.frames_in += 1
                now = time.monotonic()
                key, forced = self._want_keyframe(now)
                if key:
                    self._key_requested = False
                try:
                    encoded = await asyncio.to_thread(self._render_encode, frame, key)
                except Exception:
                    # one bad picture must not end the view: log when it starts and when it stops
                    if not self._bad_frames:
                        log.exception("camera %s: cannot encode live frame %d", self.camera_id, frame.index)
                    self._bad_frames += 1
                    self._key_requested = self._key_requested or key
                    encoded = []
                else:
                    if self._bad_frames:
                        log.info("camera %s: live frames encode again after %d failures", self.camera_id, self._bad_frames)
                    self._bad_frames = 0
                for ef in encoded:
                    self.counters.encodes += 1
                    self.counters.bytes_encoded += ef.size
                    if ef.keyframe:
                        self._last_key = now
                        self.counters.keyframes += 1
                        if forced:
                            self.counters.keyframes_forced += 1
                    for track in list(self._subscribers):
                        track.push(ef)
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay < 0:
                # behind (slow source or CPU): skip the missed ticks instead of bursting
                next_tick = time.monotonic()
                delay = 0.0
            await asyncio.sleep(delay)

    async def _latest(self) -> LiveFrame | None:
        try:
            frame = await self._provider.live_frame(self.camera_id)
        except Exception:
            if not self._failing:
                log.exception("camera %s: live frames unavailable", self.camera_id)
            self._failing = True
            return None
        if self._failing:
            log.info("camera %s: live frames available again", self.camera_id)
            self._failing = False
        return frame

    def _render_encode(self, frame: LiveFrame, keyframe: bool) -> list[EncodedFrame]:
        """Runs in a worker thread: scale, pixelate, draw, encode."""
        image = frame.image
        h, w = image.shape[:2]
        ow, oh = fit_size(w, h, self._config.max_width, self._config.max_height)
        boxes: tuple[Box, ...] | None = frame.person_boxes
        private: tuple[Box, ...] | PrivacyMask | None = frame.mask if frame.mask is not None else boxes
        if (ow, oh) != (w, h):
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24").reformat(
                width=ow, height=oh, format="rgb24"
            ).to_ndarray()
            sx, sy = ow / w, oh / h
            if frame.mask is None and boxes is not None:  # a mask scales itself
                private = tuple((b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy) for b in boxes)
        raster_key = (ow, oh, self.overlay)
        if raster_key != self._raster_key:
            self._raster = rasterise(self.overlay, ow, oh) if self.overlay else None
            self._raster_key = raster_key
        picture = compose(
            image, private, pixelate_people=self.pixelate, overlay=self._raster, background=frame.background
        )
        if self._encoder is None or (self._encoder.width, self._encoder.height) != (ow, oh):
            self._encoder = VideoEncoder(
                self.codec, ow, oh, fps=self._config.fps, bitrate_kbps=self._config.bitrate_kbps
            )
            keyframe = True
        if self._t0 is None:
            self._t0 = frame.t
        return self._encoder.encode(picture, index=frame.index, t=frame.t, t0=self._t0, keyframe=keyframe)
