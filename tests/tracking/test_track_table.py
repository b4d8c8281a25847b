"""The tracker's per-track bookkeeping: Tracks built without their __init__, counters updated as arrays."""

from __future__ import annotations

import numpy as np
import pytest

from smartcity.core.vision import Attributes, Detection, Keypoint, Track
from smartcity.tracking.track_table import TrackTable, make_track


def test_make_track_equals_the_constructor_and_stays_immutable() -> None:
    args = (7, "car", (1.0, 2.0, 30.0, 40.0), 0.8, 12.5, 3, 4, True, 1, (2.0, -1.0),
            (Keypoint(1.0, 2.0, 0.9),), Attributes({"colour": "red"}))
    built = make_track(*args)
    plain = Track(*args)
    assert built == plain
    assert hash(built) == hash(plain)
    assert repr(built) == repr(plain)
    with pytest.raises(AttributeError):
        built.score = 0.1  # type: ignore[misc]
    assert built._replace(score=0.1) == Track(*args[:3], 0.1, *args[4:]) and built.score == 0.8


def _det(cls: str, score: float = 0.9) -> Detection:
    return Detection((0.0, 0.0, 10.0, 10.0), cls, score)


def test_step_counts_hits_and_misses_and_ends_tracks_by_their_own_limit() -> None:
    table = TrackTable()
    table.add(1, [_det("car"), _det("car"), _det("bus")], confirmed=False)
    dets = [_det("car", 0.7), _det("truck", 0.6)]
    scores = np.array([0.7, 0.6])
    # track 1 takes detection 0, track 3 (a bus) takes the truck box, track 2 misses
    alive = table.step(np.array([0, -1, 1]), dets, scores, min_hits=2, max_age=5, tentative_max_age=0)
    assert table.hits.tolist() == [2, 1, 2]
    assert table.age.tolist() == [2, 2, 2]
    assert table.misses.tolist() == [0, 1, 0]
    assert table.confirmed.tolist() == [True, False, True]
    assert table.score.tolist() == [0.7, 0.9, 0.6]
    # seen once and missed once with tentative_max_age 0: it ends; one bus vote against one truck: no switch
    assert alive.tolist() == [True, False, True]
    assert table.classes() == ["car", "car", "bus"]
    table.keep(alive)
    assert table.ids.tolist() == [1, 3]
    # a track seen twice waits max_age misses
    for _ in range(5):
        alive = table.step(np.array([-1, -1]), [], np.zeros(0), min_hits=2, max_age=5, tentative_max_age=0)
        assert alive.all()
    alive = table.step(np.array([-1, -1]), [], np.zeros(0), min_hits=2, max_age=5, tentative_max_age=0)
    assert not alive.any()


def test_snapshot_builds_each_row_as_the_constructor_would_and_its_columns() -> None:
    table = TrackTable()
    kp = (Keypoint(1.0, 2.0, 0.9),)
    table.add(5, [Detection((0.0, 0.0, 10.0, 10.0), "car", 0.9, keypoints=kp), _det("bus", 0.6)], confirmed=False)
    table.step(np.array([-1, 0]), [_det("bus", 0.7)], np.array([0.7]), min_hits=2, max_age=5, tentative_max_age=3)
    boxes = [(1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 9.5)]
    tracks, columns = table.snapshot(2.5, boxes, [(0.5, -0.5), (1.0, 0.0)], np.array(boxes))
    assert tracks == [
        Track(5, "car", boxes[0], 0.9, 2.5, 1, 2, False, 1, (0.5, -0.5), kp),
        Track(6, "bus", boxes[1], 0.7, 2.5, 2, 2, True, 0, (1.0, 0.0)),
    ]
    assert columns.describes(tracks) and columns.ids == [5, 6] and columns.classes == ["car", "bus"]
    assert columns.hits.tolist() == [1, 2] and columns.misses.tolist() == [1, 0]
    assert columns.confirmed.tolist() == [False, True] and columns.score.tolist() == [0.9, 0.7]
    # the table's next frame leaves the columns of this one as they were
    table.step(np.array([-1, -1]), [], np.zeros(0), min_hits=2, max_age=5, tentative_max_age=3)
    assert columns.hits.tolist() == [1, 2] and columns.misses.tolist() == [1, 0]
