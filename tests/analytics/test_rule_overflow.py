"""The `overflow` rule on synthetic tracks: objects lying around a bin, not passers-by nor people."""

from __future__ import annotations

from collections.abc import Callable

from analytics_helpers import CAM, frame, spec, track

from smartcity.analytics import RuleEngine
from smartcity.core.events import RuleEvent, Severity
from smartcity.core.vision import Track

BIN_ZONE = [[0.4, 0.4], [0.7, 0.4], [0.7, 0.7], [0.4, 0.7]]
DT = 0.5


def overflow(**params: object) -> RuleEngine:
    return RuleEngine([spec("overflow", {"zone": BIN_ZONE, "bin_id": "B-0042", "stay_s": 30, **params})], CAM)


def play(engine: RuleEngine, seconds: float, scene: Callable[[float], list[Track]]) -> list[RuleEvent]:
    out: list[RuleEvent] = []
    for k in range(int(seconds / DT)):
        t = k * DT
        out.extend(engine.update(frame(t, *scene(t))))
    return out


def test_a_bag_lying_by_the_bin_raises_it_after_the_stay_and_not_before() -> None:
    def scene(t: float) -> list[Track]:
        return [track(1, 0.55, 0.6, "bin_bag", size=0.03, t=t)] if t >= 10 else []

    eng = overflow()
    assert play(eng, 40, scene) == []  # up to 39.5 s: 29.5 s lying, not yet
    eng = overflow()
    ev = play(eng, 120, scene)
    assert [(e.rule_type, e.kind, e.track_id, e.object_class) for e in ev] == [("overflow", "overflow", 1, "bin_bag")]
    assert ev[0].t == 40.0  # set down at 10 s, lying for stay_s = 30 s
    assert ev[0].severity is Severity.MEDIUM
    assert ev[0].payload == {"x": 0.55, "y": 0.6, "bin_id": "B-0042", "objects": 1, "lying_s": 30.0}


def test_passers_by_people_and_objects_elsewhere_do_not_raise_it() -> None:
    def scene(t: float) -> list[Track]:
        trs = [
            track(1, 0.45, 0.5, "person", t=t),  # a person standing by the bin all along
            track(2, 0.9, 0.9, "suitcase", size=0.02, t=t),  # lying, but away from the bin
            track(3, 0.05 + 0.01 * t, 0.55, "suitcase", size=0.02, t=t),  # rolled through the zone
        ]
        # a bag set down by the bin for 20 s, then picked up and carried off
        x = 0.5 if t < 60 else 0.5 + 0.02 * (t - 60)
        if 40 <= t < 80:
            trs.append(track(4, x, 0.6, "backpack", size=0.02, t=t))
        return trs

    assert play(overflow(), 150, scene) == []


def test_min_objects_counts_the_pile_and_a_cleared_pile_alerts_again() -> None:
    def scene(t: float) -> list[Track]:
        trs = []
        if t < 200:  # a first bag, then a second: two lying from 50 s; a third from 90 s
            trs.append(track(1, 0.45, 0.6, "bag", size=0.02, t=t))
            if t >= 20:
                trs.append(track(2, 0.6, 0.6, "box", size=0.03, t=t))
            if t >= 60:
                trs.append(track(3, 0.5, 0.5, "bag", size=0.02, t=t))
        if t >= 220:  # collected at 200 s; new rubbish at 220 s
            trs.append(track(4, 0.55, 0.55, "bag", size=0.02, t=t))
            trs.append(track(5, 0.65, 0.65, "furniture", size=0.05, t=t))
        return trs

    ev = play(overflow(min_objects=2), 300, scene)
    assert [(e.t, e.track_id, e.payload["objects"]) for e in ev] == [(50.0, 1, 2), (250.0, 4, 2)]


def test_an_object_unseen_for_a_moment_keeps_counting() -> None:
    def scene(t: float) -> list[Track]:
        hidden = 20 <= t < 23  # someone stands in front of it
        return [] if hidden else [track(1, 0.55, 0.6, "suitcase", size=0.02, t=t)]

    ev = play(overflow(), 60, scene)
    assert [e.t for e in ev] == [30.0]
