"""Per-frame vision values shared by the detector, the tracker and the rule engine.

Boxes are `(x1, y1, x2, y2)` in pixels of the original frame. Nothing here carries
identity: a track id is local to one camera and one tracker instance. A detection may carry
what a second-stage model found in its box (keypoints of a pose model, attributes of a
classifier); the tracker hands the latest matched detection's to its track.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

Box = tuple[float, float, float, float]
AttributeValue = str | float


@dataclass(frozen=True, slots=True)
class Keypoint:
    """One body (or object) landmark in pixels of the original frame; `score` in [0, 1]."""

    x: float
    y: float
    score: float


Keypoints = tuple[Keypoint, ...]
"""The landmarks of one box, in the pose model's own order (e.g. COCO's 17 body points)."""


class Attributes(Mapping[str, AttributeValue]):
    """A read-only mapping name -> label or value (e.g. {"colour": "red", "helmet": 0.93}).

    Hashable and picklable, so detections and tracks stay frozen values that cross Ray."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, AttributeValue] | Iterable[tuple[str, AttributeValue]] = ()) -> None:
        self._data: dict[str, AttributeValue] = dict(data)

    def __getitem__(self, key: str) -> AttributeValue:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"Attributes({self._data!r})"

    def __getstate__(self) -> dict[str, AttributeValue]:
        return self._data

    def __setstate__(self, state: dict[str, AttributeValue]) -> None:
        self._data = dict(state)

    def merged(self, other: Mapping[str, AttributeValue]) -> Attributes:
        """These attributes updated with `other`'s (other wins on a shared name)."""
        if not other:
            return self
        return Attributes({**self._data, **other})


NO_ATTRIBUTES = Attributes()


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box
    cls: str
    score: float
    keypoints: Keypoints = ()
    attributes: Attributes = NO_ATTRIBUTES


@dataclass(frozen=True, slots=True)
class Track:
    """One tracked object at time `t` as seen by the tracker of a single camera; `keypoints` and
    `attributes` are those of the latest detection matched to it."""

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
    keypoints: Keypoints = ()
    attributes: Attributes = NO_ATTRIBUTES

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
