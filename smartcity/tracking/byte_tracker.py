"""The ByteTrack-style multi-object tracker of one camera (pure: no I/O, no clock, no threads).

Per call to `update(detections, t)`:

1. every live track is moved forward by a constant-velocity Kalman filter (boxes as
   cx, cy, w, h); the time step comes from `t`, measured in the camera's typical frame
   interval, so a skipped frame is predicted twice as far;
2. detections scoring >= `high_score` are matched to all live tracks by IoU with an
   optimal assignment (pairs below `match_iou` never match);
3. detections in [`low_score`, `high_score`) are matched to the tracks left over that were
   seen on the previous frame: a partly occluded object keeps its track, but a weak box
   never revives a lost track nor starts a new one;
4. tracks still unmatched miss a frame: a tentative track (fewer than `min_hits`
   consecutive matches) ends at once, a confirmed one survives `max_age` missed frames;
5. high detections left over, scoring >= `new_track_score`, start tentative tracks.

Association ignores the class: detectors flicker between similar classes (car/truck),
and a track's class is the majority over its last detections, switching only when another
class clearly wins. Track ids count up from 1 and are never reused by one tracker, not
even after `reset()`. Velocities are reported in pixels per second.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from smartcity.core.vision import Detection, Track
from smartcity.tracking import kalman
from smartcity.tracking.assignment import FloatArray, IntArray, iou_matrix, linear_assignment
from smartcity.tracking.config import TrackerConfig

# Detections remembered per track for the class vote.
CLASS_VOTE_WINDOW = 15
# Frame intervals remembered to estimate the nominal one (median: robust to a skipped frame).
INTERVAL_WINDOW = 31
# A pause longer than this many nominal frames is predicted as if it lasted this long:
# constant velocity is not trustworthy over a stall of the source.
MAX_STEP = 10.0


class _TrackState:
    """Bookkeeping of one live track; its Kalman state lives in the tracker's arrays."""

    __slots__ = (
        "age",
        "cls",
        "confirmed",
        "counts",
        "hits",
        "score",
        "streak",
        "time_since_update",
        "track_id",
        "votes",
    )

    def __init__(self, track_id: int, cls: str, score: float, confirmed: bool) -> None:
        self.track_id = track_id
        self.cls = cls
        self.score = score
        self.hits = 1
        self.streak = 1
        self.age = 1
        self.time_since_update = 0
        self.confirmed = confirmed
        self.votes: deque[str] = deque([cls], maxlen=CLASS_VOTE_WINDOW)
        self.counts: dict[str, int] = {cls: 1}

    def vote(self, cls: str) -> None:
        if len(self.votes) == CLASS_VOTE_WINDOW:
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


class ByteTracker:
    """Tracks the detections of one camera across frames. Not thread-safe: one caller per instance."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config if config is not None else TrackerConfig()
        self._next_id = 1
        self._states: list[_TrackState] = []
        self._mean: FloatArray = np.zeros((0, 8))
        self._cov: FloatArray = np.zeros((0, 8, 8))
        self._last_t: float | None = None
        self._intervals: deque[float] = deque(maxlen=INTERVAL_WINDOW)
        self._nominal_dt: float | None = None

    def reset(self) -> None:
        """Forget every track and the frame timing; ids keep counting up."""
        self._states = []
        self._mean = np.zeros((0, 8))
        self._cov = np.zeros((0, 8, 8))
        self._last_t = None
        self._intervals.clear()
        self._nominal_dt = None

    def _steps_since_last(self, t: float) -> float:
        if not math.isfinite(t):
            raise ValueError(f"t must be a finite number of seconds, got {t!r}")
        last, self._last_t = self._last_t, t
        if last is None:
            return 1.0
        interval = t - last
        if interval <= 0.0:
            # Repeated or backwards timestamp (a camera clock reset): call it one frame.
            return 1.0
        self._intervals.append(interval)
        self._nominal_dt = statistics.median(self._intervals)
        return min(interval / self._nominal_dt, MAX_STEP)

    def update(self, detections: Sequence[Detection], t: float) -> list[Track]:
        """Feed the detections of one frame taken at `t` (seconds); returns every live track,
        sorted by id: matched ones with their corrected box, missed ones with their
        predicted box and `time_since_update > 0`, tentative ones with `confirmed=False`."""
        cfg = self.config
        step = self._steps_since_last(t)
        states = self._states
        n_tracks = len(states)

        seen_last_frame, mean, cov = self._predict(step)

        if detections:
            boxes = np.array([d.box for d in detections], dtype=np.float64).reshape(-1, 4)
            scores = np.array([d.score for d in detections], dtype=np.float64)
            usable = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
        else:
            boxes = np.zeros((0, 4))
            scores = np.zeros(0)
            usable = np.zeros(0, dtype=bool)
        high_idx = np.flatnonzero(usable & (scores >= cfg.high_score))
        low_idx = np.flatnonzero(usable & (scores >= cfg.low_score) & (scores < cfg.high_score))

        # Cost is 1 - IoU; "IoU >= match_iou" is "cost <= 1 - match_iou" (epsilon for the boundary).
        cost_limit = 1.0 - cfg.match_iou + 1e-9
        det_of_track = np.full(n_tracks, -1, dtype=np.intp)
        unmatched_high = high_idx
        if n_tracks:
            predicted = kalman.states_to_boxes(mean)
            if high_idx.size:
                rows, cols = self._assign(1.0 - self._iou(predicted, boxes[high_idx]), cost_limit)
                det_of_track[rows] = high_idx[cols]
                taken = np.zeros(high_idx.size, dtype=bool)
                taken[cols] = True
                unmatched_high = high_idx[~taken]
            candidates = np.flatnonzero((det_of_track < 0) & seen_last_frame)
            if candidates.size and low_idx.size:
                rows, cols = self._assign(1.0 - self._iou(predicted[candidates], boxes[low_idx]), cost_limit)
                det_of_track[candidates[rows]] = low_idx[cols]

            matched = np.flatnonzero(det_of_track >= 0)
            if matched.size:
                measured = kalman.boxes_to_measurements(boxes[det_of_track[matched]])
                mean[matched], cov[matched] = kalman.update(mean[matched], cov[matched], measured)

        keep = np.ones(n_tracks, dtype=bool)
        for k, (state, det) in enumerate(zip(states, det_of_track.tolist())):
            state.age += 1
            if det >= 0:
                d = detections[det]
                state.hits += 1
                state.streak += 1
                state.time_since_update = 0
                state.score = float(d.score)
                state.vote(d.cls)
                if state.streak >= cfg.min_hits:
                    state.confirmed = True
            else:
                state.streak = 0
                state.time_since_update += 1
                if not state.confirmed or state.time_since_update > cfg.max_age:
                    keep[k] = False
        if not keep.all():
            states = [s for s, k in zip(states, keep.tolist()) if k]
            mean = mean[keep]
            cov = cov[keep]

        starters = unmatched_high[scores[unmatched_high] >= cfg.new_track_score]
        if starters.size:
            new_mean, new_cov = kalman.initiate(kalman.boxes_to_measurements(boxes[starters]))
            mean = np.concatenate([mean, new_mean])
            cov = np.concatenate([cov, new_cov])
            for idx in starters.tolist():
                d = detections[idx]
                states.append(_TrackState(self._next_id, d.cls, float(d.score), cfg.min_hits <= 1))
                self._next_id += 1

        self._states = states
        self._mean = mean
        self._cov = cov
        return self._snapshot(t)

    def predicted_boxes(self, t: float, *, established_only: bool = True) -> FloatArray:
        """(N, 4) area each live track sweeps from its last box to the one predicted at `t`
        (their bounding box), without changing the tracker.

        With `established_only`, only confirmed tracks detected on their last frame: the ones
        whose motion the motion gate may leave to the Kalman filter.
        """
        if not self._states or not math.isfinite(t):
            return np.zeros((0, 4))
        if established_only:
            keep = np.fromiter((s.confirmed and s.time_since_update == 0 for s in self._states), dtype=bool)
            if not keep.any():
                return np.zeros((0, 4))
            mean, cov = self._mean[keep], self._cov[keep]
        else:
            mean, cov = self._mean, self._cov
        step = 1.0
        if self._last_t is not None and self._nominal_dt:
            step = min(max(t - self._last_t, 0.0) / self._nominal_dt, MAX_STEP)
        now = kalman.states_to_boxes(mean)
        then = kalman.states_to_boxes(kalman.predict(mean, cov, step)[0])
        return np.concatenate([np.minimum(now[:, :2], then[:, :2]), np.maximum(now[:, 2:], then[:, 2:])], axis=1)

    def coast(self, t: float) -> list[Track]:
        """Advance every track to `t` by prediction alone, on a frame the detector did not see.

        Not a missed frame: no track ages out, loses its streak or is confirmed; the next
        `update` corrects the predictions. Returns the live tracks as `update` does.
        """
        _, self._mean, self._cov = self._predict(self._steps_since_last(t))
        return self._snapshot(t)

    def _predict(self, step: float) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray]:
        """Every track moved `step` frames forward: (seen on the last frame, means, covariances)."""
        n = len(self._states)
        seen_last_frame = np.fromiter((s.time_since_update == 0 for s in self._states), dtype=bool, count=n)
        if n:
            # A lost track keeps moving but stops growing or shrinking.
            self._mean[~seen_last_frame, 6:8] = 0.0
        mean, cov = kalman.predict(self._mean, self._cov, step)
        return seen_last_frame, mean, cov

    def _snapshot(self, t: float) -> list[Track]:
        if not self._states:
            return []
        boxes = kalman.states_to_boxes(self._mean).tolist()
        per_second = 1.0 / self._nominal_dt if self._nominal_dt else 0.0
        velocities = (self._mean[:, 4:6] * per_second).tolist()
        out = [
            Track(
                track_id=s.track_id,
                cls=s.cls,
                box=(b[0], b[1], b[2], b[3]),
                score=s.score,
                t=t,
                hits=s.hits,
                age=s.age,
                confirmed=s.confirmed,
                time_since_update=s.time_since_update,
                velocity=(v[0], v[1]),
            )
            for s, b, v in zip(self._states, boxes, velocities)
        ]
        # New tracks are appended with increasing ids, so the list is already sorted by id.
        return out

    def _assign(self, cost: FloatArray, cost_limit: float) -> tuple[IntArray, IntArray]:
        """Matching step; a subclass may swap it (the benchmark's greedy baseline does)."""
        return linear_assignment(cost, cost_limit)

    def _iou(self, a: FloatArray, b: FloatArray) -> FloatArray:
        """Overlap step; a subclass may swap it (the benchmark's pure-Python baseline does)."""
        return iou_matrix(a, b)

    @property
    def live_count(self) -> int:
        """Number of live tracks (tentative, confirmed and lost)."""
        return len(self._states)
