"""Each rule type on hand-made tracks, including flicker, id switches and unconfirmed tracks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from analytics_helpers import CAM, frame, spec, track
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.analytics import RuleEngine
from smartcity.core.events import RuleEvent, Severity
from smartcity.core.vision import FrameTracks, Track

LINE = {"line": [[0.5, 0.1], [0.5, 0.9]], "in_direction": [1, 0], "hysteresis": 0.01, "min_track_age": 3}
ZONE = [[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]]


def run(engine: RuleEngine, frames: list[FrameTracks],
        image_of: Callable[[float], np.ndarray] | None = None) -> list[RuleEvent]:
    out: list[RuleEvent] = []
    for f in frames:
        out.extend(engine.update(f, None if image_of is None else image_of(f.t)))
    return out


def totals(engine: RuleEngine) -> dict[tuple[str, str], int]:
    d: dict[tuple[str, str], int] = {}
    for b in engine.count_buckets():
        d[(b.object_class, b.direction)] = d.get((b.object_class, b.direction), 0) + b.n
    return d


def walk(tid: int, x0: float, x1: float, n: int, t0: float = 0.0, y: float = 0.5, cls: str = "car",
         dt: float = 0.1) -> list[Track]:
    return [track(tid, x0 + (x1 - x0) * k / (n - 1), y, cls, t=t0 + k * dt) for k in range(n)]


def frames_of(*tracks_lists: list[Track]) -> list[FrameTracks]:
    by_t: dict[float, list[Track]] = {}
    for tl in tracks_lists:
        for tr in tl:
            by_t.setdefault(round(tr.t, 6), []).append(tr)
    return [frame(t, *trs) for t, trs in sorted(by_t.items())]


def test_line_count_counts_by_class_and_direction() -> None:
    eng = RuleEngine([spec("line_count", LINE)], CAM)
    run(eng, frames_of(walk(1, 0.3, 0.7, 20), walk(2, 0.7, 0.3, 20, cls="person"),
                       walk(3, 0.3, 0.45, 20, cls="car"),  # stops before the line
                       walk(4, 0.3, 0.7, 20, y=0.95)))  # passes beyond the end of the line
    assert totals(eng) == {("car", "in"): 1, ("person", "out"): 1}


def test_line_count_walker_passing_just_beyond_the_end_of_the_line_is_not_counted() -> None:
    """A walker on the pavement passes the end of a line drawn to the kerb: the point where its
    ground point meets the line's extension lies 0.6 % of the line's length beyond the end. The
    former default margin (2 % of the length) counted it; a crossing just inside the end counts."""
    eng = RuleEngine([spec("line_count", LINE)], CAM)
    run(eng, frames_of(walk(1, 0.45, 0.55, 12, y=0.905, cls="person"),  # along 1.006: beside the line
                       walk(2, 0.45, 0.55, 12, y=0.895, cls="person", t0=5.0)))  # along 0.994: on it
    assert totals(eng) == {("person", "in"): 1}
    wide = RuleEngine([spec("line_count", {**LINE, "margin": 0.02})], CAM)
    run(wide, frames_of(walk(1, 0.45, 0.55, 12, y=0.905, cls="person")))
    assert totals(wide) == {("person", "in"): 1}


def test_line_count_flicker_across_the_line_counts_once() -> None:
    eng = RuleEngine([spec("line_count", LINE)], CAM)
    xs = [0.40, 0.45, 0.49, 0.505, 0.497, 0.508, 0.495, 0.52, 0.515, 0.53, 0.6]
    run(eng, [frame(k * 0.1, track(1, x, 0.5)) for k, x in enumerate(xs)])
    assert totals(eng) == {("car", "in"): 1}


def test_line_count_ignores_unconfirmed_flash_but_counts_young_real_track() -> None:
    eng = RuleEngine([spec("line_count", LINE)], CAM)
    # a false positive living two frames on both sides of the line: never confirmed
    run(eng, [frame(0.0, track(9, 0.47, 0.5, hits=1, confirmed=False)),
              frame(0.1, track(9, 0.53, 0.5, hits=2, confirmed=False))])
    assert totals(eng) == {}
    # a real track born next to the line crosses while young, then matures: counted once
    run(eng, [frame(1.0 + k * 0.1, track(5, 0.48 + 0.02 * k, 0.5, hits=k + 1, confirmed=k >= 2))
              for k in range(6)])
    assert totals(eng) == {("car", "in"): 1}


def test_line_count_id_switch_is_not_double_counted_nor_missed() -> None:
    eng = RuleEngine([spec("line_count", LINE)], CAM)
    # track 1 goes to just before the line and is lost; the tracker re-finds the car past the line as id 2
    a = walk(1, 0.40, 0.485, 10)
    b = [track(2, 0.53 + 0.01 * k, 0.5, t=1.3 + 0.1 * k, hits=k + 1, confirmed=k >= 2) for k in range(10)]
    run(eng, frames_of(a, b))
    assert totals(eng) == {("car", "in"): 1}
    # crossing with id 3, then the car is lost and re-found with id 4 jittering on the line
    c = walk(3, 0.40, 0.56, 12, t0=10.0)
    d = [track(4, 0.56 + (0.006 if k % 2 else -0.006), 0.5, t=11.5 + 0.1 * k, hits=k + 1) for k in range(10)]
    run(eng, frames_of(c, d))
    assert totals(eng) == {("car", "in"): 2}


def test_line_count_without_relink_would_miss_the_id_switch() -> None:
    from smartcity.analytics import RelinkConfig

    eng = RuleEngine([spec("line_count", LINE)], CAM, relink=RelinkConfig(enabled=False))
    a = walk(1, 0.40, 0.485, 10)
    b = [track(2, 0.53 + 0.01 * k, 0.5, t=1.3 + 0.1 * k, hits=k + 1, confirmed=k >= 2) for k in range(10)]
    run(eng, frames_of(a, b))
    assert totals(eng) == {}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-0.009, 0.009), min_size=5, max_size=40), st.booleans())
def test_line_count_jitter_inside_hysteresis_never_counts(jitter: list[float], start_left: bool) -> None:
    eng = RuleEngine([spec("line_count", LINE)], CAM)
    x0 = 0.45 if start_left else 0.55
    frames = [frame(0.0, track(1, x0, 0.5))] + [
        frame(0.1 * (k + 1), track(1, 0.5 + j, 0.5)) for k, j in enumerate(jitter)
    ] + [frame(10.0, track(1, x0, 0.5))]
    run(eng, frames)
    assert totals(eng) == {}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.02, 0.98), min_size=2, max_size=30))
def test_line_count_net_count_equals_net_side_change(xs: list[float]) -> None:
    """Whatever the path, in - out equals where it ended minus where it started: sides clear of the
    band, except the first side, which is where the track was first seen (it may be born on the line)."""
    eng = RuleEngine([spec("line_count", {**LINE, "min_track_age": 1})], CAM)
    run(eng, [frame(0.1 * k, track(1, x, 0.5)) for k, x in enumerate(xs)])
    c = totals(eng)
    sides: list[int] = []
    for x in xs:
        if not sides and x != 0.5:
            sides.append(1 if x > 0.5 else -1)
        elif abs(x - 0.5) > 0.01:
            sides.append(1 if x > 0.51 else -1)
    expected = 0 if len(sides) < 2 else (sides[-1] - sides[0]) // 2
    assert c.get(("car", "in"), 0) - c.get(("car", "out"), 0) == expected


def test_vehicle_waiting_on_the_line_counts_once() -> None:
    """A car queued with its bottom edge on the line: the edge jitters by ~3 % of the box height
    (more than the 0.01 band); the band scaled to the box keeps it at one crossing."""
    eng = RuleEngine([spec("line_count", {"line": [[0.1, 0.6], [0.9, 0.6]], "in_direction": [0, 1]})], CAM)
    rng = np.random.default_rng(3)
    path = [0.45 + 0.03 * k for k in range(5)]  # drives up to the line
    path += [0.6 + float(np.clip(rng.normal(0, 0.006), -0.015, 0.015)) for _ in range(60)]  # waits on it
    path += [0.62 + 0.03 * k for k in range(6)]  # drives off
    run(eng, [frame(0.2 * k, track(1, 0.5, y, size=0.2)) for k, y in enumerate(path)])
    assert totals(eng) == {("car", "in"): 1}


def _behind_the_bus(outcome: str, *, bus: bool = True, hidden_s: float | None = None) -> dict[tuple[str, str], int]:
    """A car drives towards the line (x = 0.5) and is lost as it passes behind a bus parked nearer the
    camera (lower in the picture), its prediction crossing the line; then `outcome`: it never comes
    out under its id (re-found as a new track far on), comes out on its own side, or across."""
    params = {**LINE, "emit_events": True, **({} if hidden_s is None else {"hidden_s": hidden_s})}
    eng = RuleEngine([spec("line_count", params)], CAM)
    parked = [track(9, 0.5, 0.62, "bus", size=0.25, t=0.1 * k) for k in range(120)] if bus else []
    seen = [track(1, 0.40 + 0.02 * k, 0.5, t=0.1 * k, hits=k + 1) for k in range(5)]  # up to x = 0.48
    lost = [track(1, 0.50 + 0.02 * k, 0.5, t=0.5 + 0.1 * k, hits=5, tsu=k + 1) for k in range(3)]  # predicted
    after: list[Track] = []
    if outcome == "new track":  # far on, where no relink reaches (gap 1 s, 0.3 past the prediction)
        after = [track(2, 0.95, 0.5, t=1.3 + 0.1 * k, hits=k + 1) for k in range(3)]
    elif outcome == "own side":  # it had stopped behind the bus
        after = [track(1, 0.47, 0.5, t=0.8 + 0.1 * k, hits=6 + k) for k in range(30)]
    elif outcome == "across":
        after = [track(1, 0.58 + 0.02 * k, 0.5, t=0.8 + 0.1 * k, hits=6 + k) for k in range(10)]
    run(eng, frames_of(parked, seen, lost, after, [track(5, 0.1, 0.9, "person", t=0.1 * k) for k in range(120)]))
    return totals(eng)


def test_line_count_counts_a_car_that_crosses_behind_a_nearer_bus_once() -> None:
    """Lost behind the bus as its prediction crosses, the car is counted when its slot is released
    (it came out as another track further on), once; as a crossing seen if it comes out across
    under its id; not at all if it comes out on its own side."""
    assert _behind_the_bus("new track") == {("car", "in"): 1}
    assert _behind_the_bus("across") == {("car", "in"): 1}
    assert _behind_the_bus("own side") == {}


def test_line_count_counts_no_hidden_crossing_without_a_nearer_object_or_when_off() -> None:
    """Nothing in front of it (a detector miss, not an occlusion), or `hidden_s` 0: a lost car's
    prediction is not believed."""
    assert _behind_the_bus("new track", bus=False) == {}
    assert _behind_the_bus("new track", hidden_s=0.0) == {}


def test_line_count_hidden_crossing_event_says_so_and_keeps_its_time() -> None:
    eng = RuleEngine([spec("line_count", {**LINE, "emit_events": True})], CAM)
    parked = [track(9, 0.5, 0.62, "bus", size=0.25, t=0.1 * k) for k in range(120)]
    seen = [track(1, 0.40 + 0.02 * k, 0.5, t=0.1 * k, hits=k + 1) for k in range(5)]
    lost = [track(1, 0.50 + 0.02 * k, 0.5, t=0.5 + 0.1 * k, hits=5, tsu=k + 1) for k in range(3)]
    events = [e for e in run(eng, frames_of(parked, seen, lost)) if e.kind == "crossing"]
    assert [(e.track_id, e.object_class, e.payload["direction"], e.payload["hidden"]) for e in events] == [
        (1, "car", "in", True)]
    # crossed between its last sighting (x 0.48 at 0.4 s) and its prediction past the band (0.52 at 0.6 s)
    assert 0.4 < events[0].t <= 0.6


def test_wrong_way() -> None:
    eng = RuleEngine([spec("wrong_way", {"zone": ZONE, "direction": [1, 0], "min_distance": 0.1})], CAM)
    ev = run(eng, frames_of(walk(1, 0.3, 0.7, 30),  # right way
                            walk(2, 0.7, 0.3, 30),  # wrong way
                            walk(3, 0.5, 0.5, 30),  # parked
                            [track(4, 0.6, 0.3 + 0.01 * k, t=0.1 * k) for k in range(30)]))  # across
    assert [(e.kind, e.track_id, e.severity) for e in ev] == [("wrong_way", 2, Severity.HIGH)]
    assert ev[0].payload["distance"] >= 0.1
    assert 0.58 < ev[0].payload["x"] < 0.62  # fired as soon as it had gone 0.1 backwards


def test_wrong_way_needs_consistent_motion_not_jitter() -> None:
    eng = RuleEngine([spec("wrong_way", {"zone": ZONE, "direction": [1, 0], "min_distance": 0.05})], CAM)
    rng = np.random.default_rng(1)
    ev = run(eng, [frame(0.1 * k, track(1, 0.5 + rng.normal(0, 0.008), 0.5)) for k in range(300)])
    assert ev == []


def _signal_image(colour: str) -> np.ndarray:
    img = np.full((40, 40, 3), 30, dtype=np.uint8)
    rgb = {"red": (230, 30, 20), "amber": (240, 170, 10), "green": (20, 220, 60)}[colour]
    y = {"red": 4, "amber": 10, "green": 16}[colour]
    img[y:y + 5, 2:7] = rgb
    return img


def test_red_light_from_image_and_external() -> None:
    params = {"stop_line": [[0.5, 0.1], [0.5, 0.9]], "direction": [1, 0],
              "signal": {"source": "image", "roi": [0.0, 0.0, 0.25, 0.6]}}
    eng = RuleEngine([spec("red_light", params)], CAM)

    def colour(t: float) -> str:
        return "green" if t < 5 else ("amber" if t < 8 else "red")

    ev = run(eng, frames_of(walk(1, 0.3, 0.7, 20, t0=0.0),  # crosses on green
                            walk(2, 0.3, 0.7, 20, t0=5.5),  # crosses on amber
                            walk(3, 0.3, 0.7, 20, t0=9.0),  # crosses on red
                            walk(4, 0.7, 0.3, 20, t0=9.0),  # crosses backwards on red
                            walk(5, 0.3, 0.47, 20, t0=9.0)),  # stops at the line
             image_of=lambda t: _signal_image(colour(t)))
    assert [(e.kind, e.track_id, e.payload["signal"]) for e in ev] == [("red_light", 3, "red")]

    ext = {**params, "signal": {"source": "external", "max_age_s": 60}}
    eng = RuleEngine([spec("red_light", ext, id="rl")], CAM)
    eng.set_signal_state("rl", "red", 0.0)
    ev = run(eng, frames_of(walk(1, 0.3, 0.7, 20)))
    assert [e.track_id for e in ev] == [1]
    eng.set_signal_state("rl", "green", 3.0)
    assert run(eng, frames_of(walk(2, 0.3, 0.7, 20, t0=3.0))) == []
    eng.set_signal_state("rl", "red", 6.0)
    assert run(eng, frames_of(walk(3, 0.3, 0.7, 20, t0=100.0))) == []  # the pushed state is too old


def test_dwell_onset_and_end() -> None:
    eng = RuleEngine([spec("dwell", {"zone": ZONE, "threshold_s": 30})], CAM)
    frames = [frame(0.1 * k, track(1, 0.1 + 0.01 * k, 0.5)) for k in range(15)]  # enters at t=1.0
    frames += [frame(1.5 + 0.5 * k, track(1, 0.25, 0.5)) for k in range(100)]  # parked until 51
    frames += [frame(51.0 + 0.1 * k, track(1, 0.25 - 0.02 * k, 0.5)) for k in range(10)]
    frames += [frame(60.0, track(1, 0.05, 0.5))]
    frames += [frame(5.0 + 0.5 * k, track(2, 0.6, 0.6)) for k in range(20)]  # 10 s only
    frames.sort(key=lambda f: f.t)
    ev = run(eng, frames)
    kinds = [(e.kind, e.track_id) for e in ev]
    assert kinds == [("dwell", 1), ("dwell_ended", 1)]
    assert abs(ev[0].t - 31.0) <= 0.5 and ev[0].payload["entered_at"] == 1.0
    assert ev[1].payload["dwell_s"] == 50.2  # last seen inside at 51.2


def test_dwell_counts_time_stopped_not_time_creeping_through() -> None:
    """A car crawling through the zone in a queue for 40 s (a car length every 5 s) is not parked;
    one that stops for 35 s is, however its box jitters (3 % of its width)."""
    eng = RuleEngine([spec("dwell", {"zone": ZONE, "threshold_s": 30})], CAM)
    rng = np.random.default_rng(4)
    creep = [frame(0.5 * k, track(1, 0.21 + 0.005 * k, 0.4, size=0.05)) for k in range(80)]  # 0.05 per 5 s
    park = [frame(0.5 * k, track(2, 0.6 + float(rng.normal(0, 0.0015)), 0.7, size=0.05)) for k in range(70)]
    ev = run(eng, sorted(creep + park, key=lambda f: f.t))
    assert [(e.kind, e.track_id) for e in ev if e.kind == "dwell"] == [("dwell", 2)]
    assert ev[0].payload["stopped_at"] == 0.0
    # the old presence-only behaviour stays available
    eng = RuleEngine([spec("dwell", {"zone": ZONE, "threshold_s": 30, "still_radius": None})], CAM)
    ev = run(eng, sorted(creep + park, key=lambda f: f.t))
    assert sorted(e.track_id for e in ev if e.kind == "dwell") == [1, 2]


def test_abandoned_object() -> None:
    eng = RuleEngine([spec("abandoned_object", {"unattended_s": 20, "person_radius": 0.08})], CAM)
    frames = []
    for k in range(600):  # 60 s at 10 fps
        t = 0.1 * k
        trs = [track(1, 0.5, 0.5, "suitcase", size=0.02, t=t)]
        px = 0.5 if t < 10 else min(0.95, 0.5 + 0.02 * (t - 10))  # the owner walks away at t=10
        trs.append(track(2, px, 0.52, "person", t=t))
        trs.append(track(3, 0.2, 0.5, "backpack", size=0.02, t=t))  # attended all along
        trs.append(track(4, 0.2, 0.52, "person", t=t))
        trs.append(track(5, 0.1 + 0.01 * k % 0.8, 0.8, "handbag", size=0.02, t=t))  # carried, moving
        frames.append(frame(t, *trs))
    ev = run(eng, frames)
    assert [(e.kind, e.track_id) for e in ev] == [("abandoned", 1)]
    # the owner is beyond 0.08 from t ~ 14, so the alert comes 20 s later
    assert 33.5 <= ev[0].t <= 35.0


def test_dumping() -> None:
    zone = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
    eng = RuleEngine([spec("dumping", {"zone": zone, "stop_s": 5, "object_static_s": 3})], CAM)
    frames = []
    for k in range(1200):
        t = 0.1 * k
        trs = [track(20, 0.3, 0.3, "box", size=0.02, t=t)]  # there all along
        if t < 10:
            trs.append(track(1, 0.05 + 0.045 * t, 0.5, "truck", t=t))
        elif t < 40:
            trs.append(track(1, 0.5, 0.5, "truck", t=t))
        elif t < 50:
            trs.append(track(1, 0.5 + 0.05 * (t - 40), 0.5, "truck", t=t))
        if t >= 41:
            trs.append(track(7, 0.52, 0.53, "bag", size=0.02, t=t))  # left behind
        # a car that stops and leaves nothing
        if 60 <= t < 70:
            trs.append(track(3, 0.7, 0.7, "car", t=t))
        frames.append(frame(t, *trs))
    ev = run(eng, frames)
    assert [(e.kind, e.track_id, e.payload["vehicle_class"]) for e in ev] == [("dumping", 7, "truck")]
    assert ev[0].payload["stopped_at"] <= 15.0


def test_zone_passage_and_occupancy() -> None:
    eng = RuleEngine([
        spec("zone_passage", {"zone": ZONE}, id="zp"),
        spec("occupancy", {"zone": ZONE, "thresholds": [3], "hysteresis": 1, "hold_s": 1.0,
                           "sample_interval_s": 10}, id="occ"),
    ], CAM)
    frames = []
    for k in range(200):
        t = 0.1 * k
        n_people = 4 if 5 <= t < 12 else 1
        trs = [track(100 + j, 0.3 + 0.05 * j, 0.5, "person", t=t) for j in range(n_people)]
        trs.append(track(1, 0.05 + 0.01 * k, 0.3, "car", t=t))  # drives through the zone
        frames.append(frame(t, *trs))
    ev = run(eng, frames)
    passages = [e for e in ev if e.kind == "passage"]
    assert [(e.track_id, e.object_class) for e in passages][:1] == [(1, "car")]
    car = passages[0]
    assert abs(car.payload["entered_at"] - 1.6) < 0.11 and abs(car.payload["left_at"] - 7.5) < 0.11
    occ = [(e.kind, e.payload["count"]) for e in ev if e.kind.startswith("occupancy_") and e.kind != "occupancy_sample"]
    assert occ == [("occupancy_above", 4), ("occupancy_below", 1)]
    samples = [e for e in ev if e.kind == "occupancy_sample"]
    assert samples and samples[0].payload["max"] == 4 and samples[0].payload["min"] == 1


def test_dumping_ignores_a_box_gone_before_the_vehicle_came_and_a_late_one() -> None:
    zone = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
    eng = RuleEngine([spec("dumping", {"zone": zone, "stop_s": 5, "object_static_s": 3, "appear_s": 20})], CAM)
    frames = []
    for k in range(2000):
        t = 0.1 * k
        trs = []
        if t < 30:  # a box lay here, and was collected before the truck came
            trs.append(track(20, 0.52, 0.53, "box", size=0.02, t=t))
        if 40 <= t < 70:
            trs.append(track(1, 0.5, 0.5, "truck", t=t))
        elif 70 <= t < 80:
            trs.append(track(1, 0.5 + 0.05 * (t - 70), 0.5, "truck", t=t))
        if t >= 71:  # left by the truck, close to where the old one was
            trs.append(track(7, 0.53, 0.53, "box", size=0.02, t=t))
        if t >= 150:  # turns up 80 s after the truck left: not the truck's
            trs.append(track(8, 0.45, 0.52, "box", size=0.02, t=t))
        frames.append(frame(t, *trs))
    ev = run(eng, frames)
    assert [(e.kind, e.track_id) for e in ev] == [("dumping", 7)]
