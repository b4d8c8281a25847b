"""Values of the live-view boundary: where frames come from, overlay shapes, stats, errors.

The live view never reaches into the video side: the app injects a `FrameProvider` (its
`core.video.VideoControl`, over the Ray camera actors in production; generated frames in
tests) and callers pass what to draw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from smartcity.core.errors import SmartcityError, ValidationFailed
from smartcity.core.video import LiveFrame
from smartcity.core.vision import Box

# re-exported: the live view's API takes overlay shapes (drawn by smartcity.privacy)
from smartcity.privacy.overlay import OverlayShape as OverlayShape
from smartcity.privacy.overlay import Point as Point


class FrameProvider(Protocol):
    """Where live views take pictures from: the part of `core.video.VideoControl` they use;
    `live_frame` returns None while a camera has no frame."""

    async def live_frame(self, camera_id: str) -> LiveFrame | None: ...


@dataclass(frozen=True, slots=True)
class CameraLiveStats:
    """Counters of one camera's live view since the hub started (kept across encoder restarts)."""

    viewers: int = 0
    encoders: int = 0
    frames_in: int = 0
    encodes: int = 0
    bytes_encoded: int = 0
    packets_sent: int = 0
    keyframes: int = 0
    keyframes_forced: int = 0
    frames_dropped: int = 0


@dataclass(frozen=True, slots=True)
class LiveViewStats:
    """A snapshot of a hub: per-camera counters plus totals."""

    cameras: Mapping[str, CameraLiveStats] = field(default_factory=dict)

    @property
    def viewers(self) -> int:
        return sum(c.viewers for c in self.cameras.values())

    @property
    def encodes(self) -> int:
        return sum(c.encodes for c in self.cameras.values())

    @property
    def packets_sent(self) -> int:
        return sum(c.packets_sent for c in self.cameras.values())

    @property
    def keyframes_forced(self) -> int:
        return sum(c.keyframes_forced for c in self.cameras.values())

    def camera(self, camera_id: str) -> CameraLiveStats:
        return self.cameras.get(camera_id, CameraLiveStats())


class LiveViewError(SmartcityError):
    """A live view that cannot be set up (hub closed, too many viewers...)."""


class InvalidOffer(LiveViewError, ValidationFailed):
    """An SDP offer the server cannot answer: unparsable, no video, or no codec in common."""


class TooManyViewers(LiveViewError):
    """The camera already has the configured maximum number of live viewers."""


__all__ = [
    "Box",
    "CameraLiveStats",
    "FrameProvider",
    "InvalidOffer",
    "LiveFrame",
    "LiveViewError",
    "LiveViewStats",
    "OverlayShape",
    "Point",
    "TooManyViewers",
]
