"""Values a camera source hands out: decoded frames and health snapshots."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartcity.core.events import CameraHealth, CameraState


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One decoded picture of one camera.

    `image` is RGB, HxWx3 uint8, and must be treated as read-only (it may be shared by the
    live view and the analysis). `index` counts decoded frames of this source from 0, across
    reconnects and file loops; `t` is the wall time (unix seconds) it was decoded.
    """

    camera_id: str
    index: int
    t: float
    image: np.ndarray
    width: int
    height: int


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
