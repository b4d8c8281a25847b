"""The junction model's validation, the controllers' decisions and the runtime's fall-back to the
fixed plan on stale or unsure camera data (and back once the data is fresh)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from signals_kit import junction, junction_dict

from smartcity.core.events import CameraHealth, CameraState, RuleEvent
from smartcity.extensions.signals.config import SignalJunction, SignalsConfig
from smartcity.extensions.signals.controllers import (
    Actuated,
    ActuatedSettings,
    ControlView,
    LaneMeasure,
    MaxPressure,
    webster,
)
from smartcity.extensions.signals.runtime import JunctionRuntime
from smartcity.extensions.signals.safety import SafetyLayer


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"phases": [{"id": "NS", "groups": ["ns", "ew"]}, {"id": "PED", "groups": ["ped"]}]},
            "'ns' and 'ew' conflict",
        ),
        ({"conflicts": [["ns", "nope"]]}, "unknown signal group 'nope'"),
        (
            {"phases": [{"id": "NS", "groups": ["ns"]}, {"id": "EW", "groups": ["ew"]}]},
            "'ped' is in no phase",
        ),
        ({"cycle": {"min_s": 20, "max_s": 30}}, "cycle.max_s (30.0) is shorter"),
        ({"fixed_plan": {"greens_s": {"NS": 20, "XX": 5}}}, "fixed_plan: unknown phase 'XX'"),
        (
            {"lane_groups": [{"id": "a", "signal_groups": ["zz"]}]},
            "lane group 'a': unknown signal group 'zz'",
        ),
    ],
)
def test_bad_junctions_are_refused_with_the_reason(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        junction(**change)
    assert message in str(err.value)


def test_group_bounds_and_unknown_fields_are_refused() -> None:
    d = junction_dict()
    d["signal_groups"][0] = {"id": "ns", "min_green_s": 30, "max_green_s": 20}
    with pytest.raises(ValidationError, match="max_green_s"):
        junction(**{k: v for k, v in d.items() if k != "id"}, id="j1")
    with pytest.raises(ValidationError, match="colour"):
        junction(colour="red")


def test_active_mode_needs_an_adapter_and_a_complete_mapping() -> None:
    with pytest.raises(ValidationError, match="needs an adapter"):
        SignalJunction.model_validate(junction_dict(mode="active"))
    with pytest.raises(ValidationError, match=r"without a mapping \['ped'\]"):
        SignalJunction.model_validate(
            junction_dict(
                mode="active", adapter={"type": "ntcip", "host": "127.0.0.1", "phases": {"ns": 2, "ew": 4}}
            )
        )
    with pytest.raises(ValidationError, match="defined twice"):
        SignalsConfig.model_validate({"type": "signals", "junctions": [junction_dict(), junction_dict()]})


def test_webster_gives_the_busier_phase_more_green_within_the_limits() -> None:
    j = junction()
    light = webster(j, {"north": 300, "east": 300})
    heavy = webster(j, {"north": 1200, "east": 300})
    assert heavy["NS"] > light["NS"] and heavy["NS"] > heavy["EW"]
    assert heavy["NS"] <= 40 and heavy["EW"] >= 5 and heavy["PED"] >= 6
    cycle_heavy = sum(heavy.values())
    assert cycle_heavy > sum(light.values())  # more demand, longer cycle (Webster's C0)


def _view(layer: SafetyLayer, t: float, wish: str | None, measures: dict[str, LaneMeasure]) -> ControlView:
    return ControlView(t=t, frame=layer.step(t, wish), measures=measures)


def test_actuated_extends_on_arrivals_and_gaps_out() -> None:
    j = junction()
    ctl, layer = Actuated(j, ActuatedSettings(gap_s=3.0)), SafetyLayer(j, 0.0)
    layer.step(0.0, "NS")  # NS green from 0 s
    busy = {"north": LaneMeasure(t=10, queue=3, last_arrival=9.5), "east": LaneMeasure(t=10, queue=2)}
    assert ctl.decide(_view(layer, 10.0, "NS", busy)) == "NS"  # an arrival 0.5 s ago: extend
    gap = {"north": LaneMeasure(t=14, queue=0, last_arrival=9.5), "east": LaneMeasure(t=14, queue=2)}
    assert ctl.decide(_view(layer, 14.0, "NS", gap)) == "EW"  # 4.5 s gap: next phase with a call
    idle = {"north": LaneMeasure(t=15, queue=0, last_arrival=9.5), "east": LaneMeasure(t=15, queue=0)}
    assert ctl.decide(_view(layer, 15.0, "NS", idle)) == "NS"  # no call anywhere: green rests


def test_max_pressure_switches_for_a_clear_margin_only() -> None:
    j = junction()
    ctl, layer = MaxPressure(j), SafetyLayer(j, 0.0)
    layer.step(0.0, "NS")
    even = {"north": LaneMeasure(t=10, queue=4), "east": LaneMeasure(t=10, queue=4.5)}
    assert ctl.decide(_view(layer, 10.0, "NS", even)) == "NS"
    east = {"north": LaneMeasure(t=11, queue=1), "east": LaneMeasure(t=11, queue=8)}
    assert ctl.decide(_view(layer, 11.0, "NS", east)) == "EW"
    early = SafetyLayer(j, 0.0)
    early.step(0.0, "NS")
    assert ctl.decide(_view(early, 2.0, "NS", east)) == "NS"  # minimum green first


def _queue(camera: str, rule: str, t: float, mean: float) -> RuleEvent:
    return RuleEvent(
        camera_id=camera,
        t=t,
        rule_id=rule,
        rule_type="occupancy",
        kind="occupancy_sample",
        payload={"mean": mean, "max": mean, "min": mean, "frames": 5},
    )


def _crossing(t: float) -> RuleEvent:
    return RuleEvent(
        camera_id="cam-n",
        t=t,
        rule_id="c-n",
        rule_type="line_count",
        kind="crossing",
        payload={"direction": "in"},
    )


def test_stale_camera_data_falls_back_to_the_fixed_plan_and_recovers() -> None:
    j = SignalJunction.model_validate(junction_dict())
    rt = JunctionRuntime(j, 0.0, stale_after_s=5.0, min_confidence=0.5, retime_s=900.0)
    assert rt.tick(0.0).fallback is not None  # nothing heard yet: fixed plan
    for t in range(1, 4):
        rt.on_event(_queue("cam-n", "q-n", float(t), 3.0))
        rt.on_event(_queue("cam-e", "q-e", float(t), 1.0))
        rt.on_event(_crossing(float(t)))
    d = rt.tick(3.5)
    assert d.fallback is None and d.controller == "max_pressure" and d.stale == ()
    assert d.measures["north"].queue == 3.0
    d = rt.tick(8.5)  # cam-e silent for 5.5 s (cam-n too): fixed plan
    assert d.controller == "fixed" and "east" in d.stale and d.fallback is not None and "stale" in d.fallback
    rt.on_event(_queue("cam-n", "q-n", 9.0, 3.0))
    rt.on_event(_queue("cam-e", "q-e", 9.0, 1.0))
    rt.on_event(_crossing(9.0))
    assert rt.tick(9.5).controller == "max_pressure"
    rt.book.set_confidence("north", 0.2)  # the camera is unsure (low detection confidence)
    d = rt.tick(10.0)
    assert d.controller == "fixed" and d.stale == ("north",)
    rt.book.set_confidence("north", 0.9)
    rt.forced_fixed = True  # an operator's order wins over fresh data
    d = rt.tick(10.5)
    assert d.controller == "fixed" and d.fallback == "forced by an operator"


def test_a_degraded_or_offline_camera_puts_its_lanes_on_the_fixed_plan() -> None:
    j = SignalJunction.model_validate(junction_dict())
    rt = JunctionRuntime(j, 0.0, stale_after_s=30.0, min_confidence=0.5, retime_s=900.0)

    def fresh(t: float) -> None:
        rt.on_event(_queue("cam-n", "q-n", t, 3.0))
        rt.on_event(_queue("cam-e", "q-e", t, 1.0))
        rt.on_event(_crossing(t))

    def health(camera: str, state: CameraState) -> None:
        rt.on_health(CameraHealth(camera_id=camera, t=0.0, group="g", state=state))

    fresh(1.0)
    health("cam-n", CameraState.ONLINE)
    assert rt.tick(1.5).controller == "max_pressure"
    # events still arrive (fresh data) but the camera says it is degraded: its lanes are unsure
    health("cam-n", CameraState.DEGRADED)
    fresh(2.0)
    d = rt.tick(2.5)
    assert d.controller == "fixed" and d.stale == ("north",) and d.fallback is not None and "unsure" in d.fallback
    health("cam-e", CameraState.OFFLINE)
    assert rt.tick(3.0).stale == ("north", "east")
    health("cam-n", CameraState.ONLINE)
    health("cam-e", CameraState.ONLINE)
    fresh(3.5)
    assert rt.tick(4.0).controller == "max_pressure"


def test_the_fixed_plan_is_retimed_from_measured_flows() -> None:
    j = SignalJunction.model_validate(junction_dict())
    rt = JunctionRuntime(j, 0.0, stale_after_s=30.0, min_confidence=0.5, retime_s=120.0)
    before = dict(rt.fixed.greens)
    for k in range(120):  # 1 vehicle every 20 s on north: 180 veh/h, well below its design flow (600)
        t = float(k)
        if k % 20 == 0:
            rt.on_event(_crossing(t))
        rt.on_event(_queue("cam-n", "q-n", t, 5.0))
        rt.on_event(_queue("cam-e", "q-e", t, 0.0))
    rt.tick(120.0)
    assert rt.fixed.greens["NS"] < before["NS"]
    assert rt.fixed.greens["NS"] >= 6  # never below its minimum
