"""The counting bench's peer: supervision's ByteTrack + LineZone on the same detections.

Each line_count rule becomes one `sv.LineZone` over the same pixels, triggered by the
bottom-centre anchor (the ground point our rules use). supervision names the two sides of a
line "in" and "out" by its own convention; which of them is the rule's `in_name` is found
once per rule by feeding the zone a known crossing in the rule's "in" direction
(`direction_map`), never assumed. A crossing is counted under the class of the tracked
detection that triggered it, and only for the classes the rule counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import supervision as sv

from smartcity.analytics.base import ClassVocab
from smartcity.analytics.geometry import Line
from smartcity.analytics.spec import RuleSpec
from smartcity.sources.detlog import FrameRecord

CountKey = tuple[str, str, str]  # (rule id, direction name, class)


@dataclass(frozen=True, slots=True)
class PeerLine:
    rule_id: str
    zone: sv.LineZone
    classes: frozenset[str]
    in_name: str  # the rule's name for supervision's "in"
    out_name: str  # ... and for supervision's "out"


def _pixels(p: Sequence[float], width: int, height: int) -> sv.Point:
    return sv.Point(float(p[0]) * width, float(p[1]) * height)


def _zone(spec: RuleSpec, width: int, height: int, crossing_threshold: int = 1) -> sv.LineZone:
    a, b = spec.params["line"]
    return sv.LineZone(
        start=_pixels(a, width, height),
        end=_pixels(b, width, height),
        triggering_anchors=[sv.Position.BOTTOM_CENTER],
        minimum_crossing_threshold=crossing_threshold,
    )


def direction_map(spec: RuleSpec, width: int, height: int) -> tuple[str, str]:
    """(name of supervision's "in", name of its "out") for a line_count rule.

    A box whose bottom centre walks across the middle of the line from the rule's negative
    side to its positive ("in") side; whichever of supervision's flags fires is the rule's
    in_name.
    """
    p = spec.parsed_params()
    line = Line.of(p.line, p.in_direction)
    mx, my = (line.a[0] + line.b[0]) / 2, (line.a[1] + line.b[1]) / 2
    zone = _zone(spec, width, height)
    fired_in = fired_out = False
    for step in (-0.05, -0.03, 0.03, 0.05):
        x = (mx + step * line.normal[0]) * width
        y = (my + step * line.normal[1]) * height
        det = sv.Detections(
            xyxy=np.array([[x - 10, y - 20, x + 10, y]], dtype=np.float32),
            confidence=np.array([0.9], dtype=np.float32),
            class_id=np.array([0]),
            tracker_id=np.array([1]),
        )
        crossed_in, crossed_out = zone.trigger(det)
        fired_in |= bool(crossed_in[0])
        fired_out |= bool(crossed_out[0])
    if fired_in == fired_out:
        raise RuntimeError(f"rule {spec.id}: supervision saw no single crossing on the known path")
    return (p.in_name, p.out_name) if fired_in else (p.out_name, p.in_name)


class PeerCounter:
    """supervision ByteTrack + one LineZone per line_count rule of one camera.

    `crossing_threshold`: LineZone's minimum_crossing_threshold, frames an object must stay on
    the new side before a crossing counts (the library's default, 1, has no hysteresis: an
    object standing on the line with jittery boxes counts at every flip).
    """

    def __init__(self, specs: Sequence[RuleSpec], width: int, height: int, fps: float,
                 crossing_threshold: int = 1) -> None:
        self.tracker = sv.ByteTrack(frame_rate=fps)
        self.lines: list[PeerLine] = []
        for spec in specs:
            if spec.type != "line_count" or not spec.enabled:
                continue
            sv_in, sv_out = direction_map(spec, width, height)
            self.lines.append(
                PeerLine(spec.id, _zone(spec, width, height, crossing_threshold), frozenset(spec.effective_classes()),
                         sv_in, sv_out)
            )
        self.vocab = ClassVocab()  # class name <-> supervision's integer class_id
        self.counts: Counter[CountKey] = Counter()

    def update(self, record: FrameRecord) -> None:
        dets = record.detections
        if dets:
            detections = sv.Detections(
                xyxy=np.array([d.box for d in dets], dtype=np.float32),
                confidence=np.array([d.score for d in dets], dtype=np.float32),
                class_id=np.array([self.vocab.code(d.cls) for d in dets]),
            )
        else:
            detections = sv.Detections.empty()
        tracked = self.tracker.update_with_detections(detections)
        if len(tracked) == 0 or tracked.class_id is None:
            return
        for line in self.lines:
            crossed_in, crossed_out = line.zone.trigger(tracked)
            for flags, name in ((crossed_in, line.in_name), (crossed_out, line.out_name)):
                for i in np.flatnonzero(flags).tolist():
                    cls = self.vocab.names[int(tracked.class_id[i])]
                    if cls in line.classes:
                        self.counts[(line.rule_id, name, cls)] += 1


def peer_counts(specs: Sequence[RuleSpec], frames: Sequence[FrameRecord], width: int, height: int,
                fps: float, crossing_threshold: int = 1) -> Counter[CountKey]:
    """Crossings counted by the peer over a run: (rule, direction, class) -> n."""
    peer = PeerCounter(specs, width, height, fps, crossing_threshold)
    for record in frames:
        peer.update(record)
    return peer.counts
