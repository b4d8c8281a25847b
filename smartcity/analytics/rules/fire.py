"""fire: flames seen by the camera (flame colour, flicker, persistence; or a city's own model)."""

from __future__ import annotations

from smartcity.analytics.registry import register_rule
from smartcity.analytics.rules._flames import FlameRule


@register_rule("fire")
class FireRule(FlameRule):
    """One critical `fire` alert per fire (see rules/_flames.py and analytics/fire.py)."""

    cue = "fire"
    default_classes = ("fire",)
    alert_kinds = frozenset({"fire"})
    colour = "#f97316"
