"""Batched per-frame evaluation (FrameView.batched, CrossingSides, FrameView.pick) gives exactly what
each rule part computes alone (property tests against the one-line-at-a-time formulas)."""

from __future__ import annotations

from typing import Any

import numpy as np
from analytics_helpers import frame, spec, track
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.analytics import RuleEngine
from smartcity.analytics.base import ClassVocab, FrameView, SlotTable
from smartcity.analytics.geometry import FloatArray, GeometryError, Line
from smartcity.analytics.rules._crossing import Crossings
from smartcity.core.events import RuleEvent

unit = st.floats(0.0, 1.0, allow_nan=False)
pt = st.tuples(unit, unit)


@st.composite
def crossings(draw: st.DrawFn) -> Crossings:
    a, b = draw(pt), draw(pt)
    try:
        line = Line.of([a, b], draw(st.sampled_from(["left", "right"])))
    except GeometryError:
        line = Line.of([(0.1, 0.2), (0.8, 0.7)], "left")
    # a band of its own or one spanning a share of the box (0: plain, as red_light's)
    share = draw(st.sampled_from([0.0, 0.0, 0.1, 0.35]))
    return Crossings(line, draw(st.floats(0.0, 0.2)), 0.0, 2, share)


def view_of(points: list[tuple[float, float, float]]) -> FrameView:
    tracks = [track(i + 1, x, y, size=size) for i, (x, y, size) in enumerate(points)]
    return SlotTable(ClassVocab()).view(frame(1.0, *tracks))


def alone(c: Crossings, view: FrameView) -> tuple[FloatArray, Any]:
    """The sides as a Crossings computed them line by line before batching."""
    d = c.line.distance(view.gx, view.gy)
    band: Any = c.h
    if c.box_share > 0:
        band = np.maximum(c.h, c.box_share * (c.nx * view.bw + c.ny * view.bh))
    return d, (d > band).view(np.int8) - (d < -band).view(np.int8)


@settings(max_examples=150, deadline=None)
@given(st.lists(crossings(), min_size=1, max_size=8),
       st.lists(st.tuples(unit, unit, st.floats(0.001, 0.3)), min_size=0, max_size=40))
def test_crossing_sides_equal_each_line_alone_bit_for_bit(
    members: list[Crossings], points: list[tuple[float, float, float]]
) -> None:
    view = view_of(points)
    batch = Crossings.batch(members)
    assert batch.members == tuple(members)
    rows = batch.evaluate(view)
    assert len(rows) == len(members)
    for c, (d, new) in zip(members, rows, strict=True):
        ref_d, ref_new = alone(c, view)
        assert d.shape == new.shape == (len(points),)
        np.testing.assert_array_equal(d, ref_d)  # exact: same operations in the same order
        np.testing.assert_array_equal(new, ref_new)
        single_d, single_new = Crossings.batch([c]).evaluate(view)[0]
        np.testing.assert_array_equal(single_d, d)
        np.testing.assert_array_equal(single_new, new)


def test_batched_results_come_from_the_last_frames_group_and_unknown_parts_alone() -> None:
    lines = [Crossings(Line.of([(0.1 * k + 0.1, 0.0), (0.1 * k + 0.2, 1.0)], "left"), 0.01, 0.0, 2, 0.1)
             for k in range(3)]
    table = SlotTable(ClassVocab())
    first = table.view(frame(0.0, track(1, 0.2, 0.5), track(2, 0.4, 0.5)))
    assert first.batches == {}  # nothing asked yet: each part alone
    for c in lines[:2]:
        first.batched(c)
    assert list(first.batch_asked.values()) == lines[:2]
    second = table.view(frame(0.1, track(1, 0.25, 0.5), track(2, 0.45, 0.5)))
    batch, rows = second.batches[Crossings]
    assert batch.members == tuple(lines[:2]) and rows == {id(lines[0]): 0, id(lines[1]): 1}
    for c in lines:  # the third was not asked last frame: computed alone, and asked for next time
        d, new = second.batched(c)
        ref_d, ref_new = alone(c, second)
        np.testing.assert_array_equal(d, ref_d)
        np.testing.assert_array_equal(new, ref_new)
        assert second.batched(c)[0] is d  # once per frame
    third = table.view(frame(0.2, track(1, 0.3, 0.5)))
    assert third.batches[Crossings][0].members == tuple(lines)


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


def test_engine_with_batched_rules_equals_each_rule_on_its_own() -> None:
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
