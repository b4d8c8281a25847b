"""dwell: parking and stopping, an event when an object has stayed past a threshold in a zone."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from smartcity.analytics import kernels
from smartcity.analytics.base import ClassVocab, FrameView, Rule, ScratchRows, track_payload
from smartcity.analytics.base import nonzero_index as _nz
from smartcity.analytics.classes import VEHICLES
from smartcity.analytics.geometry import FloatArray, Polygon
from smartcity.analytics.params import Params, PolygonParam
from smartcity.analytics.registry import register_rule
from smartcity.analytics.rules._presence import WHO, Stillness, ZoneStay, aspect, who
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity


class DwellParams(Params):
    zone: PolygonParam = Field(description="Zone where stopping is watched (normalised polygon).")
    threshold_s: float = Field(30.0, description="Seconds in the zone before an alert.", gt=0, le=86400)
    exit_grace_s: float = Field(1.5, description="Seconds outside (or unseen) before the stay ends.", ge=0,
                                le=600)
    min_track_age: int = Field(3, description="Frames a track must be detected before it can alert.", ge=1, le=100)
    still_radius: float | None = Field(
        0.5,
        description="Only time spent stopped counts: the object's ground point stays within this many box "
        "widths of where it stopped (a parked car's box jitters by a few percent; a car creeping through the "
        "zone in a queue, or manoeuvring into the next bay, moves further and starts again). null: any time "
        "in the zone counts (loitering).",
        gt=0,
        le=100,
    )


@register_rule("dwell")
class DwellRule(Rule):
    """Parking / stopping: an event when an object passes the threshold in the zone, one when it leaves."""

    Params = DwellParams
    default_classes = VEHICLES
    severity = Severity.MEDIUM
    alert_kinds = frozenset({"dwell"})
    colour = "#fb923c"

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: DwellParams = self.params
        # with the track id, class and ground point of each object in a stay, as when it stopped or
        # alerted (WHO)
        self.stay = ZoneStay(Polygon.of(p.zone), p.exit_grace_s, fired=(False, bool), **WHO)
        # with still_radius: where and since when the object stopped (else the time it entered counts)
        self.still = Stillness() if p.still_radius is not None else None
        self.stay.st.expect_rows("entered", "fired", "who_id", fired=kernels.FLAG)
        self._out = ScratchRows(2, np.intp)  # the kernel's stays that ended (slots) and tracks due

    def step(self, view: FrameView) -> list[RuleEvent]:
        p: DwellParams = self.params
        st = self.stay.st
        out: list[RuleEvent] = []
        if self.still is None or p.still_radius is None:
            frame = self.stay.step(view, self.selected(view))
            if frame.ended:
                self._end(out, view, frame.ended)
            idx, s = frame.idx, frame.slots
            if not len(idx):
                return out
            since = st.entered
            stayed = view.t - since[s]
            due_of = ~st.fired[s] & (stayed >= p.threshold_s) & (view.hits[idx] >= p.min_track_age)
            for k in _nz(due_of | frame.started).tolist():
                i, slot = int(idx[k]), int(s[k])
                tr = view.tracks[i]
                st.who_id[slot], st.who_code[slot] = tr.track_id, view.codes[i]
                st.who_x[slot], st.who_y[slot] = view.gx[i], view.gy[i]
            self._alert(out, view, idx[_nz(due_of)].tolist(), since)
            return out
        # Moving on (beyond the radius from where it stopped, in box widths) starts the stay again,
        # unless it already alerted: then the stay goes on until the object leaves. One kernel steps the
        # stays and the anchors, and notes who each object is when it stops or alerts.
        still = self.still
        still.sync(view)
        ended = self.stay.begin(view)
        sel = self.selected(view)
        gone_due = self._out.fit(len(sel))
        floats, fired, ids = st.matrices  # (entered, last, who_x, who_y), (fired,), (who_id, who_code)
        n_gone, n_due = kernels.dwell_step(
            sel, view.inside(self.stay.zone), view.geo, view.ints, floats, ids, fired, still.st.matrices[0],
            float(view.t), self.stay.exit_grace_s, aspect(view), p.still_radius, p.threshold_s, p.min_track_age,
            gone_due,
        )
        if n_gone:
            ended.extend(gone_due[0, :n_gone].tolist())
        if ended:
            self._end(out, view, ended)
        if n_due:
            self._alert(out, view, gone_due[1, :n_due].tolist(), still.st.since)
        return out

    def _alert(self, out: list[RuleEvent], view: FrameView, due: list[int], since: FloatArray) -> None:
        """The tracks `due` (indices) passed the threshold: they fire (`since`: per slot, when their time began)."""
        st = self.stay.st
        for i in due:
            slot = int(view.slots[i])
            tr = view.tracks[i]
            st.fired[slot] = True
            entered = float(st.entered[slot])
            self.emit(out, view, view.t, "dwell", track_id=tr.track_id, object_class=tr.cls,
                      payload=track_payload(view, i, entered_at=entered, stopped_at=float(since[slot]),
                                            dwell_s=round(view.t - entered, 3)))

    def _end(self, out: list[RuleEvent], view: FrameView, slots: list[int]) -> None:
        st = self.stay.st
        for slot in slots:
            if not st.fired[slot]:  # (most stays that end never alerted: who they were is not needed)
                continue
            seen = who(st, view, slot)
            if seen is None:
                continue
            entered, last = float(st.entered[slot]), float(st.last[slot])
            tid, cls, x, y = seen
            self.emit(out, view, last, "dwell_ended", track_id=tid, object_class=cls,
                      payload={"x": round(x, 4), "y": round(y, 4), "entered_at": entered, "left_at": last,
                               "dwell_s": round(last - entered, 3)})
        self.stay.release(slots)
        if self.still is not None:
            self.still.release(slots)

    def reset(self) -> None:
        self.stay.reset()
        if self.still is not None:
            self.still.reset()
