"""The safety layer's properties under any controller: hypothesis drives it with arbitrary wishes
(including unknown phases) at arbitrary step sizes, on the test junction and on random ones,
and the independent monitor must see no breach; maximum green and the cycle limit hold."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from signals_kit import junction

from smartcity.core.video import SignalState
from smartcity.extensions.signals.junction import JunctionConfig
from smartcity.extensions.signals.safety import Override, SafetyLayer, SafetyMonitor

J = junction()
WISHES = st.lists(
    st.tuples(st.sampled_from(["NS", "EW", "PED", "nope", None]), st.floats(0.05, 4.0)),
    min_size=1,
    max_size=300,
)


def over(steps: list[float], seconds: float) -> list[float]:
    """The step sizes repeated until they cover `seconds`."""
    out: list[float] = []
    while sum(out) < seconds:
        out.extend(steps)
    return out


def drive(j: JunctionConfig, wishes: list[tuple[str | None, float]]) -> tuple[SafetyMonitor, list[Any]]:
    layer = SafetyLayer(j, 0.0)
    monitor = SafetyMonitor(j)
    t = 0.0
    frames = []
    for wish, dt in wishes:
        t += dt
        frame = layer.step(t, wish)
        monitor.observe(t, frame.states)
        frames.append(frame)
    return monitor, frames


@settings(max_examples=300, deadline=None)
@given(WISHES)
def test_no_breach_whatever_the_controller_asks(wishes: list[tuple[str | None, float]]) -> None:
    monitor, frames = drive(J, wishes)
    assert monitor.violations == []
    for f in frames:
        greens = {g for g, s in f.states.items() if s is not SignalState.RED}
        assert not ({"ns", "ew"} <= greens or {"ns", "ped"} <= greens or {"ew", "ped"} <= greens)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.1, 1.0), min_size=1, max_size=50))
def test_a_greedy_controller_is_cut_at_max_green_and_every_phase_comes(steps: list[float]) -> None:
    # a controller that always wants NS: the layer ends it at its max green and serves the others
    monitor, frames = drive(J, [("NS", dt) for dt in over(steps, 400.0)])
    assert monitor.violations == []
    served = {f.phase for f in frames if f.phase is not None}
    assert served == {"NS", "EW", "PED"}
    assert any(f.override is Override.MAX_GREEN for f in frames)
    longest = max((f.green_s for f in frames if f.phase == "NS"), default=0.0)
    assert longest <= 40.0 + 1e-6


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.1, 1.0), min_size=1, max_size=50), st.integers(5, 60))
def test_no_phase_waits_beyond_the_cycle_limit(steps: list[float], every: int) -> None:
    # a controller that alternates NS and EW only: pedestrians still get their walk in time
    wishes = [("NS" if (k // every) % 2 == 0 else "EW", dt) for k, dt in enumerate(over(steps, 500.0))]
    _monitor, frames = drive(J, wishes)
    last = 0.0
    bound = J.cycle.max_s + 1.0  # one step late at most
    for f in frames:
        if f.phase == "PED":
            last = f.t
        assert f.t - last <= bound, f"PED waited {f.t - last:.1f} s"


def test_unknown_phase_is_refused_and_keeps_the_current_one() -> None:
    layer = SafetyLayer(J, 0.0)
    layer.step(1.0, "NS")
    f = layer.step(10.0, "nope")
    assert f.override is Override.UNKNOWN_PHASE and f.target == "NS" and f.phase == "NS"


def test_change_goes_through_amber_and_all_red() -> None:
    layer = SafetyLayer(J, 0.0)
    assert layer.step(0.0, "NS").states["ns"] is SignalState.GREEN
    f = layer.step(2.0, "EW")  # before min green (6 s): ns stays green, ew waits
    assert f.states == {"ns": SignalState.GREEN, "ew": SignalState.RED, "ped": SignalState.RED}
    f = layer.step(6.0, "EW")
    assert f.states["ns"] is SignalState.AMBER and f.states["ew"] is SignalState.RED
    f = layer.step(9.0, "EW")  # amber over: red; all-red (2 s) not yet
    assert f.states["ns"] is SignalState.RED and f.states["ew"] is SignalState.RED and f.phase is None
    f = layer.step(11.0, "EW")
    assert f.states["ew"] is SignalState.GREEN and f.phase == "EW"


def _random_junction(draw: Any) -> JunctionConfig:
    n = draw(st.integers(2, 6))
    ids = [f"g{i}" for i in range(n)]
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]]
    conflicts = [p for p in pairs if draw(st.booleans())]
    bad = {frozenset(p) for p in conflicts}
    phases: list[list[str]] = []
    for g in ids:  # greedy: each group joins the first phase it does not conflict with
        for ph in phases:
            if all(frozenset((g, h)) not in bad for h in ph):
                ph.append(g)
                break
        else:
            phases.append([g])
    if len(phases) < 2:
        phases.append([ids[0]])
    groups = [
        {
            "id": g,
            "kind": draw(st.sampled_from(["vehicle", "pedestrian"])),
            "min_green_s": draw(st.floats(1, 10)),
            "amber_s": draw(st.floats(2, 5)),
            "max_green_s": 60,
        }
        for g in ids
    ]
    return JunctionConfig.model_validate(
        {
            "id": "r",
            "signal_groups": groups,
            "conflicts": [list(p) for p in conflicts],
            "phases": [{"id": f"p{k}", "groups": ph} for k, ph in enumerate(phases)],
            "all_red_s": draw(st.floats(0, 4)),
            "cycle": {"min_s": 30, "max_s": 600},
        }
    )


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_junctions_never_breach(data: st.DataObject) -> None:
    j = _random_junction(data.draw)
    phases = [p.id for p in j.phases] + [None]
    wishes = data.draw(
        st.lists(st.tuples(st.sampled_from(phases), st.floats(0.05, 3.0)), min_size=1, max_size=200)
    )
    monitor, _frames = drive(j, wishes)
    assert monitor.violations == []


def test_monitor_catches_each_breach() -> None:
    m = SafetyMonitor(J)
    r, g, a = SignalState.RED, SignalState.GREEN, SignalState.AMBER
    m.observe(0.0, {"ns": g, "ew": r, "ped": r})
    m.observe(1.0, {"ns": g, "ew": g, "ped": r})  # conflict
    m.observe(2.0, {"ns": r, "ew": g, "ped": r})  # ns: green 2 s < 6 and straight to red
    m.observe(3.0, {"ns": r, "ew": a, "ped": r})
    m.observe(4.0, {"ns": r, "ew": r, "ped": r})  # ew amber 1 s < 3
    m.observe(4.5, {"ns": g, "ew": r, "ped": r})  # ns starts 0.5 s after ew ended: all-red 2 s
    assert {v.rule for v in m.violations} == {"conflict", "min_green", "no_amber", "amber", "all_red"}
