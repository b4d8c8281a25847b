"""What the rules of a camera share within a frame (selection masks, the zones tested together) gives
exactly what each rule computes alone."""

from __future__ import annotations

from typing import Any

import numpy as np
from analytics_helpers import CAM, H, W, frame, spec, track

from smartcity.analytics import RuleEngine
from smartcity.analytics.base import ClassVocab, FrameView, SlotTable
from smartcity.core.events import RuleEvent
from smartcity.core.vision import Detection, FrameTracks
from smartcity.tracking import ByteTracker


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


def _tracked_frames(n_frames: int) -> list[tuple[FrameTracks, FrameTracks]]:
    """A tracker's frames, with and without its columns: objects crossing, some missed for a few frames,
    one lost for good and replaced by a new one, classes flickering."""
    rng = np.random.default_rng(3)
    tracker = ByteTracker()
    start = rng.uniform(50, 900, (14, 2))
    vel = rng.normal(0, 6, (14, 2))
    out = []
    for f in range(n_frames):
        dets = []
        for k in range(14):
            if (k % 5 == 1 and 8 <= f % 30 < 11) or (k == 3 and f > 25):
                continue  # missed a while; object 3 leaves for good
            x, y = start[k] + vel[k] * f + rng.normal(0, 1.5, 2)
            cls = "truck" if k % 4 == 0 and f % 7 == 0 else ("car" if k % 3 else "person")
            dets.append(Detection(box=(x, y, x + 40, y + 60), cls=cls, score=float(rng.uniform(0.3, 0.95))))
        t = f / 5.0
        tracks = tuple(tracker.update(dets, t, (W, H)))
        out.append((FrameTracks(CAM, t, W, H, tracks), FrameTracks(CAM, t, W, H, tracks, columns=tracker.columns)))
    return out


def _view_fields(view: FrameView) -> list[Any]:
    return [view.tracks, view.slots.tolist(), view.codes.tolist(), view.conf.tolist(), view.gx.tolist(),
            view.gy.tolist(), view.bw.tolist(), view.bh.tolist(), view.fresh.tolist(), view.hits.tolist(),
            view.confirmed.tolist(), view.new_slots, view.freed_slots, view.capacity]


def test_view_from_the_trackers_columns_equals_the_view_read_off_its_tracks() -> None:
    plain, columnar = SlotTable(ClassVocab()), SlotTable(ClassVocab())
    frames = _tracked_frames(60)
    assert sum(ft.columns is not None for _, ft in frames) > 50
    for without, with_columns in frames:
        assert _view_fields(columnar.view(with_columns)) == _view_fields(plain.view(without))


def test_columns_of_other_track_objects_are_ignored() -> None:
    _, given = _tracked_frames(3)[-1]
    assert given.columns is not None and len(given.tracks) > 1
    # equal in number, but other objects (one moved): the view reads them, not the columns
    other = (*given.tracks[:-1], given.tracks[-1]._replace(box=(10.0, 20.0, 50.0, 90.0)))
    mixed = FrameTracks(CAM, given.t, W, H, other, columns=given.columns)
    plain = FrameTracks(CAM, given.t, W, H, other)
    assert _view_fields(SlotTable(ClassVocab()).view(mixed)) == _view_fields(SlotTable(ClassVocab()).view(plain))
    assert given.columns.describes(given.tracks)
    assert not given.columns.describes(other)
    assert not given.columns.describes(given.tracks[:-1])
