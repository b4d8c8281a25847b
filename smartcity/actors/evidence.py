"""Evidence snapshots taken next to the pixels: which events get one, what is drawn on it.

The JPEG (rule geometry drawn, people pixelated) travels with its event through the actor's
outbox and is written to the evidence directory by the server, so that it works whatever
node the camera actor runs on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from smartcity.analytics import renders_evidence
from smartcity.analytics.shapes import rule_shapes
from smartcity.core.events import RuleEvent, Severity
from smartcity.core.vision import Box, Detection, Track

# classes pixelated in anything an operator sees
PRIVATE_CLASSES = frozenset({"person"})


def wants_evidence(event: RuleEvent, alert_kinds: frozenset[str]) -> bool:
    if not renders_evidence(event.rule_type) and event.severity is Severity.INFO:
        return False
    return event.kind in alert_kinds


def private_boxes(tracks: Sequence[Track | Detection], width: int, height: int, margin: float = 0.5) -> list[Box]:
    """Boxes to pixelate, grown by `margin` of their size on every side: small detectors draw
    boxes tight (YOLOv3-tiny often misses the head and feet) and a person keeps walking
    between the analysed frame and the one shown, so privacy errs on the large side."""
    out: list[Box] = []
    for t in tracks:
        if t.cls not in PRIVATE_CLASSES:
            continue
        x1, y1, x2, y2 = t.box
        mx, my = (x2 - x1) * margin, (y2 - y1) * margin
        out.append((max(0.0, x1 - mx), max(0.0, y1 - my), min(float(width), x2 + mx), min(float(height), y2 + my)))
    return out


class EvidenceBudget:
    """At most `per_s` snapshots per second per camera: evidence never slows the analysis."""

    def __init__(self, per_s: float = 2.0) -> None:
        self.per_s = per_s
        self._tokens = per_s
        self._at = time.monotonic()
        self.skipped = 0

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.per_s, self._tokens + (now - self._at) * self.per_s)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.skipped += 1
        return False


__all__ = ["EvidenceBudget", "private_boxes", "rule_shapes", "wants_evidence"]
