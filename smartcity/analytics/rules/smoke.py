"""smoke: grey, semi-transparent regions that soften the background and rise or spread (or a
city's own model's `smoke` detections)."""

from __future__ import annotations

from smartcity.analytics.registry import register_rule
from smartcity.analytics.rules._flames import FlameRule


@register_rule("smoke")
class SmokeRule(FlameRule):
    """One critical `smoke` alert per episode (see rules/_flames.py and analytics/fire.py)."""

    cue = "smoke"
    default_classes = ("smoke",)
    alert_kinds = frozenset({"smoke"})
    colour = "#94a3b8"
