"""The video side as the server sees it: one interface the app injects into the API, fusion's
service and extensions, implemented by one facade over the Ray actors (`actors.facade`).

Nothing above the actors makes a Ray call: GraphQL, live views and extensions hold a
`VideoControl`, and tests may hand them any object that implements it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np

from smartcity.core.privacy_mask import PrivacyMask
from smartcity.core.vision import Box


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """The latest picture of one camera.

    `image`: RGB, H x W x 3 uint8, treated as read-only (it may be shared with the analysis).
    `t`: capture wall time (unix seconds). `index`: frame counter of the source (a new index is a
    new picture). `person_boxes`: pixel boxes of people to pixelate; None means that no analysis
    can locate people in this frame, so privacy mode hides the whole picture. `mask`: when set,
    the whole private part of the frame (the person boxes are among it: what moves, keypoint hulls,
    margins). `background`: set in background mode, the learned empty scene (any size) that viewers
    see instead, with the private part drawn over it as coarse blobs. Privacy zones are already
    filled in `image` and `background`.
    """

    image: np.ndarray
    t: float
    index: int
    person_boxes: tuple[Box, ...] | None = ()
    mask: PrivacyMask | None = None
    background: np.ndarray | None = None


class SignalState(StrEnum):
    """A traffic signal's aspect as an outside controller reports it to a red-light rule."""

    RED = "red"
    AMBER = "amber"
    GREEN = "green"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class SignalPush:
    """One signal state for one red-light rule of one camera, at wall time `t`."""

    camera_id: str
    rule_id: str
    state: SignalState
    t: float


@dataclass(frozen=True, slots=True)
class CameraRuntime:
    """What the video side reports of one running camera group actor."""

    group: str
    alive: bool
    restarts: int
    cameras: tuple[str, ...]
    node: str = ""  # id of the Ray node it runs on ("" while unknown)


@dataclass(frozen=True, slots=True)
class InferenceRuntime:
    """One inference actor of the video side: its name and whether it answers."""

    name: str
    alive: bool


class VideoControl(Protocol):
    """Reads pictures from and pushes state into the running cameras.

    Every method is safe to call while a camera is starting, restarting or gone: it then returns
    None / False / an empty value instead of raising.
    """

    async def live_frame(self, camera_id: str) -> LiveFrame | None:
        """The camera's latest picture, or None while it has none."""
        ...

    async def snapshot(self, camera_id: str, *, pixelate: bool = True) -> bytes | None:
        """The camera's latest picture as JPEG, people pixelated unless `pixelate` is False."""
        ...

    async def push_signal(self, push: SignalPush) -> bool:
        """Hand a signal state to a red-light rule; whether a running camera took it."""
        ...

    def rules_changed(self, camera_id: str) -> None:
        """A camera's rules (or the camera) changed: its actor gets them within a second,
        without restarting the stream."""
        ...

    def runtime(self) -> tuple[CameraRuntime, ...]:
        """The camera group actors as last seen (empty when the video side does not run)."""
        ...


class NoVideo:
    """The video side when the server runs without Ray (tests, API-only servers): no pictures,
    no running cameras, signal pushes refused."""

    async def live_frame(self, camera_id: str) -> LiveFrame | None:
        return None

    async def snapshot(self, camera_id: str, *, pixelate: bool = True) -> bytes | None:
        return None

    async def push_signal(self, push: SignalPush) -> bool:
        return False

    def rules_changed(self, camera_id: str) -> None:
        return None

    def runtime(self) -> tuple[CameraRuntime, ...]:
        return ()
