"""The bookkeeping of a tracker's live tracks as parallel arrays (pure: no I/O).

Counters and flags (id, hits, age, frames missed, confirmed, score) are numpy arrays, so a frame
updates all tracks with a few array operations instead of a Python loop over track objects; only
what is a Python value by nature (the class vote, keypoints and attributes) stays in lists. The
tracker keeps the Kalman states beside it, row for row, and filters both with the same masks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import repeat

import numpy as np
import numpy.typing as npt

from smartcity.core.vision import Attributes, Box, Detection, Keypoints, Track, TrackColumns

IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

# Detections remembered per track for the class vote.
CLASS_VOTE_WINDOW = 15


class ClassVote:
    """A track's class: the majority over its last CLASS_VOTE_WINDOW detections, with hysteresis."""

    __slots__ = ("cls", "counts", "votes")

    def __init__(self, cls: str) -> None:
        self.cls = cls
        self.votes: deque[str] = deque([cls], maxlen=CLASS_VOTE_WINDOW)
        self.counts: dict[str, int] = {cls: 1}

    def vote(self, cls: str) -> None:
        n = len(self.votes)
        if cls == self.cls and self.counts[cls] == n:
            # Unanimous so far (the common case): only the window's length can change.
            if n < CLASS_VOTE_WINDOW:
                self.votes.append(cls)
                self.counts[cls] = n + 1
            return
        if n == CLASS_VOTE_WINDOW:
            old = self.votes[0]
            self.counts[old] -= 1
            if self.counts[old] == 0:
                del self.counts[old]
        self.votes.append(cls)
        self.counts[cls] = self.counts.get(cls, 0) + 1
        # Hysteresis: the current class stays unless another one has strictly more votes.
        current = self.counts.get(self.cls, 0)
        best_cls, best = max(self.counts.items(), key=lambda kv: kv[1])
        if best > current:
            self.cls = best_cls


# A frame builds one Track per live track. Track is a frozen dataclass, whose generated __init__
# goes through object.__setattr__ once per field; setting the slots through their descriptors
# builds the same value in about half the time.
_TRACK_FIELDS = (
    "track_id", "cls", "box", "score", "t", "hits", "age", "confirmed", "time_since_update", "velocity",
    "keypoints", "attributes",
)
if tuple(Track.__slots__) != _TRACK_FIELDS:  # pragma: no cover - caught by the tests on any change
    raise ImportError(f"Track's fields changed: {Track.__slots__}; update smartcity.tracking.track_table")
_new = object.__new__
_SETTERS = tuple(getattr(Track, name).__set__ for name in _TRACK_FIELDS)
(_s_id, _s_cls, _s_box, _s_score, _s_t, _s_hits, _s_age, _s_confirmed, _s_misses, _s_velocity, _s_keypoints,
 _s_attributes) = _SETTERS


def make_track(
    track_id: int, cls: str, box: Box, score: float, t: float, hits: int, age: int, confirmed: bool,
    time_since_update: int, velocity: tuple[float, float], keypoints: Keypoints, attributes: Attributes,
) -> Track:
    """Track(track_id, cls, ...) built without its __init__ (equal to it)."""
    tr: Track = _new(Track)
    _s_id(tr, track_id)
    _s_cls(tr, cls)
    _s_box(tr, box)
    _s_score(tr, score)
    _s_t(tr, t)
    _s_hits(tr, hits)
    _s_age(tr, age)
    _s_confirmed(tr, confirmed)
    _s_misses(tr, time_since_update)
    _s_velocity(tr, velocity)
    _s_keypoints(tr, keypoints)
    _s_attributes(tr, attributes)
    return tr


class TrackTable:
    """Live tracks, one row each, in the order they were started (so by increasing id)."""

    def __init__(self) -> None:
        self.ids: IntArray = np.zeros(0, dtype=np.intp)
        self.hits: IntArray = np.zeros(0, dtype=np.intp)
        self.age: IntArray = np.zeros(0, dtype=np.intp)
        self.misses: IntArray = np.zeros(0, dtype=np.intp)  # frames missed in a row (time_since_update)
        self.confirmed: BoolArray = np.zeros(0, dtype=bool)
        self.score: FloatArray = np.zeros(0)
        self.votes: list[ClassVote] = []
        # what a second-stage model saw in the latest matched detection's box (kept while lost)
        self.keypoints: list[Keypoints] = []
        self.attributes: list[Attributes] = []

    def __len__(self) -> int:
        return len(self.votes)

    def classes(self) -> list[str]:
        return [v.cls for v in self.votes]

    def keep(self, mask: BoolArray) -> None:
        """Drop the rows where `mask` is false."""
        self.ids, self.hits, self.age = self.ids[mask], self.hits[mask], self.age[mask]
        self.misses, self.confirmed, self.score = self.misses[mask], self.confirmed[mask], self.score[mask]
        flags = mask.tolist()
        self.votes = [v for v, k in zip(self.votes, flags) if k]
        self.keypoints = [v for v, k in zip(self.keypoints, flags) if k]
        self.attributes = [v for v, k in zip(self.attributes, flags) if k]

    def add(self, first_id: int, detections: Sequence[Detection], confirmed: bool) -> None:
        """Start a track per detection, with ids from `first_id` up."""
        n = len(detections)
        self.ids = np.concatenate([self.ids, np.arange(first_id, first_id + n, dtype=np.intp)])
        self.hits = np.concatenate([self.hits, np.ones(n, dtype=np.intp)])
        self.age = np.concatenate([self.age, np.ones(n, dtype=np.intp)])
        self.misses = np.concatenate([self.misses, np.zeros(n, dtype=np.intp)])
        self.confirmed = np.concatenate([self.confirmed, np.full(n, confirmed)])
        self.score = np.concatenate([self.score, [float(d.score) for d in detections]])
        self.votes.extend(ClassVote(d.cls) for d in detections)
        self.keypoints.extend(d.keypoints for d in detections)
        self.attributes.extend(d.attributes for d in detections)

    def step(self, det_of_track: IntArray, detections: Sequence[Detection], scores: FloatArray, min_hits: int,
             max_age: int, tentative_max_age: int) -> BoolArray:
        """One frame: rows with `det_of_track >= 0` took that detection, the others missed the frame.
        Returns which rows live on (a track seen once ends after `tentative_max_age` misses in a row, one
        seen twice or more, which has a velocity, after `max_age`)."""
        self.age += 1
        matched = det_of_track >= 0
        rows = matched.nonzero()[0]
        dets = det_of_track[rows]
        self.hits[rows] += 1
        self.misses += 1
        self.misses[rows] = 0
        self.score[rows] = scores[dets]
        self.confirmed |= matched & (self.hits >= min_hits)
        votes, keypoints, attributes = self.votes, self.keypoints, self.attributes
        for k, i in zip(rows.tolist(), dets.tolist()):
            d = detections[i]
            keypoints[k] = d.keypoints
            attributes[k] = d.attributes
            votes[k].vote(d.cls)
        # a track seen twice has a velocity: its prediction bridges a detector's gap as well as a
        # confirmed track's does (a bus entering the picture, missed for four frames, came back
        # as a new track past the counting line)
        limit = np.where(self.confirmed | (self.hits >= 2), max_age, tentative_max_age)
        alive: BoolArray = matched | (self.misses <= limit)
        return alive

    def snapshot(
        self, t: float, boxes: list[Box], velocities: list[tuple[float, float]], box_array: FloatArray
    ) -> tuple[list[Track], TrackColumns]:
        """One Track per row, with these boxes (`box_array` as an (N, 4) array) and velocities (rows in
        order); and the same as columns."""
        ids = self.ids.tolist()
        classes = [v.cls for v in self.votes]
        # as make_track, a field at a time over all rows: the loops run in C (`any` drains each map)
        tracks: list[Track] = list(map(_new, repeat(Track, len(ids))))
        for put, values in zip(_SETTERS, (
            ids, classes, boxes, self.score.tolist(), repeat(t), self.hits.tolist(), self.age.tolist(),
            self.confirmed.tolist(), self.misses.tolist(), velocities, self.keypoints, self.attributes,
        ), strict=True):
            any(map(put, tracks, values))
        # copies: the table updates its arrays in place on the next frame
        columns = TrackColumns(tracks, ids, classes, box_array, self.score.copy(), self.misses.copy(),
                               self.confirmed.copy(), self.hits.copy())
        return tracks, columns


__all__ = ["CLASS_VOTE_WINDOW", "ClassVote", "TrackTable", "make_track"]
