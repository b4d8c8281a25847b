"""wrong_way: a track moving against the allowed direction over a minimum distance in a zone."""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from smartcity.analytics import kernels
from smartcity.analytics.base import ClassVocab, FrameView, Rule, ScratchRows, SlotArrays, track_payload
from smartcity.analytics.classes import VEHICLES
from smartcity.analytics.geometry import Polygon
from smartcity.analytics.params import DirectionParam, Params, PolygonParam
from smartcity.analytics.registry import register_rule
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity


class WrongWayParams(Params):
    zone: PolygonParam = Field(description="Zone where the direction applies (normalised polygon).")
    direction: DirectionParam = Field(description="Allowed direction of travel [dx, dy] in the image.")
    min_distance: float = Field(0.08, description="Distance travelled against the direction before an alert.",
                                gt=0, le=1)
    max_angle_deg: float = Field(50.0, description="Largest angle between the motion and the exact opposite "
                                 "of the allowed direction.", gt=0, le=89)
    min_track_age: int = Field(3, description="Frames a track must be detected before it can alert.", ge=1, le=100)


@register_rule("wrong_way")
class WrongWayRule(Rule):
    """Alerts when a track moves against the allowed direction over a minimum distance in a zone."""

    Params = WrongWayParams
    default_classes = VEHICLES
    severity = Severity.HIGH
    alert_kinds = frozenset({"wrong_way"})
    colour = "#f87171"

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: WrongWayParams = self.params
        self.zone = Polygon.of(p.zone)
        n = math.hypot(*p.direction)
        self.ux, self.uy = p.direction[0] / n, p.direction[1] / n
        self.cos_max = math.cos(math.radians(p.max_angle_deg))
        self.st = SlotArrays(ax=(np.nan, np.float64), ay=(np.nan, np.float64), fired=(False, bool))
        self.st.expect_rows("ax", "fired", ax=kernels.AX, ay=kernels.AY, fired=kernels.FLAG)
        self._out = ScratchRows(2)  # the kernel's alerts: track index, distance back

    def step(self, view: FrameView) -> list[RuleEvent]:
        st = self.st
        if st.capacity < view.capacity:
            st.ensure(view.capacity)
        if view.new_slots:
            st.reset(view.new_slots)
        p: WrongWayParams = self.params
        alerts = self._out.fit(len(view.slots))
        anchor, fired = st.matrices  # (ax, ay), (fired,)
        k = kernels.wrong_way_step(
            self.selected(view), view.inside(self.zone), view.geo, view.ints, anchor, fired, self.ux, self.uy,
            p.min_distance, p.min_track_age, self.cos_max, alerts,
        )
        out: list[RuleEvent] = []
        if not k:
            return out
        for at, distance in zip(*alerts[:, :k].tolist(), strict=True):
            i = int(at)
            tr = view.tracks[i]
            self.emit(out, view, view.t, "wrong_way", track_id=tr.track_id, object_class=tr.cls,
                      payload=track_payload(view, i, distance=round(distance, 4)))
        return out

    def reset(self) -> None:
        self.st.reset(list(range(self.st.capacity)))
