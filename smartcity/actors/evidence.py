"""Evidence snapshots taken next to the pixels: which events get one, and how many a second.

The JPEG (rendered by `smartcity.privacy`: rule geometry drawn, people pixelated) travels with
its event in the actor's outbox (`EventEnvelope.evidence`) and is written by the server's
evidence sink, so that it works whatever node the camera actor runs on.
"""

from __future__ import annotations

import time

from smartcity.analytics import renders_evidence
from smartcity.analytics.shapes import rule_shapes
from smartcity.core.events import RuleEvent, Severity


def wants_evidence(event: RuleEvent, alert_kinds: frozenset[str]) -> bool:
    if not renders_evidence(event.rule_type) and event.severity is Severity.INFO:
        return False
    return event.kind in alert_kinds


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


__all__ = ["EvidenceBudget", "rule_shapes", "wants_evidence"]
