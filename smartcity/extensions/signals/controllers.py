"""The controllers: fixed-time (Webster's method from measured flows), actuated (gap-out and
max-out from camera presence) and max-pressure; each says which phase it wants green, the
safety layer decides what is shown. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from .junction import JunctionConfig
from .safety import SignalFrame


@dataclass(frozen=True, slots=True)
class LaneMeasure:
    """What the cameras say of one lane group at time `t`."""

    t: float  # when it was measured (s, the junction's clock)
    queue: float  # vehicles in the queue zone
    flow_vph: float | None = None  # arrivals per hour over the last minutes (None: not yet known)
    last_arrival: float | None = None  # time of the last vehicle over the counting line
    downstream: float = 0.0  # vehicles in the exit zone (max-pressure)
    confidence: float = 1.0  # 0..1: camera health and detection confidence


@dataclass(frozen=True, slots=True)
class ControlView:
    """What a controller decides on."""

    t: float
    frame: SignalFrame  # the last commanded frame
    measures: Mapping[str, LaneMeasure]  # lane group -> measure (fresh ones only)


class Controller(Protocol):
    name: str

    def decide(self, view: ControlView) -> str:
        """The phase to be green now."""
        ...


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class FixedTimeSettings(_Strict):
    type: Literal["fixed"] = "fixed"


class ActuatedSettings(_Strict):
    type: Literal["actuated"] = "actuated"
    gap_s: float = Field(
        3.0, ge=0.5, le=10, description="Passage time: green ends when no arrival for this long."
    )
    presence_queue: float = Field(
        0.5, ge=0, le=50, description="Queue above which a lane group calls its phase."
    )


class MaxPressureSettings(_Strict):
    type: Literal["max_pressure"] = "max_pressure"
    min_hold_s: float = Field(
        0.0, ge=0, le=120, description="Green held beyond the minimum before pressures are compared."
    )
    switch_margin: float = Field(
        1.0,
        ge=0,
        le=50,
        description="Another phase's pressure must exceed the current one's by this (vehicles).",
    )


ControllerSettings = Annotated[
    FixedTimeSettings | ActuatedSettings | MaxPressureSettings, Field(discriminator="type")
]


def _served(j: JunctionConfig) -> dict[str, list[str]]:
    """phase -> lane groups it serves (any of their signal groups green in it)."""
    out: dict[str, list[str]] = {}
    for p in j.phases:
        out[p.id] = [lg.id for lg in j.lane_groups if set(lg.signal_groups) & set(p.groups)]
    return out


def _intergreen(j: JunctionConfig, phase: str) -> float:
    p = next(x for x in j.phases if x.id == phase)
    return max(j.group(g).ending_s for g in p.groups) + j.all_red_s


def _min_green(j: JunctionConfig, phase: str) -> float:
    p = next(x for x in j.phases if x.id == phase)
    return max(j.group(g).shortest_green_s for g in p.groups)


def _max_green(j: JunctionConfig, phase: str) -> float:
    p = next(x for x in j.phases if x.id == phase)
    return min(j.group(g).max_green_s for g in p.groups)


def webster(j: JunctionConfig, flows_vph: Mapping[str, float]) -> dict[str, float]:
    """Green seconds per phase by Webster's method: C0 = (1.5 L + 5) / (1 - Y), greens shared
    in proportion to each phase's critical flow ratio, bounded by the cycle limits and the
    groups' minimum and maximum greens. `flows_vph`: lane group -> arrivals per hour
    (missing: its design flow)."""
    served = _served(j)
    lanes = {lg.id: lg for lg in j.lane_groups}
    ratios: dict[str, float] = {}
    for p in j.phases:
        ys = [
            flows_vph.get(lg, lanes[lg].design_flow_vph) / (lanes[lg].saturation_flow_vph * lanes[lg].lanes)
            for lg in served[p.id]
        ]
        ratios[p.id] = max(ys, default=0.0)
    lost = sum(_intergreen(j, p) + j.lost_time_s for p in ratios)
    # beyond 0.9 the formula explodes: over capacity, the longest cycle
    y = min(sum(ratios.values()), 0.9)
    cycle = (1.5 * lost + 5.0) / (1.0 - y)
    cycle = min(max(cycle, j.cycle.min_s), j.cycle.max_s)
    effective = max(cycle - lost, 0.0)
    total = sum(ratios.values())
    greens: dict[str, float] = {}
    for pid, ratio in ratios.items():
        share = ratio / total if total > 0 else 1.0 / len(ratios)
        greens[pid] = min(max(effective * share + j.lost_time_s, _min_green(j, pid)), _max_green(j, pid))
    return greens


class FixedTime:
    """Phases in order with fixed greens (an explicit plan, or Webster's from flows)."""

    name = "fixed"

    def __init__(self, j: JunctionConfig, greens_s: Mapping[str, float] | None = None) -> None:
        self.j = j
        if greens_s is None:
            greens_s = j.fixed_plan.greens_s if j.fixed_plan is not None else webster(j, {})
        self.greens = dict(greens_s)
        self.order = [p.id for p in j.phases]

    def retime(self, flows_vph: Mapping[str, float]) -> None:
        """New greens from measured flows (Webster)."""
        self.greens = webster(self.j, flows_vph)

    def decide(self, view: ControlView) -> str:
        f = view.frame
        if f.phase is not None and f.green_s >= self.greens.get(f.phase, 0.0):
            k = self.order.index(f.phase)
            return self.order[(k + 1) % len(self.order)]
        return f.target


class Actuated:
    """Actuated control from the cameras: a phase's green is extended while vehicles keep arriving
    (gap shorter than the passage time) up to its maximum; then the next phase in order with a
    call (a queue) is served; phases without calls are skipped; with no call at all, green rests."""

    name = "actuated"

    def __init__(self, j: JunctionConfig, settings: ActuatedSettings | None = None) -> None:
        self.j = j
        self.s = settings or ActuatedSettings()
        self.served = _served(j)
        self.order = [p.id for p in j.phases]

    def _called(self, phase: str, view: ControlView) -> bool:
        return any(
            (m := view.measures.get(lg)) is not None and m.queue > self.s.presence_queue
            for lg in self.served[phase]
        )

    def _gap(self, phase: str, view: ControlView) -> float:
        last = [
            m.last_arrival
            for lg in self.served[phase]
            if (m := view.measures.get(lg)) and m.last_arrival is not None
        ]
        return view.t - max(last) if last else float("inf")

    def decide(self, view: ControlView) -> str:
        f = view.frame
        if f.phase is None:
            return f.target
        if f.green_s < _min_green(self.j, f.phase) or (
            self._gap(f.phase, view) < self.s.gap_s and f.green_s < _max_green(self.j, f.phase)
        ):
            return f.phase
        k = self.order.index(f.phase)
        for p in self.order[k + 1 :] + self.order[:k]:
            if self._called(p, view):
                return p
        return f.phase


class MaxPressure:
    """Max-pressure: once the minimum green is over, serve the phase whose lane groups hold the
    most vehicles (minus what waits at their exits), switching only for a clear margin."""

    name = "max_pressure"

    def __init__(self, j: JunctionConfig, settings: MaxPressureSettings | None = None) -> None:
        self.j = j
        self.s = settings or MaxPressureSettings()
        self.served = _served(j)

    def pressure(self, phase: str, view: ControlView) -> float:
        total = 0.0
        for lg in self.served[phase]:
            m = view.measures.get(lg)
            if m is not None:
                total += m.queue - m.downstream
        return total

    def decide(self, view: ControlView) -> str:
        f = view.frame
        if f.phase is None:
            return f.target
        if f.green_s < _min_green(self.j, f.phase) + self.s.min_hold_s:
            return f.phase
        pressures = {p: self.pressure(p, view) for p in self.served}
        best = max(pressures, key=lambda p: pressures[p])
        if best != f.phase and pressures[best] > pressures[f.phase] + self.s.switch_margin:
            return best
        return f.phase


def build_controller(
    j: JunctionConfig, settings: FixedTimeSettings | ActuatedSettings | MaxPressureSettings
) -> Controller:
    if isinstance(settings, ActuatedSettings):
        return Actuated(j, settings)
    if isinstance(settings, MaxPressureSettings):
        return MaxPressure(j, settings)
    return FixedTime(j)
