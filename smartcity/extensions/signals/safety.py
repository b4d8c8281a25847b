"""The safety layer every command passes, and the monitor that checks a sequence of signal states.

`SafetyLayer` turns a controller's wish (the phase it wants green) into the aspect of every
signal group, step by step, so that whatever the controller asks:

- two conflicting groups are never both showing something other than red;
- a green (pedestrian walk) lasts at least its minimum, and ends through its amber (pedestrian
  clearance) before red;
- a group turns green only once every conflicting group has been red for the all-red time;
- a green never outlasts its maximum: the layer then moves on to the next phase in order;
- no phase waits longer than the cycle limit: the layer then serves the phase waiting longest.

`SafetyMonitor` re-checks those rules on states as they were observed (read back from a
simulator or a controller), independently of the layer's own bookkeeping. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from smartcity.core.video import SignalState

from .junction import JunctionConfig

EPS = 1e-6


class Override(StrEnum):
    """Why the layer served something else than what the controller asked."""

    NONE = "none"
    UNKNOWN_PHASE = "unknown_phase"
    MAX_GREEN = "max_green"
    CYCLE_MAX = "cycle_max"


@dataclass(frozen=True, slots=True)
class SignalFrame:
    """The aspects the layer commands at time `t`."""

    t: float
    states: Mapping[str, SignalState]  # signal group -> aspect (pedestrian: green = walk, amber = clearance)
    target: str  # the phase being served or moved to
    phase: str | None  # the target once all its groups show green; None during a change
    green_s: float  # how long `phase` has been fully green (0 during a change)
    override: Override = Override.NONE


@dataclass(slots=True)
class _Group:
    state: SignalState
    since: float


class SafetyLayer:
    """Per-junction state machine between the controllers and the signals."""

    def __init__(self, junction: JunctionConfig, t0: float) -> None:
        self.j = junction
        self.order = [p.id for p in junction.phases]
        self.phase_groups = {p.id: frozenset(p.groups) for p in junction.phases}
        self.conflicts: dict[str, set[str]] = {g.id: set() for g in junction.signal_groups}
        for a, b in junction.conflicts:
            self.conflicts[a].add(b)
            self.conflicts[b].add(a)
        self.spec = {g.id: g for g in junction.signal_groups}
        # all red at start, as if it had been for the all-red time already
        self.groups = {g.id: _Group(SignalState.RED, t0 - junction.all_red_s) for g in junction.signal_groups}
        self.target = self.order[0]
        self.last_served = dict.fromkeys(self.order, t0)
        self.served_since: float | None = None
        # an override (max green, cycle limit) holds until the phase it chose is green
        self.protected: Override | None = None
        self.t = t0
        # a phase that waited this long is served next: even if every phase starves at once, serving
        # each at its shortest green with its clearances fits in the cycle limit (checked by the config)
        self.starve_after_s = junction.cycle.max_s - sum(
            max(self.spec[g].shortest_green_s + self.spec[g].ending_s for g in p.groups) + junction.all_red_s
            for p in junction.phases
        )

    def _next_without(self, gid: str, after: str) -> str:
        k = self.order.index(after)
        for p in self.order[k + 1 :] + self.order[: k + 1]:
            if gid not in self.phase_groups[p]:
                return p
        return after  # cannot happen: validation puts every group in some phase, and phases are >= 2

    def _choose(self, t: float, request: str | None) -> Override:
        why = Override.NONE
        if self.protected is Override.CYCLE_MAX:
            return Override.CYCLE_MAX
        if request is not None and self.protected is None:
            if request in self.phase_groups:
                self.target = request
            else:
                why = Override.UNKNOWN_PHASE
        starving = [
            p for p in self.order if p != self.target and t - self.last_served[p] >= self.starve_after_s
        ]
        if starving:
            self.target = min(starving, key=lambda p: self.last_served[p])
            self.protected = Override.CYCLE_MAX
            return Override.CYCLE_MAX
        if self.protected is not None:
            return self.protected
        for gid in self.phase_groups[self.target]:
            g = self.groups[gid]
            if g.state is SignalState.GREEN and t - g.since >= self.spec[gid].max_green_s - EPS:
                self.target = self._next_without(gid, self.target)
                self.protected = Override.MAX_GREEN
                return Override.MAX_GREEN
        return why

    def step(self, t: float, request: str | None) -> SignalFrame:
        """Advance to time `t` (not before the last step) with the controller's wish `request`."""
        if t < self.t:
            raise ValueError(f"time went backwards: {t} < {self.t}")
        self.t = t
        why = self._choose(t, request)
        wanted = self.phase_groups[self.target]
        for gid, g in self.groups.items():  # ends first, so that an all-red of 0 s may hand over at once
            spec = self.spec[gid]
            if (
                g.state is SignalState.GREEN
                and gid not in wanted
                and t - g.since >= spec.shortest_green_s - EPS
            ):
                self.groups[gid] = _Group(SignalState.AMBER, t)
            elif g.state is SignalState.AMBER and t - g.since >= spec.ending_s - EPS:
                self.groups[gid] = _Group(SignalState.RED, t)
        for gid in wanted:
            g = self.groups[gid]
            if g.state is SignalState.RED and all(
                self.groups[c].state is SignalState.RED and t - self.groups[c].since >= self.j.all_red_s - EPS
                for c in self.conflicts[gid]
            ):
                self.groups[gid] = _Group(SignalState.GREEN, t)
        served = all(self.groups[gid].state is SignalState.GREEN for gid in wanted)
        if served:
            if self.served_since is None:
                self.served_since = t
            self.protected = None
            self.last_served[self.target] = t
        else:
            self.served_since = None
        return SignalFrame(
            t=t,
            states={gid: g.state for gid, g in self.groups.items()},
            target=self.target,
            phase=self.target if served else None,
            green_s=t - self.served_since if self.served_since is not None else 0.0,
            override=why,
        )


@dataclass(frozen=True, slots=True)
class Violation:
    t: float
    rule: str  # conflict | min_green | amber | all_red | max_green | no_amber
    groups: tuple[str, ...]


@dataclass(slots=True)
class SafetyMonitor:
    """Checks observed aspects against the junction's rules; `violations` lists every breach.

    `tolerance_s` absorbs the sampling step of the observations (a change is seen at the step
    after it happened)."""

    junction: JunctionConfig
    tolerance_s: float = 0.0
    violations: list[Violation] = field(default_factory=list)
    _last: dict[str, _Group] = field(default_factory=dict)
    _red_since: dict[str, float] = field(default_factory=dict)

    def observe(self, t: float, states: Mapping[str, SignalState]) -> None:
        j, tol = self.junction, self.tolerance_s
        for a, b in j.conflicts:
            if (
                states.get(a, SignalState.RED) is not SignalState.RED
                and states.get(b, SignalState.RED) is not SignalState.RED
            ):
                self.violations.append(Violation(t, "conflict", (a, b)))
        for g in j.signal_groups:
            now = states.get(g.id, SignalState.UNKNOWN)
            prev = self._last.get(g.id)
            if prev is None:
                self._last[g.id] = _Group(now, t)
                continue
            if (
                prev.state is SignalState.GREEN
                and now is not SignalState.GREEN
                and t - prev.since < g.shortest_green_s - tol - EPS
            ):
                self.violations.append(Violation(t, "min_green", (g.id,)))
            if prev.state is SignalState.GREEN and now is SignalState.RED:
                self.violations.append(Violation(t, "no_amber", (g.id,)))
            if (
                prev.state is SignalState.AMBER
                and now is SignalState.RED
                and t - prev.since < g.ending_s - tol - EPS
            ):
                self.violations.append(Violation(t, "amber", (g.id,)))
            if (
                prev.state is SignalState.GREEN
                and now is SignalState.GREEN
                and t - prev.since > g.max_green_s + tol + EPS
            ):
                self.violations.append(Violation(t, "max_green", (g.id,)))
                prev.since = t  # one report per overlong green
            if now is not SignalState.GREEN or prev.state is not SignalState.GREEN:
                self._check_start(t, g.id, prev.state, now)
            if now is not prev.state:
                self._last[g.id] = _Group(now, t)
                if now is SignalState.RED:
                    self._red_since[g.id] = t

    def _check_start(self, t: float, gid: str, before: SignalState, now: SignalState) -> None:
        if not (before is SignalState.RED and now is SignalState.GREEN):
            return
        for a, b in self.junction.conflicts:
            other = b if a == gid else a if b == gid else None
            if other is None:
                continue
            since = self._red_since.get(other)
            if since is not None and t - since < self.junction.all_red_s - self.tolerance_s - EPS:
                self.violations.append(Violation(t, "all_red", (other, gid)))
