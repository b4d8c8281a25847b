"""Per-frame vision values shared by the detector, the tracker and the rule engine.

Boxes are `(x1, y1, x2, y2)` in pixels of the original frame. Nothing here carries
identity: a track id is local to one camera and one tracker instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box
    cls: str
    score: float


@dataclass(frozen=True, slots=True)
class Track:
    """One tracked object at time `t` as seen by the tracker of a single camera."""

    track_id: int
    cls: str
    box: Box
    score: float
    t: float
    hits: int = 1
    age: int = 1
    confirmed: bool = True
    time_since_update: int = 0
    velocity: tuple[float, float] = (0.0, 0.0)

    @property
    def ground_point(self) -> tuple[float, float]:
        """Bottom-centre of the box: where the object touches the road."""
        x1, _, x2, y2 = self.box
        return ((x1 + x2) / 2.0, y2)


@dataclass(frozen=True, slots=True)
class FrameTracks:
    """All tracks of one camera at one analysed frame."""

    camera_id: str
    t: float
    width: int
    height: int
    tracks: tuple[Track, ...] = field(default_factory=tuple)
