"""What the rules of a camera share within a frame (FrameView.pick, the zones tested together) gives
exactly what each rule computes alone."""

from __future__ import annotations

from typing import Any

import numpy as np
from analytics_helpers import frame, spec, track

from smartcity.analytics import RuleEngine
from smartcity.analytics.base import ClassVocab, FrameView, SlotTable
from smartcity.core.events import RuleEvent


def view_of(points: list[tuple[float, float, float]]) -> FrameView:
    tracks = [track(i + 1, x, y, size=size) for i, (x, y, size) in enumerate(points)]
    return SlotTable(ClassVocab()).view(frame(1.0, *tracks))


def test_pick_is_shared_by_the_same_mask_only() -> None:
    view = view_of([(0.1, 0.2, 0.05), (0.5, 0.6, 0.05), (0.9, 0.3, 0.05)])
    mask = np.array([True, False, True])
    idx, slots, gx, gy = view.pick(mask)
    np.testing.assert_array_equal(idx, [0, 2])
    np.testing.assert_array_equal(slots, view.slots[[0, 2]])
    np.testing.assert_array_equal(gx, view.gx[[0, 2]])
    np.testing.assert_array_equal(gy, view.gy[[0, 2]])
    assert view.pick(mask)[0] is idx
    other = np.array([False, True, False])  # an equal-length mask of its own
    np.testing.assert_array_equal(view.pick(other)[0], [1])


def _scene_rules() -> list[Any]:
    zone = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
    rules = [spec("line_count", {"line": [[0.2 + 0.15 * k, 0.05], [0.25 + 0.15 * k, 0.95]], "in_direction": "left"},
                  id=f"line{k}") for k in range(4)]
    rules += [spec("red_light", {"stop_line": [[0.3 + 0.3 * k, 0.1], [0.3 + 0.3 * k, 0.9]], "direction": [1, 0],
                                 "signal": {"source": "external"}}, id=f"red{k}") for k in range(2)]
    rules += [spec("wrong_way", {"zone": zone, "direction": [-1, 0], "min_distance": 0.05}, id="ww"),
              spec("zone_passage", {"zone": zone}, id="zp"),
              spec("dwell", {"zone": [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]], "threshold_s": 1.0}, id="dw")]
    return rules


def _run(engine: RuleEngine, frames: list[Any]) -> list[RuleEvent]:
    for rid, rule in engine._rules.items():
        if rule.accepts_signals:
            engine.set_signal_state(rid, "red", 0.0)
    events: list[RuleEvent] = []
    for f in frames:
        events.extend(engine.update(f))
    return events


def test_engine_with_shared_frame_state_equals_each_rule_on_its_own() -> None:
    rng = np.random.default_rng(3)
    pos = rng.uniform(0.05, 0.95, (30, 2))
    vel = rng.normal(0.0, 0.02, (30, 2))
    vel[::4] = 0.0  # some stand still (dwell)
    frames = []
    for k in range(120):
        pos = np.clip(pos + vel + rng.normal(0.0, 0.003, pos.shape), 0.01, 0.99)
        shown = [track(i + 1, float(x), float(y), tsu=int(rng.random() < 0.1)) for i, (x, y) in enumerate(pos)]
        frames.append(frame(0.2 * k, *shown))
    rules = _scene_rules()
    together = RuleEngine(rules, "cam1")
    events = _run(together, frames)
    singles = [RuleEngine([r], "cam1") for r in rules]
    one_by_one = [e for engine in singles for e in _run(engine, frames)]
    assert {"red_light", "wrong_way", "passage", "dwell"} <= {e.kind for e in events}  # the scene makes them fire
    assert sorted((e.event_id, str(e.payload)) for e in events) == sorted((e.event_id, str(e.payload)) for e in one_by_one)
    counts = sorted((b.rule_id, b.direction, b.n) for b in together.count_buckets())
    assert len({rule_id for rule_id, _, _ in counts}) == 4  # every counting line counted
    assert counts == sorted((b.rule_id, b.direction, b.n) for engine in singles for b in engine.count_buckets())
