"""zone_passage: every passage of the selected classes through a zone, one event when it ends."""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from smartcity.analytics import kernels
from smartcity.analytics.base import ClassVocab, FrameView, Rule, Scratch
from smartcity.analytics.classes import ROAD_USERS
from smartcity.analytics.geometry import Polygon
from smartcity.analytics.params import Params, PolygonParam
from smartcity.analytics.registry import register_rule
from smartcity.analytics.rules._presence import WHO, ZoneStay, who
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity


class ZonePassageParams(Params):
    zone: PolygonParam = Field(description="Zone (normalised polygon).")
    min_inside_s: float = Field(0.3, description="Shorter visits are not registered.", ge=0, le=3600)
    exit_grace_s: float = Field(1.0, description="Seconds outside before a visit ends.", ge=0, le=60)
    min_track_age: int = Field(2, description="Frames a track must be detected to be registered.", ge=1, le=100)


@register_rule("zone_passage")
class ZonePassageRule(Rule):
    """Registers every passage of the selected classes through a zone (one event when it ends)."""

    Params = ZonePassageParams
    default_classes = ROAD_USERS
    severity = Severity.INFO
    alert_kinds = frozenset({"passage"})
    colour = "#a3e635"

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: ZonePassageParams = self.params
        # with the track id, class and ground point of each object in a stay, as last seen inside (WHO)
        self.stay = ZoneStay(Polygon.of(p.zone), p.exit_grace_s, mature=(False, bool), **WHO)
        self.stay.st.expect_rows("entered", "mature", "who_id", mature=kernels.FLAG)
        self._gone = Scratch(np.intp)  # the kernel's stays that ended

    def step(self, view: FrameView) -> list[RuleEvent]:
        p: ZonePassageParams = self.params
        stay = self.stay
        st = stay.st
        ended = stay.begin(view)
        (gone,) = self._gone.fit(len(view.slots))
        floats, mature, ids = st.matrices  # (entered, last, who_x, who_y), (mature,), (who_id, who_code)
        # the stays, and who is in each (noted as last seen inside), in one call
        n_gone = kernels.zone_passage_step(
            self.selected(view), view.inside(stay.zone), view.geo, view.ints, floats, ids, mature, float(view.t),
            stay.exit_grace_s, p.min_track_age, gone,
        )
        if n_gone:
            ended.extend(gone[:n_gone].tolist())
        out: list[RuleEvent] = []
        if not ended:
            return out
        for slot in ended:
            since, last = float(st.entered[slot]), float(st.last[slot])
            if math.isnan(since) or not st.mature[slot] or last - since < p.min_inside_s:
                continue
            seen = who(st, view, slot)
            if seen is None:
                continue
            tid, cls, x, y = seen
            self.emit(out, view, last, "passage", track_id=tid, object_class=cls,
                      payload={"x": round(x, 4), "y": round(y, 4), "entered_at": since, "left_at": last,
                               "duration_s": round(last - since, 3)})
        stay.release(ended)
        return out

    def reset(self) -> None:
        self.stay.reset()
