"""A SUMO traffic light as our junction model: signal groups (links with the same greens in the
static programme), phases, the conflict matrix (groups never green together in that
programme), timings from the programme, lane groups (one per incoming lane), and the SUMO
state string of a frame of aspects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smartcity.core.video import SignalState
from smartcity.extensions.signals.junction import (
    CycleLimits,
    FixedPlan,
    JunctionConfig,
    LaneGroup,
    Phase,
    SignalGroup,
)

_CHAR = {SignalState.RED: "r", SignalState.AMBER: "y"}


@dataclass(frozen=True, slots=True)
class SumoJunction:
    """The model of one SUMO traffic light and how its links map to our signal groups."""

    tls: str
    config: JunctionConfig
    link_group: tuple[str | None, ...]  # link index -> signal group (None: never green)
    green_char: tuple[str, ...]  # link index -> 'G' or 'g' (priority or permissive green)
    lanes: dict[str, list[str]]  # lane group -> SUMO lanes (one incoming lane each)
    static_greens: dict[str, float]  # phase -> green of the static programme (s)

    def state_string(self, states: dict[str, SignalState]) -> str:
        out = []
        for k, g in enumerate(self.link_group):
            s = states.get(g, SignalState.RED) if g is not None else SignalState.RED
            out.append(self.green_char[k] if s is SignalState.GREEN else _CHAR.get(s, "r"))
        return "".join(out)

    def read_states(self, state: str) -> dict[str, SignalState]:
        """Aspects of the groups from a SUMO state string (a group shows its links' most permissive)."""
        rank = {SignalState.RED: 0, SignalState.AMBER: 1, SignalState.GREEN: 2}
        out: dict[str, SignalState] = {}
        for k, g in enumerate(self.link_group):
            if g is None:
                continue
            c = state[k]
            s = SignalState.GREEN if c in "Gg" else SignalState.AMBER if c in "yY" else SignalState.RED
            if g not in out or rank[s] > rank[out[g]]:
                out[g] = s
        return out


def junction_of(
    traci: Any, tls: str, *, all_red_s: float | None = None, pedestrian_clearance_s: float = 4.0
) -> SumoJunction:
    """Build the model from the running simulation's static programme of `tls`."""
    logic = traci.trafficlight.getAllProgramLogics(tls)[0]
    links = traci.trafficlight.getControlledLinks(tls)
    phases = list(logic.phases)
    greens = [
        k for k, ph in enumerate(phases) if "y" not in ph.state.lower() and any(c in "Gg" for c in ph.state)
    ]
    yellow = [ph.duration for ph in phases if "y" in ph.state.lower()] or [3.0]
    amber = max(2.0, min(yellow))
    allred = [ph.duration for ph in phases if set(ph.state) <= {"r", "s", "O", "o"}]
    all_red = all_red_s if all_red_s is not None else (min(allred) if allred else 0.0)
    n = len(phases[0].state)
    pattern: list[frozenset[int]] = [
        frozenset(i for i, k in enumerate(greens) if phases[k].state[li] in "Gg") for li in range(n)
    ]
    keys = sorted({p for p in pattern if p}, key=lambda p: (min(p), sorted(p)))
    gid = {p: f"sg{i}" for i, p in enumerate(keys)}
    link_group = tuple(gid.get(p) for p in pattern)
    green_char = tuple("G" if any(phases[k].state[li] == "G" for k in greens) else "g" for li in range(n))
    crossing = {gid[pattern[li]] for li in range(n) if pattern[li] and _is_crossing(links[li])}
    min_dur = min((ph.minDur for k, ph in enumerate(phases) if k in greens and ph.minDur > 0), default=5.0)
    max_dur = max(
        (ph.maxDur for k, ph in enumerate(phases) if k in greens and 0 < ph.maxDur < 1e5), default=60.0
    )
    groups = [
        SignalGroup(
            id=g,
            kind="pedestrian" if g in crossing else "vehicle",
            min_green_s=max(1.0, min(min_dur, 5.0)),
            max_green_s=max(max_dur, 50.0),
            amber_s=amber,
            walk_s=4.0,
            clearance_s=pedestrian_clearance_s,
        )
        for g in gid.values()
    ]
    conflicts = [(gid[a], gid[b]) for i, a in enumerate(keys) for b in keys[i + 1 :] if not (a & b)]
    phase_list: list[Phase] = []
    static: dict[str, float] = {}
    seen: set[frozenset[str]] = set()
    for i, k in enumerate(greens):
        members = frozenset(gid[p] for p in keys if i in p)
        if members in seen:
            continue
        seen.add(members)
        pid = f"p{len(phase_list)}"
        phase_list.append(Phase(id=pid, groups=sorted(members)))
        static[pid] = phases[k].duration
    lanes: dict[str, list[str]] = {}
    lane_signal: dict[str, set[str]] = {}
    for li, conns in enumerate(links):
        g = link_group[li]
        for inlane, _out, _via in conns:
            if g is None or inlane.startswith(":"):
                continue
            lane_signal.setdefault(inlane, set()).add(g)
    lane_groups = []
    for lane in sorted(lane_signal):
        lg = f"lg_{lane}".replace("#", "_")
        lanes[lg] = [lane]
        lane_groups.append(LaneGroup(id=lg, signal_groups=sorted(lane_signal[lane]), lanes=1))
    static_cycle = sum(ph.duration for ph in phases)
    shortest = sum(max(5.0, 4.0) for _ in phase_list) + len(phase_list) * (
        max(amber, pedestrian_clearance_s) + all_red
    )
    config = JunctionConfig(
        id=tls.replace("#", "_")[:64],
        name=f"SUMO {tls}",
        signal_groups=groups,
        conflicts=conflicts,
        phases=phase_list,
        lane_groups=lane_groups,
        all_red_s=all_red,
        cycle=CycleLimits(min_s=30.0, max_s=max(120.0, 1.5 * static_cycle, shortest + 10.0)),
        fixed_plan=FixedPlan(greens_s=static),
    )
    return SumoJunction(tls, config, link_group, green_char, lanes, static)


def _is_crossing(conns: list[tuple[str, str, str]]) -> bool:
    return any(inlane.startswith(":") and "_w" in inlane for inlane, _o, _v in conns)
