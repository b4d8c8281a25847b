"""Tracker and line_count together (as replay drives them): crossings that happen while the detector
does not see the vehicle are still counted once, at a time inside the gap."""

from __future__ import annotations

from smartcity.analytics import validate_rule
from smartcity.core.vision import Detection
from smartcity.replay import CameraReplay
from smartcity.sources.detlog import FrameRecord

CAM = "cam"
W, H = 1280, 720
FPS = 5.0


def _replay(boxes: list[tuple[float, float, float, float] | None], cls: str = "bus") -> list[tuple[str, float, int]]:
    """(direction, t, track id) of the crossings of a line at y = 0.5 by one vehicle's boxes (None: missed)."""
    rule = validate_rule({"id": "line", "camera_id": CAM, "type": "line_count",
                          "params": {"line": [[0.0, 0.5], [1.0, 0.5]], "in_direction": [0.0, -1.0],
                                     "emit_events": True}})
    camera = CameraReplay(CAM, [rule])
    out = []
    for f, box in enumerate(boxes):
        dets = () if box is None else (Detection(box, cls, 0.9),)
        _, events = camera.step(FrameRecord(CAM, 100.0 + f / FPS, W, H, dets))
        out += [(str(e.payload["direction"]), e.t, int(e.track_id or 0)) for e in events if e.kind == "crossing"]
    return out


def _bus(f: int) -> tuple[float, float, float, float]:
    """A bus driving up the picture from its bottom edge, 80 px per frame."""
    bottom = 700.0 - 80.0 * f
    return (500.0, bottom - 110.0, 760.0, bottom)


def test_a_crossing_during_a_detector_gap_is_counted_once_inside_the_gap() -> None:
    """Boxed on frames 0 and 1 (bottom at 0.97 and 0.86 of the picture), missed on frames 2-5 while it
    crosses the line at y = 0.5 (frame 4.25), found again on frames 6 and 7 past it: one 'in' crossing
    by one track, timed between the last sighting before the gap and the first after it (a track seen
    twice used to end after one missed frame, and the bus came back as a new track past the line)."""
    boxes = [None if 2 <= f <= 5 else _bus(f) for f in range(8)]
    crossings = _replay(boxes)
    assert [(d, tid) for d, _, tid in crossings] == [("in", 1)]
    t = crossings[0][1]
    assert 100.0 + 1 / FPS < t < 100.0 + 6 / FPS


def test_the_same_bus_seen_throughout_is_counted_once_at_the_true_time() -> None:
    crossings = _replay([_bus(f) for f in range(8)])
    assert [(d, tid) for d, _, tid in crossings] == [("in", 1)]
    assert abs(crossings[0][1] - (100.0 + (700.0 - 360.0) / 80.0 / FPS)) < 0.5 / FPS
