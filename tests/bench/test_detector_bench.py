"""bench/detector.py's scoring: duplicate boxes, the detector-only privacy mask, threshold filtering."""

from __future__ import annotations

from annotations import AnnotatedObject
from detector import Privacy, Tally, duplicate_count, score, uncovered_share

from smartcity.core.vision import Detection


def test_duplicates_count_objects_with_two_boxes_on_them() -> None:
    bus = (100.0, 100.0, 300.0, 200.0)
    walker = (400.0, 100.0, 420.0, 160.0)
    # the whole bus, its rear (inside it, IoU < 0.5) and one walker box
    boxes = [(100.0, 100.0, 300.0, 200.0), (230.0, 110.0, 300.0, 200.0), (401.0, 100.0, 421.0, 160.0)]
    assert duplicate_count([bus, walker], boxes) == 1
    assert duplicate_count([bus, walker], boxes[:1] + boxes[2:]) == 0
    assert duplicate_count([bus], [(500.0, 500.0, 520.0, 520.0)] * 2) == 0  # boxes on nothing


def test_uncovered_share_of_a_person_under_the_mask() -> None:
    person = (0.0, 0.0, 20.0, 40.0)
    assert uncovered_share(person, [(-5.0, -5.0, 25.0, 45.0)]) == 0.0
    assert abs(uncovered_share(person, [(0.0, 0.0, 20.0, 30.0)]) - 0.25) < 1e-9
    assert uncovered_share(person, []) == 1.0


def test_privacy_uses_the_grown_person_boxes() -> None:
    person = AnnotatedObject("person", (100, 100, 120, 160), False)
    tight_low = Detection((100.0, 112.0, 120.0, 160.0), "person", 0.9)  # misses the head: 20 % of the box
    p = Privacy()
    p.add([person], [tight_low], 640, 480)  # grown by half its size on every side: the head is covered
    assert p.figures() == {"persons": 1, "persons_exposed": 0, "exposed_rate": 0.0}
    p.add([person], [Detection((100.0, 112.0, 120.0, 160.0), "car", 0.9)], 640, 480)  # a car is not masked
    assert p.figures()["persons_exposed"] == 1


def test_score_filters_by_threshold_after_one_pass() -> None:
    person = AnnotatedObject("person", (100, 100, 120, 160), False)
    dets = [
        Detection((100.0, 100.0, 120.0, 160.0), "person", 0.5),
        Detection((300.0, 0.0, 320.0, 60.0), "person", 0.3),
    ]
    frames = {"vtest": [([person], dets, 640, 480)]}
    low, high = score(frames, 0.25), score(frames, 0.4)
    assert (low["person_recall"], low["person_precision"]) == (1.0, 0.5)
    assert (high["person_recall"], high["person_precision"]) == (1.0, 1.0)
    t = Tally()
    t.add([person.box], [d.box for d in dets])
    assert t.figures()["found"] == 1 and t.figures()["boxes"] == 2
