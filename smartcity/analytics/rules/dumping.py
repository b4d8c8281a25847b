"""dumping: a vehicle stops in a zone and, after it leaves, a new static object remains where there was none."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import Field

from smartcity.analytics import kernels
from smartcity.analytics.base import ClassVocab, FrameView, Rule, ScratchRows, track_payload
from smartcity.analytics.classes import DISCARDED, VEHICLES
from smartcity.analytics.geometry import Polygon
from smartcity.analytics.params import ClassNames, Params, PolygonParam
from smartcity.analytics.registry import register_rule
from smartcity.analytics.rules._presence import Stillness, aspect
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity

DUMPED = DISCARDED


@dataclass(slots=True)
class _Stop:
    slot: int
    track_id: int
    cls: str
    x: float
    y: float
    arrived_at: float
    left_at: float | None = None
    used: bool = False


class DumpingParams(Params):
    zone: PolygonParam = Field(description="Zone watched (normalised polygon).")
    object_classes: ClassNames = Field(default_factory=lambda: list(DUMPED),
                                      description="Classes of objects that may be dumped.", min_length=1)
    stop_s: float = Field(5.0, description="Seconds a vehicle must stand still to count as a stop.", gt=0, le=3600)
    object_static_s: float = Field(5.0, description="Seconds the new object must stay still.", gt=0, le=3600)
    radius: float = Field(0.12, description="Max distance between the stop and the object (frame widths).",
                          gt=0, le=1)
    static_radius: float = Field(0.015, description="Movement tolerated while static (frame widths).", gt=0,
                                 le=0.2)
    window_s: float = Field(180.0, description="Seconds after the vehicle leaves in which the object must be "
                            "found static.", gt=0, le=3600)
    appear_s: float = Field(20.0, description="The object must first be seen within this many seconds after "
                            "the vehicle left (or while it stood there).", gt=0, le=3600)
    memory_s: float = Field(1800.0, description="How long objects seen static before are remembered as already "
                            "there.", gt=0, le=86400)


@register_rule("dumping")
class DumpingRule(Rule):
    """A vehicle stops in the zone; after it leaves, a new static object remains where there was none."""

    Params = DumpingParams
    default_classes = VEHICLES
    severity = Severity.MEDIUM
    alert_kinds = frozenset({"dumping"})
    colour = "#f472b6"

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: DumpingParams = self.params
        self.zone = Polygon.of(p.zone)
        self.objects = frozenset(p.object_classes)
        self.vstill = Stillness()  # vehicles: within 2 * static_radius
        self.ostill = Stillness()  # objects: within static_radius
        self.stops: dict[int, _Stop] = {}  # open stops by vehicle slot
        self.done: list[_Stop] = []  # vehicles gone, waiting for an object
        self.seen_static: list[tuple[float, float, float, float]] = []  # x, y, first static t, last t
        self.judged: set[int] = set()
        self.vstill.st.expect_rows(ax=kernels.AX, ay=kernels.AY, since=kernels.SINCE)
        self._out = ScratchRows(2)  # the still kernel's tracks: index, how long still

    def step(self, view: FrameView) -> list[RuleEvent]:
        p: DumpingParams = self.params
        t = view.t
        self.vstill.sync(view)
        self.ostill.sync(view)
        for slot in view.freed_slots:
            self.judged.discard(slot)
            stop = self.stops.pop(slot, None)
            if stop is not None:
                stop.left_at = t
                self.done.append(stop)
        for slot in view.new_slots:
            self.judged.discard(slot)
        out: list[RuleEvent] = []
        a = aspect(view)
        self._vehicles(view, a)
        self._objects(out, view, a)
        self.done = [st for st in self.done if not st.used and st.left_at is not None
                     and t - st.left_at <= p.window_s]
        self.seen_static = [m for m in self.seen_static if t - m[3] <= p.memory_s]
        return out

    def _vehicles(self, view: FrameView, a: float) -> None:
        """Open a stop for each vehicle standing still in the zone; close those that moved off."""
        p: DumpingParams = self.params
        t = view.t
        sel = self.selected(view)
        if view.n_selected(sel):
            still = self._out.fit(len(sel))
            m = kernels.still_in_zone(sel, view.inside(self.zone), view.geo, view.ints, self.vstill.st.matrices[0],
                                      float(t), a, p.static_radius * 2, p.stop_s, still)
            for at, still_for in zip(*still[:, :m].tolist(), strict=True) if m else ():
                row = int(at)
                slot = int(view.slots[row])
                if slot not in self.stops:
                    tr = view.tracks[row]
                    self.stops[slot] = _Stop(slot, tr.track_id, tr.cls, float(view.gx[row]), float(view.gy[row]),
                                             t - still_for)
        if not self.stops:
            return
        row_of = view.slot_index()
        for slot, stop in list(self.stops.items()):
            i = row_of.get(slot)
            if i is None:
                continue  # unseen this frame: the slot table frees the slot if the vehicle is gone
            if math.hypot(view.gx[i] - stop.x, (view.gy[i] - stop.y) * a) > p.static_radius * 4:
                stop.left_at = t
                self.done.append(self.stops.pop(slot))

    def _objects(self, out: list[RuleEvent], view: FrameView, a: float) -> None:
        """Judge each object that has stood still long enough: dumped by a vehicle gone, or there before."""
        p: DumpingParams = self.params
        t = view.t
        sel = self.selected_of(view, self.objects)
        if not view.n_selected(sel):
            return
        still = self._out.fit(len(sel))
        m = kernels.still_in_zone(sel, view.inside(self.zone), view.geo, view.ints, self.ostill.st.matrices[0],
                                  float(t), a, p.static_radius, p.object_static_s, still)
        for at, still_for in zip(*still[:, :m].tolist(), strict=True):
            i = int(at)
            slot = int(view.slots[i])
            if slot in self.judged:
                continue
            x, y = float(view.gx[i]), float(view.gy[i])
            first_seen = float(view.first_seen[slot])
            static_since = t - still_for
            if self._dumped(out, view, i, x, y, first_seen, a):
                self.judged.add(slot)
                self._remember(x, y, static_since, t, a)
                continue
            waiting = any(
                st.arrived_at <= first_seen + 1.0
                and math.hypot(st.x - x, (st.y - y) * a) <= p.radius
                for st in self.stops.values()
            )
            if not waiting:
                self.judged.add(slot)
                self._remember(x, y, static_since, t, a)

    def _remember(self, x: float, y: float, since: float, t: float, a: float) -> None:
        for j, (mx, my, ms, _) in enumerate(self.seen_static):
            if math.hypot(mx - x, (my - y) * a) <= self.params.static_radius * 2:
                self.seen_static[j] = (mx, my, min(ms, since), t)
                return
        self.seen_static.append((x, y, since, t))

    def _dumped(self, out: list[RuleEvent], view: FrameView, i: int, x: float, y: float, first_seen: float,
                a: float) -> bool:
        p: DumpingParams = self.params
        for stop in self.done:
            if stop.used or stop.left_at is None:
                continue
            if first_seen < stop.arrived_at - 1.0:
                continue  # the object was there before the vehicle arrived
            if first_seen > stop.left_at + p.appear_s:
                continue  # it turned up well after the vehicle had gone: not left by it
            if math.hypot(stop.x - x, (stop.y - y) * a) > p.radius:
                continue
            # an object already lying here when the vehicle came (seen static before, still seen then)
            known = any(
                ms < stop.arrived_at and last >= stop.arrived_at - 10.0
                and math.hypot(mx - x, (my - y) * a) <= p.static_radius * 2 + 0.01
                for mx, my, ms, last in self.seen_static
            )
            if known:
                return False
            stop.used = True
            tr = view.tracks[i]
            self.emit(out, view, view.t, "dumping", track_id=tr.track_id, object_class=tr.cls,
                      payload=track_payload(view, i, vehicle_class=stop.cls, vehicle_track_id=stop.track_id,
                                            stopped_at=stop.arrived_at, left_at=stop.left_at))
            return True
        return False

    def reset(self) -> None:
        self.vstill.reset()
        self.ostill.reset()
        self.stops.clear()
        self.done.clear()
        self.judged.clear()
