"""The rule engine: live rule changes keep state, schedules, cooldowns, deterministic ids, inputs checked."""

from __future__ import annotations

import numpy as np
import pytest
from analytics_helpers import CAM, frame, spec, track

from smartcity.analytics import RULE_TYPES, RuleEngine
from smartcity.analytics.base import ClassVocab, SlotArrays, SlotTable
from smartcity.analytics.geometry import Polygon
from smartcity.core.errors import NotFound, ValidationFailed

LINE = {"line": [[0.5, 0.1], [0.5, 0.9]], "in_direction": "right"}
ZONE = [[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]]


def test_set_rules_keeps_state_of_unchanged_rules_and_restarts_changed_ones() -> None:
    dwell = spec("dwell", {"zone": ZONE, "threshold_s": 10}, id="d1")
    other = spec("dwell", {"zone": ZONE, "threshold_s": 10}, id="d2")
    eng = RuleEngine([dwell, other], CAM)
    for k in range(60):  # 6 s inside
        eng.update(frame(0.1 * k, track(1, 0.5, 0.5)))
    changed = spec("dwell", {"zone": ZONE, "threshold_s": 11}, id="d2")
    added = spec("wrong_way", {"zone": ZONE, "direction": [1, 0]}, id="w")
    eng.set_rules([dwell, changed, added])
    events = []
    for k in range(60, 200):
        events += eng.update(frame(0.1 * k, track(1, 0.5, 0.5)))
    onsets = {e.rule_id: e.t for e in events if e.kind == "dwell"}
    assert onsets["d1"] == pytest.approx(10.0)  # unchanged: its timer kept running
    assert onsets["d2"] == pytest.approx(6.0 + 11.0)  # changed: restarted at 6 s
    eng.set_rules([dwell.model_copy(update={"enabled": False})])
    assert eng.update(frame(30.0, track(1, 0.5, 0.5))) == []
    assert set(eng.rules) == {"d1"} and eng.active_rule_ids() == []


def test_schedule_and_cooldown() -> None:
    ww = spec("wrong_way", {"zone": ZONE, "direction": [1, 0], "min_distance": 0.1}, id="w", cooldown_s=5,
              schedule={"kind": "for_duration", "duration_s": 100, "starts_at": 10})
    eng = RuleEngine([ww], CAM)
    events = []
    for k in range(40):  # before the schedule starts: nothing
        events += eng.update(frame(0.1 * k, track(1, 0.75 - 0.01 * k, 0.5)))
    assert events == []
    for k in range(40):  # two wrong-way cars 1 s apart: the second is inside the cooldown
        t = 20 + 0.1 * k
        events += eng.update(frame(t, track(2, 0.75 - 0.01 * k, 0.4), track(3, 0.75 - 0.01 * max(0, k - 10), 0.6)))
    for k in range(40):
        events += eng.update(frame(30 + 0.1 * k, track(4, 0.75 - 0.01 * k, 0.5)))
    assert [e.track_id for e in events] == [2, 4]
    assert eng.update(frame(200.0, track(5, 0.5, 0.5))) == [] and eng.active_rule_ids() == []


def test_event_ids_are_deterministic_across_replays() -> None:
    def replay() -> list[str]:
        eng = RuleEngine([spec("wrong_way", {"zone": ZONE, "direction": [1, 0]})], CAM)
        out = []
        for k in range(40):
            out += eng.update(frame(0.1 * k, track(7, 0.75 - 0.01 * k, 0.5)))
        return [e.event_id for e in out]

    first = replay()
    assert len(first) == 1 and first == replay() and len(first[0]) == 32


def test_inputs_are_checked() -> None:
    eng = RuleEngine([spec("dwell", {"zone": ZONE}, id="d")], CAM)
    with pytest.raises(ValidationFailed, match="frame.camera_id"):
        eng.update(frame(0, track(1, 0.5, 0.5)).__class__("other", 0.0, 10, 10))
    with pytest.raises(ValidationFailed, match=r"rules\[0\].camera_id"):
        eng.set_rules([spec("dwell", {"zone": ZONE}).model_copy(update={"camera_id": "x"})])
    with pytest.raises(NotFound):
        eng.set_signal_state("nope", "red", 0.0)
    with pytest.raises(ValidationFailed, match="not a red_light rule"):
        eng.set_signal_state("d", "red", 0.0)


def test_a_rule_runs_alone_through_the_protocol() -> None:
    s = spec("dwell", {"zone": ZONE, "threshold_s": 1})
    rule = RULE_TYPES["dwell"](s)
    events = []
    for k in range(30):
        events += rule.update(frame(0.1 * k, track(1, 0.5, 0.5)), 0.1 * k)
    assert [e.kind for e in events] == ["dwell"] and events[0].t == pytest.approx(1.0)


def test_zones_asked_on_a_frame_are_tested_together_on_the_next_with_the_same_answers() -> None:
    square = Polygon.of(ZONE)
    left = Polygon.of([[0.0, 0.0], [0.45, 0.0], [0.45, 1.0], [0.0, 1.0]])
    concave = Polygon.of([[0.1, 0.1], [0.9, 0.1], [0.5, 0.5], [0.9, 0.9], [0.1, 0.9]])
    late = Polygon.of([[0.5, 0.5], [1.0, 0.5], [1.0, 1.0]])
    slots = SlotTable(ClassVocab())
    tracks = [track(k + 1, 0.05 + 0.09 * k, 0.1 + 0.08 * k) for k in range(11)]
    sets = []
    for t, zones in ((0.0, (square, left, concave)), (0.1, (square, left, concave, late)), (0.2, (late, square))):
        view = slots.view(frame(t, *tracks))
        sets.append(view.zone_set)
        for z in zones:
            expected = z.contains_xy(np.vstack((view.gx, view.gy)))
            assert view.inside(z).tolist() == expected.tolist()
        assert view.asked == list(zones)
    assert sets[0] is None  # nothing asked before the first frame
    assert sets[1] is not None and sets[1].polygons == (square, left)  # the concave zone is tested alone
    assert sets[2] is not None and sets[2].polygons == (square, left, late)  # rebuilt: "late" was asked
    assert slots.view(frame(0.3, *tracks)).zone_set.polygons == (late, square)  # type: ignore[union-attr]


def test_slot_arrays_reset_one_or_several_slots_and_after_growing() -> None:
    st = SlotArrays(x=(np.nan, np.float64), n=(0, np.int8), on=(False, bool))
    st.x[:] = 1.0
    st.n[:] = 3
    st.on[:] = True
    st.reset([5])
    st.reset([7, 9])
    st.ensure(200)  # grown: the new arrays are the ones reset
    st.x[150] = st.n[150] = 4
    st.reset([150, 9])
    cleared = {5, 7, 9, 150}
    for k in range(200):
        expected = k in cleared or k >= 64
        assert np.isnan(st.x[k]) == expected and (st.n[k] == 0) == expected and (not st.on[k]) == expected
