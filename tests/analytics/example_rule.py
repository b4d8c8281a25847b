"""An example rule type defined outside the package: `speeding`, an object faster than a limit in a zone.

This whole file is what adding a rule type takes (plus a rule of that `type` in the config):
a parameter model, a Rule subclass with its traits and `step`, and `@register_rule`. A module
of smartcity.analytics.rules is found on its own; a module elsewhere is registered when it is
imported.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from smartcity.analytics import FrameView, Rule, register_rule
from smartcity.analytics.base import ClassVocab, SlotArrays, nonzero_index, track_payload
from smartcity.analytics.geometry import Polygon
from smartcity.analytics.params import Params, PolygonParam
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity


class SpeedingParams(Params):
    zone: PolygonParam = Field(description="Zone where the limit applies (normalised polygon).")
    max_speed: float = Field(0.2, description="Fastest ground-point speed allowed (frame sizes per second).",
                             gt=0, le=10)


@register_rule("speeding")
class SpeedingRule(Rule):
    """One alert per object whose ground point moves faster than `max_speed` inside the zone."""

    Params = SpeedingParams
    default_classes = ("car", "motorcycle")
    severity = Severity.MEDIUM
    alert_kinds = frozenset({"speeding"})
    colour = "#22d3ee"

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        self.zone = Polygon.of(self.params.zone)
        # where and when each object was last seen, and whether it has alerted
        self.st = SlotArrays(x=(np.nan, np.float64), y=(np.nan, np.float64), t=(np.nan, np.float64),
                             fired=(False, bool))

    def step(self, view: FrameView) -> list[RuleEvent]:
        st = self.st
        st.ensure(view.capacity)
        st.reset(view.new_slots)
        out: list[RuleEvent] = []
        for i in nonzero_index(self.selected(view) & view.inside(self.zone)).tolist():
            s, x, y = int(view.slots[i]), float(view.gx[i]), float(view.gy[i])
            dt = view.t - float(st.t[s])
            if dt > 0 and not st.fired[s]:
                speed = math.hypot(x - float(st.x[s]), y - float(st.y[s])) / dt
                if speed > self.params.max_speed:
                    st.fired[s] = True
                    tr = view.tracks[i]
                    self.emit(out, view, view.t, "speeding", track_id=tr.track_id, object_class=tr.cls,
                              payload=track_payload(view, i, speed=round(speed, 3)))
            st.x[s], st.y[s], st.t[s] = x, y, view.t
        return out

    def reset(self) -> None:
        self.st.reset(list(range(self.st.capacity)))
