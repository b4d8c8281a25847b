"""Values a camera source hands out: decoded frames and health snapshots."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from smartcity.core.events import CameraHealth, CameraState


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One decoded picture of one camera.

    `image` is RGB, HxWx3 uint8, and must be treated as read-only (it may be shared by the
    live view and the analysis). `index` counts decoded frames of this source from 0, across
    reconnects and file loops; `t` is the wall time (unix seconds) it was decoded.

    `width` x `height` is the camera's picture. A frame handed out for analysis by a source that
    resizes in its decoder carries in `image` the picture scaled to the detector's input (aspect
    kept, `core.vision.letterbox_fit`), and in `full` how to get the full picture when something
    needs it (an evidence snapshot, a live view): `full_image()`, converted once, on demand.
    """

    camera_id: str
    index: int
    t: float
    image: np.ndarray
    width: int
    height: int
    full: Callable[[], np.ndarray] | None = field(default=None, repr=False)

    @property
    def scaled(self) -> bool:
        """Whether `image` is smaller than the camera's picture."""
        return (self.image.shape[1], self.image.shape[0]) != (self.width, self.height)

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy): pixels of `image` times these are pixels of the camera's picture."""
        return self.width / self.image.shape[1], self.height / self.image.shape[0]

    def full_image(self) -> np.ndarray:
        """The camera's picture at its own size (`image` itself when it is not scaled)."""
        if self.full is None or not self.scaled:
            return self.image
        return self.full()


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """A snapshot of one camera source's health, as shown to operators and published as events."""

    camera_id: str
    state: CameraState
    input_fps: float = 0.0
    analysed_fps: float = 0.0
    last_frame_t: float | None = None
    decode_errors: int = 0
    reconnects: int = 0
    frames_dropped: int = 0
    width: int | None = None
    height: int | None = None
    message: str = ""
    frames_decoded: int = 0
    resolution_changes: int = 0
    nominal_fps: float | None = None
    retry_in_s: float | None = None

    def to_event(self, *, group: str, t: float, seq: int = 0) -> CameraHealth:
        """The `CameraHealth` event of this snapshot, from the camera group `group` at wall time `t`."""
        return CameraHealth(
            camera_id=self.camera_id,
            t=t,
            group=group,
            state=self.state,
            seq=seq,
            input_fps=round(self.input_fps, 3),
            analysed_fps=round(self.analysed_fps, 3),
            last_frame_t=self.last_frame_t,
            decode_errors=self.decode_errors,
            reconnects=self.reconnects,
            frames_dropped=self.frames_dropped,
            width=self.width,
            height=self.height,
            message=self.message,
        )
