"""Rules about movement: line_count, wrong_way, red_light and zone_passage.

Crossings use the box's ground point with a hysteresis band around the line: a track's side
only changes once it is clearly on the other side, so a box that flickers across the line is
counted once. A crossing by a track younger than `min_track_age` frames is held pending and
counted when the track matures (false positives never do).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from smartcity.analytics.base import ClassVocab, FrameView, Rule, SlotArrays, track_payload
from smartcity.analytics.base import nonzero_index as _nz
from smartcity.analytics.classes import ROAD_USERS, VEHICLES
from smartcity.analytics.counts import CountAggregator
from smartcity.analytics.geometry import GeometryError, Line, Polygon, signed_distance
from smartcity.analytics.params import BoxParam, DirectionParam, LineParam, Params, PolygonParam
from smartcity.analytics.registry import register
from smartcity.analytics.signal import SignalColour, classify_signal
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity


def _check_across(v: Any, info: ValidationInfo, line_field: str) -> Any:
    line = info.data.get(line_field)
    if line is not None:
        try:
            Line.of(line, v)
        except GeometryError as exc:
            raise ValueError(str(exc)) from None
    return v


def _on_line(line: Line, u: float, **extra: Any) -> dict[str, Any]:
    """Payload of a crossing: where on the line it happened (normalised), plus rule fields."""
    x = line.a[0] + u * (line.b[0] - line.a[0])
    y = line.a[1] + u * (line.b[1] - line.a[1])
    return {"x": round(x, 4), "y": round(y, 4), **extra}


class _Crossings:
    """Side-of-line state per slot with hysteresis; yields confirmed crossings.

    The band around the line is at least `hysteresis`, and at least `box_share` of the box's extent
    across the line: a detector's box edges jitter by a few percent of the box, so a vehicle waiting
    on the line would otherwise be counted in, out, in, out. A track first seen inside the band
    takes the side its ground point is on (it may have been born on the line).
    """

    def __init__(self, line: Line, hysteresis: float, margin: float, min_age: int, box_share: float = 0.0) -> None:
        self.line = line
        self.h = hysteresis
        self.box_share = box_share
        self.nx, self.ny = abs(line.normal[0]), abs(line.normal[1])
        self.margin = margin
        self.min_age = min_age
        self.st = SlotArrays(
            side=(0, np.int8), px=(np.nan, np.float64), py=(np.nan, np.float64), pt=(np.nan, np.float64),
            pend=(0, np.int8), pend_t=(np.nan, np.float64), pend_x=(np.nan, np.float64),
        )

    def step(self, view: FrameView, sel: np.ndarray) -> list[tuple[int, int, float, float]]:
        """(track index, direction +1/-1, crossing time, along-line fraction) of crossings now confirmed."""
        st = self.st
        st.ensure(view.capacity)
        st.reset(view.new_slots)
        idx = _nz(sel)
        if not len(idx):
            return []
        s = view.slots[idx]
        x, y = view.gx[idx], view.gy[idx]
        d = self.line.distance(x, y)
        band: float | np.ndarray = self.h
        if self.box_share > 0:
            band = np.maximum(self.h, self.box_share * (self.nx * view.bw[idx] + self.ny * view.bh[idx]))
        new = (d > band).view(np.int8) - (d < -band).view(np.int8)
        prev = st.side[s]
        unset = prev == 0
        if unset.any():
            prev = np.where(unset, np.sign(d).astype(np.int8), prev)
        pend = st.pend[s]
        flip = (new * prev) < 0
        out: list[tuple[int, int, float, float]] = []
        busy = flip | (pend != 0)
        if busy.any():
            for k in _nz(busy):
                i, slot = int(idx[k]), int(s[k])
                nk = int(new[k])
                if flip[k]:
                    u, f = self._along(st.px[slot], st.py[slot], float(x[k]), float(y[k]))
                    if -self.margin <= u <= 1.0 + self.margin:
                        if st.pend[slot] == -nk:  # went back before maturing: a flicker
                            st.pend[slot] = 0
                        else:
                            # when it crossed: interpolated between the last sighting and now
                            t0 = float(st.pt[slot])
                            st.pend[slot] = nk
                            st.pend_t[slot] = view.t if math.isnan(t0) else t0 + min(1.0, max(0.0, f)) * (
                                view.t - t0)
                            st.pend_x[slot] = u
                mature = view.hits[i] >= self.min_age
                if st.pend[slot] != 0 and mature and nk in (0, st.pend[slot]):
                    out.append((i, int(st.pend[slot]), float(st.pend_t[slot]), float(st.pend_x[slot])))
                    st.pend[slot] = 0
        st.side[s] = np.where(new != 0, new, prev)
        st.px[s] = x
        st.py[s] = y
        st.pt[s] = view.t
        return out

    def _along(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float]:
        """Where the move (x0, y0) -> (x1, y1) meets the line: (fraction along the line, fraction of the move)."""
        if math.isnan(x0):
            return float(self.line.along(x1, y1)), 1.0
        d0 = signed_distance((x0, y0), self.line.a, self.line.normal)
        d1 = signed_distance((x1, y1), self.line.a, self.line.normal)
        f = d0 / (d0 - d1) if d0 != d1 else 0.5
        return float(self.line.along(x0 + f * (x1 - x0), y0 + f * (y1 - y0))), f

    def reset(self) -> None:
        self.st.reset(list(range(self.st.capacity)))


class LineCountParams(Params):
    line: LineParam = Field(description="Counting line [[x, y], [x, y]] (normalised).")
    in_direction: DirectionParam | Literal["left", "right"] = Field(
        description="Direction counted as 'in': a vector [dx, dy] across the line, or 'left'/'right' of a->b."
    )
    min_track_age: int = Field(2, description="Frames a track must be detected before it counts.", ge=1, le=100)
    hysteresis: float = Field(
        0.01, description="Distance past the line (normalised) before a side change is believed.", ge=0, le=0.2
    )
    hysteresis_box: float = Field(
        0.1,
        description="The band also spans this share of the box's extent across the line (box edges jitter "
        "by a few percent of the box: a vehicle waiting on the line must not count in and out).",
        ge=0,
        le=1,
    )
    margin: float = Field(0.02, description="Extension of the line beyond its ends (fraction of its length).",
                          ge=0, le=0.5)
    emit_events: bool = Field(False, description="Also emit one event per crossing (counts are always kept).")
    in_name: str = Field("in", description="Name of the 'in' direction in counts.", min_length=1, max_length=32)
    out_name: str = Field("out", description="Name of the 'out' direction in counts.", min_length=1, max_length=32)

    @field_validator("in_direction")
    @classmethod
    def _across(cls, v: Any, info: ValidationInfo) -> Any:
        return _check_across(v, info, "line")


@register("line_count")
class LineCountRule(Rule):
    """Counts crossings of a line by class and direction, in 1-minute buckets."""

    Params = LineCountParams
    default_classes = ROAD_USERS
    severity = Severity.INFO
    alert_kinds = frozenset({"crossing"})

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None, counts: CountAggregator | None = None):
        super().__init__(spec, vocab)
        p: LineCountParams = self.params
        self.line = Line.of(p.line, p.in_direction)
        self.crossings = _Crossings(self.line, p.hysteresis, p.margin, p.min_track_age, p.hysteresis_box)
        self.counts = counts or CountAggregator(spec.camera_id)

    def step(self, view: FrameView) -> list[RuleEvent]:
        out: list[RuleEvent] = []
        p: LineCountParams = self.params
        for i, direction, t_cross, u in self.crossings.step(view, self.selected(view)):
            tr = view.tracks[i]
            name = p.in_name if direction > 0 else p.out_name
            self.counts.add(self.spec.id, tr.cls, name, t_cross)
            if p.emit_events:
                self.emit(out, view, t_cross, "crossing", track_id=tr.track_id, object_class=tr.cls,
                          payload=_on_line(self.line, u, direction=name, along=round(u, 3)))
        return out

    def reset(self) -> None:
        self.crossings.reset()


class WrongWayParams(Params):
    zone: PolygonParam = Field(description="Zone where the direction applies (normalised polygon).")
    direction: DirectionParam = Field(description="Allowed direction of travel [dx, dy] in the image.")
    min_distance: float = Field(0.08, description="Distance travelled against the direction before an alert.",
                                gt=0, le=1)
    max_angle_deg: float = Field(50.0, description="Largest angle between the motion and the exact opposite "
                                 "of the allowed direction.", gt=0, le=89)
    min_track_age: int = Field(3, description="Frames a track must be detected before it can alert.", ge=1, le=100)


@register("wrong_way")
class WrongWayRule(Rule):
    """Alerts when a track moves against the allowed direction over a minimum distance in a zone."""

    Params = WrongWayParams
    default_classes = VEHICLES
    severity = Severity.HIGH
    alert_kinds = frozenset({"wrong_way"})

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: WrongWayParams = self.params
        self.zone = Polygon.of(p.zone)
        n = math.hypot(*p.direction)
        self.ux, self.uy = p.direction[0] / n, p.direction[1] / n
        self.cos_max = math.cos(math.radians(p.max_angle_deg))
        self.st = SlotArrays(ax=(np.nan, np.float64), ay=(np.nan, np.float64), fired=(False, bool))

    def step(self, view: FrameView) -> list[RuleEvent]:
        st = self.st
        st.ensure(view.capacity)
        st.reset(view.new_slots)
        idx = _nz(self.selected(view))
        if not len(idx):
            return []
        x, y, s = view.gx[idx], view.gy[idx], view.slots[idx]
        inside = view.inside(self.zone)[idx]
        st.ax[s[~inside]] = np.nan  # leaving the zone forgets the progress
        if not inside.any():
            return []
        idx, x, y, s = idx[inside], x[inside], y[inside], s[inside]
        ax, ay = st.ax[s], st.ay[s]
        fresh_anchor = np.isnan(ax) | ((x - ax) * self.ux + (y - ay) * self.uy > 0)
        ax = np.where(fresh_anchor, x, ax)
        ay = np.where(fresh_anchor, y, ay)
        st.ax[s], st.ay[s] = ax, ay
        dx, dy = x - ax, y - ay
        back = -(dx * self.ux + dy * self.uy)
        dist = np.hypot(dx, dy)
        p: WrongWayParams = self.params
        hit = (back >= p.min_distance) & (back >= self.cos_max * dist) & ~st.fired[s] & (
            view.hits[idx] >= p.min_track_age
        )
        out: list[RuleEvent] = []
        for k in _nz(hit):
            i = int(idx[k])
            st.fired[s[k]] = True
            tr = view.tracks[i]
            self.emit(out, view, view.t, "wrong_way", track_id=tr.track_id, object_class=tr.cls,
                      payload=track_payload(view, i, distance=round(float(back[k]), 4)))
        return out

    def reset(self) -> None:
        self.st.reset(list(range(self.st.capacity)))


class SignalFromImage(Params):
    source: Literal["image"] = Field(description="Classify the colour of the lit lamp in `roi`.")
    roi: BoxParam = Field(description="Region over the signal head [x1, y1, x2, y2] (normalised).")
    stable_frames: int = Field(2, description="Frames a new colour must persist before it is believed.",
                               ge=1, le=50)


class SignalExternal(Params):
    source: Literal["external"] = Field(description="State pushed through the API (set_signal_state).")
    max_age_s: float = Field(300.0, description="A pushed state older than this is unknown.", gt=0, le=86400)


class RedLightParams(Params):
    stop_line: LineParam = Field(description="Stop line [[x, y], [x, y]] (normalised).")
    direction: DirectionParam | Literal["left", "right"] = Field(
        description="Direction of travel through the stop line: [dx, dy] or 'left'/'right' of a->b."
    )
    signal: SignalFromImage | SignalExternal = Field(discriminator="source", description="Signal state source.")
    include_amber: bool = Field(False, description="Also alert when crossing on amber.")
    min_track_age: int = Field(3, description="Frames a track must be detected before it can alert.", ge=1, le=100)
    hysteresis: float = Field(0.01, description="Distance past the line before a side change is believed.",
                              ge=0, le=0.2)
    margin: float = Field(0.02, description="Extension of the line beyond its ends.", ge=0, le=0.5)

    @field_validator("direction")
    @classmethod
    def _across(cls, v: Any, info: ValidationInfo) -> Any:
        return _check_across(v, info, "stop_line")


@register("red_light")
class RedLightRule(Rule):
    """Alerts when a selected vehicle crosses the stop line (forwards) while the signal is red."""

    Params = RedLightParams
    default_classes = VEHICLES
    severity = Severity.HIGH
    alert_kinds = frozenset({"red_light"})

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: RedLightParams = self.params
        self.line = Line.of(p.stop_line, p.direction)
        self.crossings = _Crossings(self.line, p.hysteresis, p.margin, p.min_track_age)
        self.state: SignalColour | None = None
        self.state_t = -math.inf
        self._candidate: SignalColour | None = None
        self._candidate_n = 0
        self._history: list[tuple[float, SignalColour | None]] = []

    def set_signal(self, state: SignalColour, t: float) -> None:
        """An externally pushed signal state (ignored by an image-sourced rule)."""
        if state not in ("red", "amber", "green"):
            raise ValueError(f"signal state must be red, amber or green, got {state!r}")
        if isinstance(self.params.signal, SignalExternal):
            self._set(state, t)

    def _set(self, state: SignalColour | None, t: float) -> None:
        if state != self.state:
            self._history.append((t, state))
            del self._history[:-64]
        self.state, self.state_t = state, t

    def _state_at(self, t: float) -> SignalColour | None:
        """State at time t (a pending crossing is judged by the state when it happened)."""
        for ht, hs in reversed(self._history):
            if ht <= t:
                return hs
        return None

    def current_state(self, t: float) -> SignalColour | None:
        sig = self.params.signal
        if isinstance(sig, SignalExternal) and t - self.state_t > sig.max_age_s:
            return None
        return self.state

    def _observe(self, view: FrameView) -> None:
        sig = self.params.signal
        if isinstance(sig, SignalFromImage):
            if view.image is None:
                return
            colour = classify_signal(view.image, sig.roi)
            if colour is None:
                return
            if colour == self._candidate:
                self._candidate_n += 1
            else:
                self._candidate, self._candidate_n = colour, 1
            if self._candidate_n >= sig.stable_frames and colour != self.state:
                self._set(colour, view.t)
            elif colour == self.state:
                self.state_t = view.t
        elif view.t - self.state_t > sig.max_age_s and self.state is not None:
            self._set(None, view.t)

    def step(self, view: FrameView) -> list[RuleEvent]:
        self._observe(view)
        out: list[RuleEvent] = []
        p: RedLightParams = self.params
        for i, direction, t_cross, u in self.crossings.step(view, self.selected(view)):
            if direction <= 0:
                continue
            state = self._state_at(t_cross)
            if state == "red" or (state == "amber" and p.include_amber):
                tr = view.tracks[i]
                self.emit(out, view, t_cross, "red_light", track_id=tr.track_id, object_class=tr.cls,
                          payload=_on_line(self.line, u, signal=state, along=round(u, 3)))
        return out

    def reset(self) -> None:
        self.crossings.reset()


class ZonePassageParams(Params):
    zone: PolygonParam = Field(description="Zone (normalised polygon).")
    min_inside_s: float = Field(0.3, description="Shorter visits are not registered.", ge=0, le=3600)
    exit_grace_s: float = Field(1.0, description="Seconds outside before a visit ends.", ge=0, le=60)
    min_track_age: int = Field(2, description="Frames a track must be detected to be registered.", ge=1, le=100)


@register("zone_passage")
class ZonePassageRule(Rule):
    """Registers every passage of the selected classes through a zone (one event when it ends)."""

    Params = ZonePassageParams
    default_classes = ROAD_USERS
    severity = Severity.INFO
    alert_kinds = frozenset({"passage"})

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        self.zone = Polygon.of(self.params.zone)
        self.st = SlotArrays(since=(np.nan, np.float64), last=(np.nan, np.float64), mature=(False, bool))
        self.who: dict[int, tuple[int, str, float, float]] = {}

    def step(self, view: FrameView) -> list[RuleEvent]:
        st = self.st
        p: ZonePassageParams = self.params
        out: list[RuleEvent] = []
        st.ensure(view.capacity)
        for slot in view.freed_slots:
            self._close(out, view, slot)
        st.reset(view.new_slots)
        idx = _nz(self.selected(view))
        if not len(idx):
            return out
        s = view.slots[idx]
        inside = view.inside(self.zone)[idx]
        si = s[inside]
        if len(si):
            start = np.isnan(st.since[si])
            st.since[si[start]] = view.t
            st.last[si] = view.t
            st.mature[si] |= view.hits[idx[inside]] >= p.min_track_age
            for k in _nz(inside):
                i = int(idx[k])
                self.who[int(s[k])] = (view.tracks[i].track_id, view.tracks[i].cls, float(view.gx[i]),
                                       float(view.gy[i]))
        so = s[~inside]
        gone = so[~np.isnan(st.since[so]) & (view.t - st.last[so] >= p.exit_grace_s)]
        for slot in gone:
            self._close(out, view, int(slot))
        return out

    def _close(self, out: list[RuleEvent], view: FrameView, slot: int) -> None:
        since, last = float(self.st.since[slot]), float(self.st.last[slot])
        who = self.who.pop(slot, None)
        mature = bool(self.st.mature[slot])
        self.st.reset([slot])
        if math.isnan(since) or who is None or not mature or last - since < self.params.min_inside_s:
            return
        tid, cls, x, y = who
        self.emit(out, view, last, "passage", track_id=tid, object_class=cls,
                  payload={"x": round(x, 4), "y": round(y, 4), "entered_at": since, "left_at": last,
                           "duration_s": round(last - since, 3)})

    def reset(self) -> None:
        self.st.reset(list(range(self.st.capacity)))
        self.who.clear()
