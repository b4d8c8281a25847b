"""Rules about presence and stillness: dwell, dumping, abandoned_object and occupancy.

"Static" means the ground point stays within `static_radius` of an anchor; moving further
re-anchors it. Distances between objects are measured in units of the frame width (y is
scaled by height/width) so that a radius means the same on both axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator

from smartcity.analytics.base import ClassVocab, FrameView, Rule, SlotArrays, track_payload
from smartcity.analytics.base import nonzero_index as _nz
from smartcity.analytics.classes import BAGS, PEOPLE, VEHICLES
from smartcity.analytics.geometry import Polygon
from smartcity.analytics.params import ClassNames, Params, PolygonParam
from smartcity.analytics.registry import register
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity

DUMPED = ("box", "bag", "suitcase", "backpack", "handbag", "bin_bag", "furniture")


def _aspect(view: FrameView) -> float:
    return view.height / view.width if view.width else 1.0


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


@register("dwell")
class DwellRule(Rule):
    """Parking / stopping: an event when an object passes the threshold in the zone, one when it leaves."""

    Params = DwellParams
    default_classes = VEHICLES
    severity = Severity.MEDIUM
    alert_kinds = frozenset({"dwell"})

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        self.zone = Polygon.of(self.params.zone)
        # entered: first seen in the zone; since: stopped since (entered, without still_radius)
        self.st = SlotArrays(entered=(np.nan, np.float64), since=(np.nan, np.float64), last=(np.nan, np.float64),
                             fired=(False, bool), ax=(np.nan, np.float64), ay=(np.nan, np.float64))
        self.who: dict[int, tuple[int, str, float, float]] = {}

    def step(self, view: FrameView) -> list[RuleEvent]:
        st = self.st
        p: DwellParams = self.params
        out: list[RuleEvent] = []
        st.ensure(view.capacity)
        for slot in view.freed_slots:
            self._end(out, view, slot)
        st.reset(view.new_slots)
        idx = _nz(self.selected(view))
        if not len(idx):
            return out
        s = view.slots[idx]
        inside = view.inside(self.zone)[idx]
        so = s[~inside]
        for slot in so[~np.isnan(st.since[so]) & (view.t - st.last[so] >= p.exit_grace_s)]:
            self._end(out, view, int(slot))
        if not inside.any():
            return out
        idx, s = idx[inside], s[inside]
        start = np.isnan(st.since[s])
        st.entered[s[start]] = view.t
        if p.still_radius is not None:
            # Moving on (beyond the radius from where it stopped) starts the stay again, unless it
            # already alerted: then the stay goes on until the object leaves.
            x, y = view.gx[idx], view.gy[idx]
            a = _aspect(view)
            far = np.hypot(x - st.ax[s], (y - st.ay[s]) * a) > p.still_radius * np.maximum(view.bw[idx], 1e-3)
            moved = start | (far & ~st.fired[s])
            ms = s[moved]
            st.ax[ms], st.ay[ms] = x[moved], y[moved]
            start = moved
        st.since[s[start]] = view.t
        st.last[s] = view.t
        due = ~st.fired[s] & (view.t - st.since[s] >= p.threshold_s) & (view.hits[idx] >= p.min_track_age)
        for k in _nz(due | start):
            i, slot = int(idx[k]), int(s[k])
            tr = view.tracks[i]
            self.who[slot] = (tr.track_id, tr.cls, float(view.gx[i]), float(view.gy[i]))
            if due[k]:
                st.fired[slot] = True
                entered, since = float(st.entered[slot]), float(st.since[slot])
                self.emit(out, view, view.t, "dwell", track_id=tr.track_id, object_class=tr.cls,
                          payload=track_payload(view, i, entered_at=entered, stopped_at=since,
                                                dwell_s=round(view.t - entered, 3)))
        return out

    def _end(self, out: list[RuleEvent], view: FrameView, slot: int) -> None:
        fired = bool(self.st.fired[slot])
        since, last = float(self.st.entered[slot]), float(self.st.last[slot])
        who = self.who.pop(slot, None)
        self.st.reset([slot])
        if not fired or who is None:
            return
        tid, cls, x, y = who
        self.emit(out, view, last, "dwell_ended", track_id=tid, object_class=cls,
                  payload={"x": round(x, 4), "y": round(y, 4), "entered_at": since, "left_at": last,
                           "dwell_s": round(last - since, 3)})

    def reset(self) -> None:
        self.st.reset(list(range(self.st.capacity)))
        self.who.clear()


class _Stillness:
    """Per-slot anchor: the place an object has stayed within `radius` of, and since when."""

    def __init__(self, radius: float) -> None:
        self.radius = radius
        self.st = SlotArrays(ax=(np.nan, np.float64), ay=(np.nan, np.float64), since=(np.nan, np.float64))

    def update(self, view: FrameView, idx: np.ndarray) -> np.ndarray:
        """Update anchors of tracks `idx`; returns how long each has been still (seconds)."""
        st = self.st
        s = view.slots[idx]
        x, y = view.gx[idx], view.gy[idx]
        a = _aspect(view)
        moved = np.isnan(st.ax[s]) | (np.hypot(x - st.ax[s], (y - st.ay[s]) * a) > self.radius)
        ms = s[moved]
        st.ax[ms], st.ay[ms], st.since[ms] = x[moved], y[moved], view.t
        return np.asarray(view.t - st.since[s])


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


@register("abandoned_object")
class AbandonedObjectRule(Rule):
    """A bag or suitcase left static for T seconds with no person within a radius."""

    Params = AbandonedParams
    default_classes = BAGS
    severity = Severity.HIGH
    alert_kinds = frozenset({"abandoned"})

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: AbandonedParams = self.params
        self.zone = Polygon.of(p.zone) if p.zone is not None else None
        self.still = _Stillness(p.static_radius)
        self.st = SlotArrays(alone=(np.nan, np.float64), fired=(False, bool))
        self.persons = frozenset(p.person_classes)

    def step(self, view: FrameView) -> list[RuleEvent]:
        st = self.st
        p: AbandonedParams = self.params
        st.ensure(view.capacity)
        self.still.st.ensure(view.capacity)
        st.reset(view.new_slots)
        self.still.st.reset(view.new_slots)
        idx = _nz(self.selected(view))
        if not len(idx):
            return []
        if self.zone is not None:
            idx = idx[view.inside(self.zone)[idx]]
            if not len(idx):
                return []
        s = view.slots[idx]
        still_for = self.still.update(view, idx)
        # confirmed people only: a false detection flashing by must not reset the timer
        pm = self.class_table(self.persons)[view.codes] & view.confirmed
        a = _aspect(view)
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
        self.still.st.reset(list(range(self.still.st.capacity)))


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


@register("dumping")
class DumpingRule(Rule):
    """A vehicle stops in the zone; after it leaves, a new static object remains where there was none."""

    Params = DumpingParams
    default_classes = VEHICLES
    severity = Severity.MEDIUM
    alert_kinds = frozenset({"dumping"})

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: DumpingParams = self.params
        self.zone = Polygon.of(p.zone)
        self.objects = frozenset(p.object_classes)
        self.vstill = _Stillness(p.static_radius * 2)
        self.ostill = _Stillness(p.static_radius)
        self.stops: dict[int, _Stop] = {}  # open stops by vehicle slot
        self.done: list[_Stop] = []  # vehicles gone, waiting for an object
        self.seen_static: list[tuple[float, float, float, float]] = []  # x, y, first static t, last t
        self.judged: set[int] = set()

    def step(self, view: FrameView) -> list[RuleEvent]:
        p: DumpingParams = self.params
        t = view.t
        for arr in (self.vstill.st, self.ostill.st):
            arr.ensure(view.capacity)
            arr.reset(view.new_slots)
        for slot in view.freed_slots:
            self.judged.discard(slot)
            stop = self.stops.pop(slot, None)
            if stop is not None:
                stop.left_at = t
                self.done.append(stop)
        for slot in view.new_slots:
            self.judged.discard(slot)
        out: list[RuleEvent] = []
        a = _aspect(view)
        # vehicles
        vi = _nz(self.selected(view))
        if len(vi):
            vi = vi[view.inside(self.zone)[vi]]
        if len(vi):
            still = self.vstill.update(view, vi)
            for k in _nz(still >= p.stop_s):
                slot = int(view.slots[vi[k]])
                if slot not in self.stops:
                    tr = view.tracks[int(vi[k])]
                    self.stops[slot] = _Stop(slot, tr.track_id, tr.cls, float(view.gx[vi[k]]),
                                             float(view.gy[vi[k]]), t - float(still[k]))
        for slot, stop in list(self.stops.items()):
            hit = _nz(view.slots == slot)
            if not len(hit):
                continue  # unseen this frame: the slot table frees the slot if the vehicle is gone
            i = int(hit[0])
            if math.hypot(view.gx[i] - stop.x, (view.gy[i] - stop.y) * a) > p.static_radius * 4:
                stop.left_at = t
                self.done.append(self.stops.pop(slot))
        # objects
        om = self.class_table(self.objects)[view.codes] & view.fresh & (view.conf >= self.spec.min_confidence)
        oi = _nz(om)
        if len(oi):
            oi = oi[view.inside(self.zone)[oi]]
        if len(oi):
            still = self.ostill.update(view, oi)
            for k in _nz(still >= p.object_static_s):
                i = int(oi[k])
                slot = int(view.slots[i])
                if slot in self.judged:
                    continue
                x, y = float(view.gx[i]), float(view.gy[i])
                first_seen = float(view.first_seen[slot])
                static_since = t - float(still[k])
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
        self.done = [st for st in self.done if not st.used and st.left_at is not None
                     and t - st.left_at <= p.window_s]
        self.seen_static = [m for m in self.seen_static if t - m[3] <= p.memory_s]
        return out

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
        self.vstill.st.reset(list(range(self.vstill.st.capacity)))
        self.ostill.st.reset(list(range(self.ostill.st.capacity)))
        self.stops.clear()
        self.done.clear()
        self.judged.clear()


class OccupancyParams(Params):
    zone: PolygonParam = Field(description="Zone where objects are counted (normalised polygon).")
    thresholds: list[int] = Field(default_factory=list, description="Levels that raise an event when reached.",
                                  max_length=20)
    hysteresis: int = Field(1, description="The count must fall this far below a level to clear it.", ge=0,
                            le=10_000)
    hold_s: float = Field(2.0, description="Seconds a level must hold before its event.", ge=0, le=3600)
    sample_interval_s: float = Field(60.0, description="Seconds between occupancy samples; 0 = none.", ge=0,
                                     le=86400)

    @field_validator("thresholds")
    @classmethod
    def _levels(cls, v: list[int]) -> list[int]:
        if any(x < 1 for x in v):
            raise ValueError("thresholds must be positive counts")
        if len(set(v)) != len(v):
            raise ValueError("thresholds must be distinct")
        return sorted(v)


@register("occupancy")
class OccupancyRule(Rule):
    """Crowd gauge: how many selected objects are in a zone, with events on thresholds."""

    Params = OccupancyParams
    default_classes = PEOPLE
    severity = Severity.MEDIUM
    alert_kinds = frozenset({"occupancy_above"})
    needs_fresh: ClassVar[bool] = False

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: OccupancyParams = self.params
        self.zone = Polygon.of(p.zone)
        self.above = [False] * len(p.thresholds)
        self.pending: list[float | None] = [None] * len(p.thresholds)
        self.count = 0
        self._sample: list[int] = []
        self._sample_start: float | None = None

    def step(self, view: FrameView) -> list[RuleEvent]:
        p: OccupancyParams = self.params
        table = self.class_table(self.classes)
        m = table[view.codes] & (view.conf >= self.spec.min_confidence) & view.confirmed
        idx = _nz(m)
        n = int(np.count_nonzero(view.inside(self.zone)[idx])) if len(idx) else 0
        self.count = n
        t = view.t
        out: list[RuleEvent] = []
        for j, level in enumerate(p.thresholds):
            want = (n >= level) if not self.above[j] else not (n <= level - max(p.hysteresis, 1))
            if want == self.above[j]:
                self.pending[j] = None
                continue
            if self.pending[j] is None:
                self.pending[j] = t
            since = self.pending[j]
            assert since is not None
            if t - since >= p.hold_s:
                self.above[j] = want
                self.pending[j] = None
                kind = "occupancy_above" if want else "occupancy_below"
                self.emit(out, view, t, kind, payload={"level": level, "count": n})
        if p.sample_interval_s > 0:
            if self._sample_start is None:
                self._sample_start = t
            self._sample.append(n)
            if t - self._sample_start >= p.sample_interval_s:
                vals = self._sample
                self.emit(out, view, t, "occupancy_sample", severity=Severity.INFO,
                          payload={"mean": round(sum(vals) / len(vals), 3), "max": max(vals), "min": min(vals),
                                   "frames": len(vals), "from": self._sample_start, "to": t})
                self._sample, self._sample_start = [], t
        return out

    def reset(self) -> None:
        self.above = [False] * len(self.params.thresholds)
        self.pending = [None] * len(self.params.thresholds)
        self._sample, self._sample_start = [], None
