"""Ground-truth boxes annotated by eye (tests/data/annotations): typed loading, schema checks, matching.

The files hold, per annotated frame, every person and vehicle with a pixel box; see the README
next to them for how they were made. Benches load them here and score detections against them
with `match` (greedy, highest IoU first, one detection per annotated object).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, get_args

ANNOTATIONS_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "annotations"
VTEST = ANNOTATIONS_DIR / "vtest_every20.json"
CKUHN_TRAFFIC = ANNOTATIONS_DIR / "ckuhn_traffic_20.json"

ObjectClass = Literal["person", "bicycle", "car", "motorcycle", "van", "truck", "bus"]
OBJECT_CLASSES: frozenset[str] = frozenset(get_args(ObjectClass))
VEHICLE_CLASSES: frozenset[str] = OBJECT_CLASSES - {"person"}
"""`van` is ours (COCO has none): a detector's `car` or `truck` on a van counts as a vehicle hit."""

MAX_FRAMES = 10_000
MAX_OBJECTS = 1_000


class AnnotationError(ValueError):
    """An annotation file that does not follow the schema; the message names the place."""


@dataclass(frozen=True, slots=True)
class AnnotatedObject:
    cls: ObjectClass
    box: tuple[int, int, int, int]
    """x1, y1, x2, y2 in pixels of the full frame, x2 > x1 and y2 > y1."""
    occluded: bool
    """Less than half of the object is visible (hidden by something, or cut by the frame edge)."""

    @property
    def is_vehicle(self) -> bool:
        return self.cls in VEHICLE_CLASSES


@dataclass(frozen=True, slots=True)
class AnnotatedFrame:
    index: int
    """0-based decoding order of the frame in the video."""
    objects: tuple[AnnotatedObject, ...]


@dataclass(frozen=True, slots=True)
class Annotations:
    video: str
    width: int
    height: int
    frames: tuple[AnnotatedFrame, ...]

    def count(self, *, vehicles: bool) -> int:
        return sum(o.is_vehicle == vehicles for f in self.frames for o in f.objects)


def _field(obj: dict[str, object], key: str, where: str) -> object:
    if key not in obj:
        raise AnnotationError(f"{where}: missing {key!r}")
    return obj[key]


def _int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnnotationError(f"{where}: expected an integer, got {value!r}")
    return value


def _object(raw: object, width: int, height: int, where: str) -> AnnotatedObject:
    if not isinstance(raw, dict):
        raise AnnotationError(f"{where}: expected an object")
    extra = set(raw) - {"cls", "box", "occluded"}
    if extra:
        raise AnnotationError(f"{where}: unknown keys {sorted(extra)}")
    cls = _field(raw, "cls", where)
    if cls not in OBJECT_CLASSES:
        raise AnnotationError(f"{where}.cls: {cls!r} is not one of {sorted(OBJECT_CLASSES)}")
    box = _field(raw, "box", where)
    if not isinstance(box, list) or len(box) != 4:
        raise AnnotationError(f"{where}.box: expected [x1, y1, x2, y2]")
    x1, y1, x2, y2 = (_int(v, f"{where}.box") for v in box)
    if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
        raise AnnotationError(f"{where}.box: {box} is empty or outside the {width}x{height} frame")
    occluded = _field(raw, "occluded", where)
    if not isinstance(occluded, bool):
        raise AnnotationError(f"{where}.occluded: expected true or false")
    return AnnotatedObject(cast(ObjectClass, cls), (x1, y1, x2, y2), occluded)


def parse_annotations(data: object, *, source: str = "annotations") -> Annotations:
    """Validate decoded JSON into Annotations; AnnotationError names the first fault."""
    if not isinstance(data, dict):
        raise AnnotationError(f"{source}: expected an object")
    video = _field(data, "video", source)
    if not isinstance(video, str) or not video:
        raise AnnotationError(f"{source}.video: expected a file name")
    width, height = (
        _int(_field(data, "width", source), f"{source}.width"),
        _int(_field(data, "height", source), f"{source}.height"),
    )
    if width < 1 or height < 1:
        raise AnnotationError(f"{source}: frame size {width}x{height}")
    raw_frames = _field(data, "frames", source)
    if not isinstance(raw_frames, list) or not 1 <= len(raw_frames) <= MAX_FRAMES:
        raise AnnotationError(f"{source}.frames: expected a list of 1 to {MAX_FRAMES} frames")
    frames: list[AnnotatedFrame] = []
    for k, raw in enumerate(raw_frames):
        where = f"{source}.frames[{k}]"
        if not isinstance(raw, dict):
            raise AnnotationError(f"{where}: expected an object")
        index = _int(_field(raw, "index", where), f"{where}.index")
        if index < 0 or (frames and index <= frames[-1].index):
            raise AnnotationError(f"{where}.index: {index} is negative or not after the previous frame")
        objects = _field(raw, "objects", where)
        if not isinstance(objects, list) or len(objects) > MAX_OBJECTS:
            raise AnnotationError(f"{where}.objects: expected a list of at most {MAX_OBJECTS}")
        parsed = tuple(_object(o, width, height, f"{where}.objects[{j}]") for j, o in enumerate(objects))
        frames.append(AnnotatedFrame(index, parsed))
    return Annotations(video, width, height, tuple(frames))


def load_annotations(path: Path) -> Annotations:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"{path}: {exc}") from exc
    return parse_annotations(data, source=path.name)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(
    truth: Sequence[Sequence[float]], found: Iterable[Sequence[float]], min_iou: float = 0.5
) -> list[tuple[int, int]]:
    """(truth index, found index) pairs, greedily by IoU, each side used once, IoU >= min_iou."""
    found = list(found)
    pairs = sorted(
        ((iou(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)), reverse=True
    )
    used_t: set[int] = set()
    used_f: set[int] = set()
    out: list[tuple[int, int]] = []
    for score, i, j in pairs:
        if score < min_iou:
            break
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
            out.append((i, j))
    return sorted(out)
