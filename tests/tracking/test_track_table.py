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


def test_add_appends_rows_as_the_array_code_it_replaced_with_or_without_the_callers_codes() -> None:
    """kernels.table_add against the numpy it replaced (concatenations), on a table that has run frames:
    existing rows untouched, new rows seen once with their detection's class as the first vote."""
    rng = np.random.default_rng(3)
    classes = ["car", "bus", "person", "bicycle", "truck", "dog"]  # more than the 4 vote columns at start
    for with_columns in (False, True):
        table = TrackTable()
        table.add(1, [_det(str(rng.choice(classes)), float(rng.random())) for _ in range(6)], confirmed=False)
        for _ in range(4):
            dets = [_det(str(rng.choice(classes)), float(rng.random())) for _ in range(len(table))]
            take = np.where(rng.random(len(table)) < 0.7, np.arange(len(table)), -1)
            table.step(take, dets, np.array([d.score for d in dets]), min_hits=2, max_age=5, tentative_max_age=2)
        before = {name: getattr(table, name).copy() for name in (
            "ids", "hits", "age", "misses", "confirmed", "score", "cls", "vote_ring", "n_votes", "vote_head",
            "vote_counts", "vote_stamp")}
        stamp0 = table._next_stamp
        new = [_det(str(rng.choice(classes)), float(rng.random())) for _ in range(5)]
        if with_columns:
            codes = np.array(table.codes([d.cls for d in new]), dtype=np.intp)
            table.add(40, new, confirmed=True, codes=codes, scores=np.array([d.score for d in new]))
        else:
            table.add(40, new, confirmed=True)
            codes = np.array(table.codes([d.cls for d in new]), dtype=np.intp)
        k, width = len(new), table.vote_counts.shape[1]
        n = len(before["ids"])
        counts = np.zeros((k, width), dtype=np.intp)
        stamp = np.zeros((k, width), dtype=np.int64)
        counts[np.arange(k), codes] = 1
        stamp[np.arange(k), codes] = np.arange(stamp0, stamp0 + k)
        ring = np.zeros((k, before["vote_ring"].shape[1]), dtype=np.intp)
        ring[:, 0] = codes
        pad = width - before["vote_counts"].shape[1]
        want = {
            "ids": np.concatenate([before["ids"], np.arange(40, 40 + k)]),
            "hits": np.concatenate([before["hits"], np.ones(k, dtype=np.intp)]),
            "age": np.concatenate([before["age"], np.ones(k, dtype=np.intp)]),
            "misses": np.concatenate([before["misses"], np.zeros(k, dtype=np.intp)]),
            "confirmed": np.concatenate([before["confirmed"], np.full(k, True)]),
            "score": np.concatenate([before["score"], [d.score for d in new]]),
            "cls": np.concatenate([before["cls"], codes]),
            "vote_ring": np.concatenate([before["vote_ring"], ring]),
            "n_votes": np.concatenate([before["n_votes"], np.ones(k, dtype=np.intp)]),
            "vote_head": np.concatenate([before["vote_head"], np.zeros(k, dtype=np.intp)]),
            "vote_counts": np.concatenate([np.pad(before["vote_counts"], ((0, 0), (0, pad))), counts]),
            "vote_stamp": np.concatenate([np.pad(before["vote_stamp"], ((0, 0), (0, pad))), stamp]),
        }
        for name, value in want.items():
            got = getattr(table, name)
            assert got.dtype == value.dtype or name == "score", name
            np.testing.assert_array_equal(got, value, err_msg=name)
        assert table._next_stamp == stamp0 + k and len(table) == n + k
        assert table.classes()[n:] == [d.cls for d in new]
