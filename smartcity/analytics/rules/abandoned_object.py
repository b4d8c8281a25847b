"""abandoned_object: a bag or suitcase left static for a while with no person near it."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from smartcity.analytics.base import ClassVocab, FrameView, Rule, SlotArrays, track_payload
from smartcity.analytics.base import nonzero_index as _nz
from smartcity.analytics.classes import BAGS
from smartcity.analytics.geometry import Polygon
from smartcity.analytics.params import ClassNames, Params, PolygonParam
from smartcity.analytics.registry import register_rule
from smartcity.analytics.rules._presence import Stillness, aspect
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity


class AbandonedParams(Params):
    zone: PolygonParam | None = Field(None, description="Zone watched (normalised polygon); none = whole image.")
    unattended_s: float = Field(30.0, description="Seconds static with no person near before an alert.",
                                gt=0, le=86400)
    person_radius: float = Field(0.08, description="No person within this distance (frame widths).", gt=0, le=1)
    static_radius: float = Field(0.015, description="Movement tolerated while static (frame widths).", gt=0,
                                 le=0.2)
    person_classes: ClassNames = Field(default_factory=lambda: ["person"], description="Who attends an object.",
                                      min_length=1)
    min_track_age: int = Field(3, description="Frames a track must be detected before it can alert.", ge=1, le=100)


@register_rule("abandoned_object")
class AbandonedObjectRule(Rule):
    """A bag or suitcase left static for T seconds with no person within a radius."""

    Params = AbandonedParams
    default_classes = BAGS
    severity = Severity.HIGH
    alert_kinds = frozenset({"abandoned"})
    colour = "#c084fc"

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: AbandonedParams = self.params
        self.zone = Polygon.of(p.zone) if p.zone is not None else None
        self.still = Stillness()
        self.st = SlotArrays(alone=(np.nan, np.float64), fired=(False, bool))
        self.persons = frozenset(p.person_classes)

    def step(self, view: FrameView) -> list[RuleEvent]:
        st = self.st
        p: AbandonedParams = self.params
        st.ensure(view.capacity)
        self.still.sync(view)
        st.reset(view.new_slots)
        idx = _nz(self.selected(view))
        if not len(idx):
            return []
        if self.zone is not None:
            idx = idx[view.inside(self.zone)[idx]]
            if not len(idx):
                return []
        s = view.slots[idx]
        _, still_for = self.still.update(view, idx, p.static_radius)
        # confirmed people only: a false detection flashing by must not reset the timer
        pm = self.class_table(self.persons)[view.codes] & view.confirmed
        a = aspect(view)
        if pm.any():
            px, py = view.gx[pm], view.gy[pm]
            d = np.hypot(view.gx[idx, None] - px[None, :], (view.gy[idx, None] - py[None, :]) * a).min(axis=1)
            near = d <= p.person_radius
        else:
            near = np.zeros(len(idx), dtype=bool)
        moving = still_for <= 0
        st.alone[s[near | moving]] = np.nan
        start = ~near & ~moving & np.isnan(st.alone[s])
        st.alone[s[start]] = view.t
        due = ~st.fired[s] & (view.t - st.alone[s] >= p.unattended_s) & (view.hits[idx] >= p.min_track_age)
        out: list[RuleEvent] = []
        for k in _nz(due):
            i = int(idx[k])
            st.fired[s[k]] = True
            tr = view.tracks[i]
            self.emit(out, view, view.t, "abandoned", track_id=tr.track_id, object_class=tr.cls,
                      payload=track_payload(view, i, static_s=round(float(still_for[k]), 3),
                                            unattended_s=round(view.t - float(st.alone[s[k]]), 3)))
        return out

    def reset(self) -> None:
        self.st.reset(list(range(self.st.capacity)))
        self.still.reset()
