"""Which boxes of a picture are private: the people the detector or the tracker located, grown
by a margin so that privacy errs on the large side."""

from __future__ import annotations

from collections.abc import Iterable

from smartcity.core.vision import Box, Detection, Track

# classes pixelated in anything an operator sees
PRIVATE_CLASSES = frozenset({"person"})


def private_boxes(objects: Iterable[Track | Detection], width: int, height: int, margin: float = 0.5) -> list[Box]:
    """Boxes to pixelate, grown by `margin` of their size on every side and clipped to the picture:
    small detectors draw boxes tight (YOLOv3-tiny often misses the head and feet) and a person
    keeps walking between the analysed frame and the one shown."""
    out: list[Box] = []
    for o in objects:
        if o.cls not in PRIVATE_CLASSES:
            continue
        x1, y1, x2, y2 = o.box
        mx, my = (x2 - x1) * margin, (y2 - y1) * margin
        out.append((max(0.0, x1 - mx), max(0.0, y1 - my), min(float(width), x2 + mx), min(float(height), y2 + my)))
    return out
