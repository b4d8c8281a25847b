"""Per-frame vision values shared by the detector, the tracker and the rule engine.

Boxes are `(x1, y1, x2, y2)` in pixels of the original frame. Nothing here carries
identity: a track id is local to one camera and one tracker instance. A detection may carry
what a second-stage model found in its box (keypoints of a pose model, attributes of a
classifier); the tracker hands the latest matched detection's to its track.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

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


class Track(NamedTuple):
    """One tracked object at time `t` as seen by the tracker of a single camera; `keypoints` and
    `attributes` are those of the latest detection matched to it.

    Immutable. A named tuple rather than a frozen dataclass: a tracker builds one per live track
    per frame, and a tuple is built in one C call from a row of the tracker's columns (a quarter of
    the time of filling a frozen dataclass's slots). `track._replace(box=...)` makes a changed copy.
    """

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


@dataclass(frozen=True, slots=True, eq=False)
class TrackColumns:
    """The tracks a tracker returned, as the columns it holds them in, row for row: the rule engine
    reads these instead of the attributes of every Track object (`FrameTracks.columns`).

    `tracks` are the Track objects described; columns given with other objects are ignored
    (`describes`). The arrays are the tracker's copies: nobody writes to them.
    """

    tracks: Sequence[Track]
    ids: list[int]
    classes: list[str]
    boxes: npt.NDArray[np.float64]  # (n, 4) x1, y1, x2, y2
    score: npt.NDArray[np.float64]
    misses: npt.NDArray[np.intp]  # time_since_update
    confirmed: npt.NDArray[np.bool_]
    hits: npt.NDArray[np.intp]

    def describes(self, tracks: Sequence[Track]) -> bool:
        """Whether these columns are those of exactly these Track objects, in this order."""
        mine = self.tracks
        return len(mine) == len(tracks) and all(map(operator.is_, mine, tracks))


@dataclass(frozen=True, slots=True)
class FrameTracks:
    """All tracks of one camera at one analysed frame."""

    camera_id: str
    t: float
    width: int
    height: int
    tracks: tuple[Track, ...] = field(default_factory=tuple)
    # the detector's boxes of this frame at every score it kept (also those too weak to start a
    # track: a pixel rule masks them out); None: the detector did not run on this frame
    detections: tuple[Detection, ...] | None = None
    # the tracker's columns of `tracks` (ByteTracker.columns), if at hand: the rule engine then reads
    # no Track object's attributes
    columns: TrackColumns | None = field(default=None, compare=False, repr=False)


def letterbox_fit(width: int, height: int, size: tuple[int, int]) -> tuple[int, int]:
    """The (width, height) a `width` x `height` frame takes inside a network input `size` = (H, W)
    when it is letterboxed: scaled by one factor, aspect kept, rounded to whole pixels. The
    detectors letterbox with it (`models.ops.letterbox_params`) and camera sources decode to it,
    so that a frame scaled in the decoder lands on the network input at the same pixels."""
    out_h, out_w = size
    if width < 1 or height < 1 or out_w < 1 or out_h < 1:
        raise ValueError(f"cannot fit {width}x{height} into {out_w}x{out_h}")
    r = min(out_w / width, out_h / height)
    return max(1, min(out_w, round(width * r))), max(1, min(out_h, round(height * r)))


def scale_box(box: Box, sx: float, sy: float) -> Box:
    return (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


def _scale_keypoints(kps: Keypoints, sx: float, sy: float) -> Keypoints:
    return tuple(Keypoint(k.x * sx, k.y * sy, k.score) for k in kps)


def scale_detections(dets: Iterable[Detection], sx: float, sy: float) -> list[Detection]:
    """`dets` with boxes and keypoints multiplied by (sx, sy): from the pixels of a scaled copy of
    a frame to the frame's own (sx = frame width / copy width), or back."""
    return [
        Detection(scale_box(d.box, sx, sy), d.cls, d.score, _scale_keypoints(d.keypoints, sx, sy), d.attributes)
        for d in dets
    ]


def scale_tracks(tracks: Iterable[Track], sx: float, sy: float) -> list[Track]:
    """`tracks` with boxes, keypoints and velocities multiplied by (sx, sy) (see `scale_detections`)."""
    return [
        t._replace(
            box=scale_box(t.box, sx, sy),
            velocity=(t.velocity[0] * sx, t.velocity[1] * sy),
            keypoints=_scale_keypoints(t.keypoints, sx, sy),
        )
        for t in tracks
    ]
