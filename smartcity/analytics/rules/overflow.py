"""overflow: bags and other objects lying still around a waste bin, the sign that the bin is full.

The zone is the ground around one bin (drawn by the operator on the camera image) and `bin_id`
names that bin in the waste extension's registry, which reads the events of this rule type as a
fill level of 1.0 for it. An object counts once it has lain still in the zone for `stay_s`; the
rule alerts when `min_objects` of them lie there at once, and again only after the ground around
the bin has been clear (no object lying there), so one full bin is one alert however many bags
pile up next to it.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from smartcity.analytics.base import ClassVocab, FrameView, Rule, track_payload
from smartcity.analytics.base import nonzero_index as _nz
from smartcity.analytics.classes import DISCARDED
from smartcity.analytics.geometry import Polygon
from smartcity.analytics.params import Params, PolygonParam
from smartcity.analytics.registry import register_rule
from smartcity.analytics.rules._presence import Stillness, ZoneStay
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity

OVERFLOW = "overflow"  # the rule type and the kind of its events


class OverflowParams(Params):
    zone: PolygonParam = Field(description="The ground around the bin where overflowing rubbish lies "
                               "(normalised polygon).")
    bin_id: str = Field(description="Id of the bin in the waste extension's registry (its `bins`).",
                        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")
    stay_s: float = Field(120.0, description="Seconds an object must lie still in the zone to count (a bag "
                          "set down for a moment, or carried through, does not).", gt=0, le=86400)
    min_objects: int = Field(1, description="Objects lying in the zone at once that make the bin overflow.",
                             ge=1, le=100)
    static_radius: float = Field(0.015, description="Movement tolerated while lying still (frame widths).",
                                 gt=0, le=0.2)
    exit_grace_s: float = Field(2.0, description="Seconds outside the zone before an object no longer counts.",
                                ge=0, le=600)
    min_track_age: int = Field(3, description="Frames a track must be detected before it can count.", ge=1, le=100)


@register_rule(OVERFLOW)
class OverflowRule(Rule):
    """Objects lying still around a bin for a while: the bin is full (the waste extension reads the event)."""

    Params = OverflowParams
    default_classes = DISCARDED
    severity = Severity.MEDIUM
    alert_kinds = frozenset({OVERFLOW})
    colour = "#2dd4bf"

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: OverflowParams = self.params
        # per slot: lying (still in the zone for stay_s); an object seen outside for exit_grace_s,
        # or gone, ends its stay and no longer counts
        self.stay = ZoneStay(Polygon.of(p.zone), p.exit_grace_s, lying=(False, bool))
        self.still = Stillness()
        self.alerted = False  # this pile was reported; cleared when nothing lies there any more

    def step(self, view: FrameView) -> list[RuleEvent]:
        p: OverflowParams = self.params
        st = self.stay.st
        self.still.sync(view)
        frame = self.stay.step(view, self.selected(view))
        if frame.ended:
            self.stay.release(frame.ended)
            self.still.release(frame.ended)
        idx, s = frame.idx, frame.slots
        out: list[RuleEvent] = []
        lying = np.zeros(len(idx), dtype=bool)
        still_for = np.zeros(len(idx))
        if len(idx):
            # an object that moves off its spot starts again; one unseen for a few frames keeps its flag
            _, still_for = self.still.update(view, idx, p.static_radius)
            lying = (still_for >= p.stay_s) & (view.hits[idx] >= p.min_track_age)
            st.lying[s] = lying
        n = int(np.count_nonzero(st.lying))
        if n == 0:
            self.alerted = False
            return out
        if self.alerted or n < p.min_objects or not lying.any():
            return out
        # the evidence points at the object that has lain there longest among those seen now
        ks = _nz(lying)
        k = int(ks[np.argmax(still_for[ks])])
        i = int(idx[k])
        tr = view.tracks[i]
        self.alerted = self.emit(out, view, view.t, OVERFLOW, track_id=tr.track_id, object_class=tr.cls,
                                 payload=track_payload(view, i, bin_id=p.bin_id, objects=n,
                                                       lying_s=round(float(still_for[k]), 3)))
        return out

    def reset(self) -> None:
        self.stay.reset()
        self.still.reset()
        self.alerted = False
