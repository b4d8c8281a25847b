"""The bookkeeping of a tracker's live tracks as parallel arrays (pure: no I/O).

Counters and flags (id, hits, age, frames missed, confirmed, score) are numpy arrays, so a frame
updates all tracks with a few array operations instead of a Python loop over track objects. So is
the class vote: a track's class is the majority over its last CLASS_VOTE_WINDOW detections, with
hysteresis (another class must have strictly more votes; between classes with as many, the one
that entered the window first), kept as class codes in a ring per track and counted by one compiled
call per frame (kernels.class_votes). Only what is a Python value by nature (keypoints and
attributes) stays in lists. The tracker keeps the Kalman states beside it, row for row, and filters
both with the same masks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import repeat

import numpy as np
import numpy.typing as npt

from smartcity.core.vision import NO_ATTRIBUTES, Attributes, Box, Detection, Keypoints, Track, TrackColumns
from smartcity.tracking import kernels

IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

# Detections remembered per track for the class vote.
CLASS_VOTE_WINDOW = 15


# A frame builds one Track (a named tuple) per live track, in one C call from a row of columns.
_new_tuple = tuple.__new__


def make_track(
    track_id: int, cls: str, box: Box, score: float, t: float, hits: int, age: int, confirmed: bool,
    time_since_update: int, velocity: tuple[float, float], keypoints: Keypoints, attributes: Attributes,
) -> Track:
    """Track(track_id, cls, ...) built as the track table builds them (equal to it)."""
    track: Track = _new_tuple(
        Track, (track_id, cls, box, score, t, hits, age, confirmed, time_since_update, velocity, keypoints, attributes)
    )
    return track


class TrackTable:
    """Live tracks, one row each, in the order they were started (so by increasing id)."""

    def __init__(self) -> None:
        self.ids: IntArray = np.zeros(0, dtype=np.intp)
        self.hits: IntArray = np.zeros(0, dtype=np.intp)
        self.age: IntArray = np.zeros(0, dtype=np.intp)
        self.misses: IntArray = np.zeros(0, dtype=np.intp)  # frames missed in a row (time_since_update)
        self.confirmed: BoolArray = np.zeros(0, dtype=bool)
        self.score: FloatArray = np.zeros(0)
        # the class vote: class codes (of `names`) of each track's last votes in a ring from `vote_head`,
        # `n_votes` long; per class code, its votes in the window and when it entered it
        self.names: list[str] = []
        self._code_of: dict[str, int] = {}
        self.cls: IntArray = np.zeros(0, dtype=np.intp)
        self.vote_ring: IntArray = np.zeros((0, CLASS_VOTE_WINDOW), dtype=np.intp)
        self.n_votes: IntArray = np.zeros(0, dtype=np.intp)
        self.vote_head: IntArray = np.zeros(0, dtype=np.intp)
        self.vote_counts: IntArray = np.zeros((0, 4), dtype=np.intp)
        self.vote_stamp: npt.NDArray[np.int64] = np.zeros((0, 4), dtype=np.int64)
        self._next_stamp = 0
        # what a second-stage model saw in the latest matched detection's box (kept while lost)
        self.keypoints: list[Keypoints] = []
        self.attributes: list[Attributes] = []
        self._rich = 0  # rows whose keypoints or attributes are not the empty defaults

    def __len__(self) -> int:
        return len(self.ids)

    def classes(self) -> list[str]:
        return list(map(self.names.__getitem__, self.cls.tolist()))

    def codes(self, classes: Iterable[str]) -> list[int]:
        """The class codes of these class names (a new name takes the next code)."""
        code_of = self._code_of
        return [code_of[c] if c in code_of else self._new_code(c) for c in classes]

    def _new_code(self, cls: str) -> int:
        code = len(self.names)
        self.names.append(cls)
        self._code_of[cls] = code
        if code >= self.vote_counts.shape[1]:  # room for more classes
            more = np.zeros((self.vote_counts.shape[0], self.vote_counts.shape[1]), dtype=np.intp)
            self.vote_counts = np.concatenate([self.vote_counts, more], axis=1)
            self.vote_stamp = np.concatenate([self.vote_stamp, more.astype(np.int64)], axis=1)
        return code

    def keep(self, mask: BoolArray) -> None:
        """Drop the rows where `mask` is false."""
        self.ids, self.hits, self.age = self.ids[mask], self.hits[mask], self.age[mask]
        self.misses, self.confirmed, self.score = self.misses[mask], self.confirmed[mask], self.score[mask]
        self.cls, self.vote_ring, self.n_votes = self.cls[mask], self.vote_ring[mask], self.n_votes[mask]
        self.vote_head, self.vote_counts, self.vote_stamp = self.vote_head[mask], self.vote_counts[mask], self.vote_stamp[mask]
        if self._rich:
            flags = mask.tolist()
            self.keypoints = [v for v, k in zip(self.keypoints, flags) if k]
            self.attributes = [v for v, k in zip(self.attributes, flags) if k]
            self._rich = _count_rich(self.keypoints, self.attributes)
        else:  # all rows hold the defaults
            n = self.ids.shape[0]
            del self.keypoints[n:], self.attributes[n:]

    def add(
        self, first_id: int, detections: Sequence[Detection], confirmed: bool, *, codes: IntArray | None = None,
        scores: FloatArray | None = None,
    ) -> None:
        """Start a track per detection, with ids from `first_id` up (`codes` and `scores`: the detections'
        class codes and scores, if the caller has them)."""
        n = len(detections)
        if codes is None:
            codes = np.array(self.codes([d.cls for d in detections]), dtype=np.intp)
        if scores is None:
            scores = np.array([float(d.score) for d in detections], dtype=np.float64)
        (
            self.ids, self.hits, self.age, self.misses, self.confirmed, self.score, self.cls, self.vote_ring,
            self.n_votes, self.vote_head, self.vote_counts, self.vote_stamp,
        ) = kernels.table_add(
            self.ids, self.hits, self.age, self.misses, self.confirmed, self.score, self.cls, self.vote_ring,
            self.n_votes, self.vote_head, self.vote_counts, self.vote_stamp, first_id, scores, codes, confirmed,
            self._next_stamp,
        )
        self._next_stamp += n
        self.keypoints.extend(d.keypoints for d in detections)
        self.attributes.extend(d.attributes for d in detections)
        self._rich += _count_rich([d.keypoints for d in detections], [d.attributes for d in detections])

    def step(self, det_of_track: IntArray, detections: Sequence[Detection], scores: FloatArray, min_hits: int,
             max_age: int, tentative_max_age: int, *, codes: IntArray | None = None) -> BoolArray:
        """One frame: rows with `det_of_track >= 0` took that detection, the others missed the frame
        (`codes`: the detections' class codes, if the caller has them). Returns which rows live on (a
        track seen once ends after `tentative_max_age` misses in a row, one seen twice or more, which has
        a velocity, after `max_age`)."""
        if codes is None:
            codes = np.array(self.codes([d.cls for d in detections]), dtype=np.intp)
        alive: BoolArray
        alive, self._next_stamp = kernels.table_step(
            det_of_track, scores, codes, self.age, self.hits, self.misses, self.confirmed, self.score, min_hits,
            max_age, tentative_max_age, self.cls, self.vote_ring, self.n_votes, self.vote_head, self.vote_counts,
            self.vote_stamp, self._next_stamp,
        )
        if self._rich or any(d.keypoints or d.attributes is not NO_ATTRIBUTES for d in detections):
            # else every row holds the empty defaults and keeps them
            keypoints, attributes = self.keypoints, self.attributes
            rows = (det_of_track >= 0).nonzero()[0]
            for k, i in zip(rows.tolist(), det_of_track[rows].tolist()):
                d = detections[i]
                keypoints[k] = d.keypoints
                attributes[k] = d.attributes
            self._rich = _count_rich(keypoints, attributes)
        return alive

    def snapshot(
        self, t: float, boxes: list[Box], velocities: list[tuple[float, float]], box_array: FloatArray
    ) -> tuple[list[Track], TrackColumns]:
        """One Track per row, with these boxes (`box_array` as an (N, 4) array) and velocities (rows in
        order); and the same as columns."""
        ids = self.ids.tolist()
        classes = self.classes()
        rows = zip(
            ids, classes, boxes, self.score.tolist(), repeat(t), self.hits.tolist(), self.age.tolist(),
            self.confirmed.tolist(), self.misses.tolist(), velocities, self.keypoints, self.attributes, strict=False,
        )
        tracks: list[Track] = list(map(_new_tuple, repeat(Track), rows))
        # copies: the table updates its arrays in place on the next frame
        columns = TrackColumns(tracks, ids, classes, box_array, self.score.copy(), self.misses.copy(),
                               self.confirmed.copy(), self.hits.copy())
        return tracks, columns


def _count_rich(keypoints: Sequence[Keypoints], attributes: Sequence[Attributes]) -> int:
    """How many rows hold keypoints or attributes other than the empty defaults."""
    return sum(1 for kp, at in zip(keypoints, attributes) if kp or at is not NO_ATTRIBUTES)


__all__ = ["CLASS_VOTE_WINDOW", "TrackTable", "make_track"]
