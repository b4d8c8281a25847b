"""The fall and person_down rules on synthetic people: posture from keypoints and box, the speed of
the fall, staying down, id switches between the upright and the lying person."""

from __future__ import annotations

import math

import pytest
from analytics_helpers import CAM, H, W, spec

from smartcity.analytics import RuleEngine, required_model_roles
from smartcity.analytics.rules._posture import Posture, PostureParams, read_posture
from smartcity.core.events import RuleEvent, Severity
from smartcity.core.vision import FrameTracks, Keypoint, Track

FPS = 5.0


def person(
    tid: int, t: float, posture: str, *, x: float = 500.0, score: float = 0.9, kp: bool = True
) -> Track:
    """A person at horizontal position x (pixels of a 1000x1000 frame): standing (box 100x300,
    torso vertical), sitting (box 150x170, torso vertical, hips low), sitting_legs_unseen (on the
    floor, box 120x170, the legs' keypoints too weak to count), bending (box 200x200, torso
    horizontal, hips high), legs_up (on the back, feet raised above the hips, box 300x170) or
    lying (box 320x90 on the floor, torso horizontal)."""
    ankle: tuple[float, float] | None
    if posture == "standing":
        box, shoulder, hip, ankle = (x - 50, 500, x + 50, 800), (x, 560), (x, 660), (x, 790)
    elif posture == "sitting":
        box, shoulder, hip, ankle = (x - 75, 630, x + 75, 800), (x, 650), (x, 760), (x + 60, 790)
    elif posture == "sitting_legs_unseen":
        box, shoulder, hip, ankle = (x - 60, 630, x + 60, 800), (x, 660), (x, 780), None
    elif posture == "legs_up":
        box, shoulder, hip, ankle = (x - 150, 630, x + 150, 800), (x - 130, 785), (x, 790), (x + 70, 640)
    elif posture == "bending":
        box, shoulder, hip, ankle = (x - 100, 600, x + 100, 800), (x - 80, 640), (x + 20, 650), (x + 30, 790)
    elif posture == "lying":
        box, shoulder, hip, ankle = (
            (x - 160, 710, x + 160, 800),
            (x - 100, 750),
            (x + 10, 760),
            (x + 150, 770),
        )
    else:
        raise ValueError(posture)
    points: list[Keypoint] = [Keypoint(0.0, 0.0, 0.0)] * 17
    seen = [(5, shoulder), (6, shoulder), (11, hip), (12, hip)]
    seen += [(15, ankle), (16, ankle)] if ankle is not None else []
    for i, (px, py) in seen:
        points[i] = Keypoint(float(px), float(py), 0.8)
    x1, y1, x2, y2 = (float(v) for v in box)
    return Track(
        track_id=tid,
        cls="person",
        box=(x1, y1, x2, y2),
        score=score,
        t=t,
        hits=10,
        keypoints=tuple(points) if kp else (),
    )


def run(
    script: list[tuple[float, float, list[tuple[int, str]]]],
    *rules: object,
    x: dict[int, float] | None = None,
) -> list[RuleEvent]:
    """Frames at FPS from `start` to `end` seconds with the people given (id, posture), each at
    its x (default 500)."""
    engine = RuleEngine(list(rules), CAM)  # type: ignore[arg-type]
    out: list[RuleEvent] = []
    for start, end, people in script:
        for k in range(round((end - start) * FPS)):
            t = start + k / FPS
            tracks = tuple(person(tid, t, p, x=(x or {}).get(tid, 500.0)) for tid, p in people)
            out.extend(engine.update(FrameTracks(CAM, t, W, H, tracks)))
    return [e for e in out if e.kind in ("fall", "person_down")]


FALL = spec("fall", {"down_s": 3.0})
DOWN = spec("person_down", {"down_s": 4.0})


@pytest.mark.parametrize(
    ("posture", "expected"),
    [
        ("standing", Posture.UPRIGHT),
        ("sitting", Posture.OTHER),
        ("sitting_legs_unseen", Posture.OTHER),
        ("bending", Posture.OTHER),
        ("legs_up", Posture.LYING),
        ("lying", Posture.LYING),
    ],
)
def test_posture_reads_torso_angle_and_box_shape(posture: str, expected: Posture) -> None:
    assert read_posture(person(1, 0.0, posture), PostureParams()).posture is expected


def test_without_keypoints_only_a_very_wide_box_reads_as_lying() -> None:
    p = PostureParams()
    assert read_posture(person(1, 0.0, "lying", kp=False), p).posture is Posture.LYING  # aspect 3.6
    assert read_posture(person(1, 0.0, "bending", kp=False), p).posture is Posture.OTHER
    r = read_posture(person(1, 0.0, "lying"), p)
    assert r.torso_angle is not None and r.torso_angle > 80 and math.isclose(r.aspect, 320 / 90)


def test_a_quick_fall_that_stays_down_alerts_once_after_down_s() -> None:
    events = run([(0.0, 2.0, [(1, "standing")]), (2.0, 8.0, [(1, "lying")])], FALL, DOWN)
    falls = [e for e in events if e.kind == "fall"]
    assert len(falls) == 1
    fall = falls[0]
    assert fall.severity is Severity.CRITICAL and fall.track_id == 1
    assert fall.t == pytest.approx(5.0)  # lying from 2.0, down_s 3
    assert fall.payload["fall_s"] == pytest.approx(0.2)
    assert fall.payload["hip_drop"] == pytest.approx(100 / 300, abs=1e-3)
    downs = [e for e in events if e.kind == "person_down"]
    assert [e.t for e in downs] == [pytest.approx(6.0)]


def test_lying_down_slowly_through_sitting_is_a_person_down_not_a_fall() -> None:
    events = run(
        [(0.0, 2.0, [(1, "standing")]), (2.0, 5.0, [(1, "sitting")]), (5.0, 11.0, [(1, "lying")])], FALL, DOWN
    )
    assert [e.kind for e in events] == ["person_down"]


def test_the_fall_is_found_when_the_lying_person_has_another_track_id() -> None:
    events = run([(0.0, 2.0, [(1, "standing")]), (2.0, 8.0, [(7, "lying")])], FALL)
    assert [(e.kind, e.track_id) for e in events] == [("fall", 7)]


def test_no_fall_where_the_lying_person_is_elsewhere_than_the_standing_one() -> None:
    script = [(0.0, 2.0, [(1, "standing")]), (2.0, 8.0, [(1, "standing"), (7, "lying")])]
    assert run(script, FALL, x={1: 200.0, 7: 800.0}) == []
    # the same scene with the lying person where the standing one was: a fall
    assert [e.track_id for e in run(script, FALL, x={1: 200.0, 7: 300.0})] == [7]


def test_getting_up_before_down_s_is_no_alert_and_bending_is_never_lying() -> None:
    events = run(
        [
            (0.0, 2.0, [(1, "standing")]),
            (2.0, 4.0, [(1, "lying")]),
            (4.0, 9.0, [(1, "standing")]),
            (9.0, 15.0, [(1, "bending")]),
        ],
        FALL,
        DOWN,
    )
    assert events == []


def test_fall_and_person_down_need_the_pose_model() -> None:
    assert required_model_roles([FALL]) == {"pose"}
    assert required_model_roles([DOWN]) == {"pose"}


def test_a_lying_person_found_again_under_a_new_id_continues_the_episode() -> None:
    # fell at 2.0 as track 1, lost at 3.0, found lying at the same place as track 9 at 3.4
    events = run(
        [(0.0, 2.0, [(1, "standing")]), (2.0, 3.0, [(1, "lying")]), (3.4, 8.0, [(9, "lying")])], FALL
    )
    assert [(e.kind, e.track_id, round(e.t, 1)) for e in events] == [("fall", 9, 5.0)]
    # someone lying down slowly next to the fallen person, who is still seen, inherits nothing
    script = [
        (0.0, 2.0, [(1, "standing"), (2, "sitting")]),
        (2.0, 8.0, [(1, "lying"), (2, "sitting")]),
        (8.0, 14.0, [(1, "lying"), (2, "lying")]),
    ]
    assert [(e.track_id, round(e.t, 1)) for e in run(script, FALL, x={1: 300.0, 2: 380.0})] == [(1, 5.0)]


def test_the_legs_angle_tells_feet_under_the_hips_from_feet_raised_above_them() -> None:
    p = PostureParams()
    bending, legs_up = read_posture(person(1, 0.0, "bending"), p), read_posture(person(1, 0.0, "legs_up"), p)
    # both: a horizontal torso and legs ~25 degrees off the vertical; bending stands on them
    assert bending.legs_angle is not None and bending.legs_angle < 10
    assert legs_up.legs_angle is not None and legs_up.legs_angle > 150
    assert bending.posture is Posture.OTHER and legs_up.posture is Posture.LYING


def test_a_fall_backwards_with_the_legs_in_the_air_is_a_fall() -> None:
    # UP-Fall activity 3, trial 1: on the back with the feet raised above the hips for a while
    # before they come down; lying from the moment of landing, not from when the legs come down
    script = [(0.0, 2.0, [(1, "standing")]), (2.0, 4.0, [(1, "legs_up")]), (4.0, 9.0, [(1, "lying")])]
    events = run(script, FALL)
    assert [(e.kind, round(e.t, 1)) for e in events] == [("fall", 5.0)]
    assert events[0].payload["fall_s"] == pytest.approx(0.2)


def test_sitting_on_the_floor_with_the_legs_unseen_is_not_the_upright_the_fall_is_measured_from() -> None:
    # UP-Fall activity 3, trial 1 (detector on torch): in mid-fall the person sits on the floor for
    # a frame, the legs' keypoints too weak to count; read as upright, that reading was the fall's
    # start and the hips' drop from it was nil
    script = [
        (0.0, 2.0, [(1, "standing")]),
        (2.0, 2.4, [(1, "sitting_legs_unseen")]),
        (2.4, 8.0, [(1, "lying")]),
    ]
    events = run(script, FALL)
    assert [e.kind for e in events] == ["fall"]
    assert events[0].payload["fall_s"] == pytest.approx(0.6)
    # lying down on purpose, through seconds of sitting with the legs unseen: still no fall
    script = [
        (0.0, 2.0, [(1, "standing")]),
        (2.0, 5.0, [(1, "sitting_legs_unseen")]),
        (5.0, 11.0, [(1, "lying")]),
    ]
    assert [e.kind for e in run(script, FALL, DOWN)] == ["person_down"]
