"""The ByteTrack-style multi-object tracker of one camera (pure: no I/O, no clock, no threads).

Per call to `update(detections, t)`:

1. every live track is moved forward by a constant-velocity Kalman filter (boxes as
   cx, cy, w, h); the time step comes from `t`, measured in the camera's typical frame
   interval, so a skipped frame is predicted twice as far;
2. detections scoring >= `high_score` are matched to all live tracks with an optimal
   assignment. A pair may match when the boxes overlap (IoU >= `match_iou`) or when the
   detection lies within a distance gate measured in box sizes, with a similar size: at 5 fps a
   car near the camera moves more than half its length between analysed frames and never
   overlaps its own prediction enough. The distance is measured to the last part of the
   predicted move (a vehicle driving away slows down in the picture). A track seen once has no
   velocity yet and gets a wider gate (`new_track_distance` per frame elapsed); boxes cut by
   the picture's edge are compared
   by their inner edges when `frame_size` is given;
3. detections in [`low_score`, `high_score`) are matched to the tracks left over that were
   seen on the previous frame: a partly occluded object keeps its track, but a weak box
   never revives a lost track nor starts a new one;
4. a lost track may still take a left-over detection that overlaps its last observed box
   (OC-SORT's recovery: the object stopped, or turned while unseen), or, lost for a few frames,
   one lying on its path: along its velocity, short of its prediction, of a size perspective
   allows (an object hidden behind a bus while driving away comes out smaller and slower);
5. a track seen once, or re-found after a gap, takes the velocity its last two observations
   imply (OC-SORT's observation-centric re-update) instead of waiting for the filter to learn it;
6. tracks still unmatched miss a frame: a track seen once ends after `tentative_max_age` misses in
   a row, one seen twice or more (it has a velocity) after `max_age`;
7. high detections left over, scoring >= `new_track_score`, start tentative tracks, unless
   they are the nested part (rear, front) of a bus or truck boxed whole in the same frame.

Association ignores the class within a group of `class_groups`: detectors flicker between
similar classes (car/truck), and a track's class is the majority over its last detections,
switching only when another class clearly wins; a track never takes a box of another group
(the car whose box was missed does not take the bicycle's beside it). Track ids count up from
1 and are never reused by one tracker, not even after `reset()`. Velocities are reported in pixels per second. A track carries the
keypoints and attributes of the latest detection matched to it (kept while it is lost).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from operator import attrgetter

import numpy as np
import numpy.typing as npt

from smartcity.core.vision import Detection, Track, TrackColumns
from smartcity.tracking import kalman, kernels
from smartcity.tracking.assignment import FORBIDDEN, TIE, FloatArray, IntArray, iou_matrix, linear_assignment
from smartcity.tracking.config import TrackerConfig
from smartcity.tracking.track_table import TrackTable

# Frame intervals remembered to estimate the nominal one (median: robust to a skipped frame).
INTERVAL_WINDOW = 31
# A pause longer than this many nominal frames is predicted as if it lasted this long:
# constant velocity is not trustworthy over a stall of the source.
MAX_STEP = 10.0
# Association costs lie in [0, 1); a pair at or above this is never matched.
COST_LIMIT = 1.0
# A pair whose offset along x or y alone exceeds this many times its track's gate is out of reach.
GATE_MARGIN = 1.01
# Below this speed (box sizes per frame) a track is still: its gate does not widen while it is lost.
STILL_SPEED = 0.05
# A track re-found after more than this many frames unseen takes the velocity its last two observations imply.
REFOUND_GAP = 1.5
# Recovery along the path (see `_path_cost`): a track lost at least this many frames; the detection
# between these shares of the predicted move, this many box sizes to its side, of a size within this ratio.
PATH_MIN_GAP = 3.0
PATH_ALONG = (0.3, 1.3)
PATH_LATERAL = 0.5
PATH_SIZE_RATIO = 3.0
# A box this close to the picture's edge (share of the picture's size) is cut by it; a detector's
# box edges jitter by a few pixels.
EDGE_SHARE = 0.01
# Classes a detector may give to the part of a large vehicle it also boxes whole.
RIGID_VEHICLES = frozenset({"car", "truck", "bus"})
# A nested box is a duplicate only if its bottom edge and one of its sides are this close to the outer
# box's (share of the outer box's height or width).
DUPLICATE_EDGE = 0.12
# "none" for the cost kernel's optional arrays (no IoU given, no pair kept apart, no origins)
_NONE_2D: FloatArray = np.zeros((0, 0))
_NONE_BOOL_2D: npt.NDArray[np.bool_] = np.zeros((0, 0), dtype=bool)
_SCORE, _CLS = attrgetter("score"), attrgetter("cls")
_NONE_XY: FloatArray = np.zeros((0, 2))
_NO_ROWS: IntArray = np.zeros(0, dtype=np.intp)


class ByteTracker:
    """Tracks the detections of one camera across frames. Not thread-safe: one caller per instance."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config if config is not None else TrackerConfig()
        self._next_id = 1
        self._tracks = TrackTable()
        # Kalman states, row for row with _tracks: states (N, 8) and compact covariances (N, 3, 4): see kalman
        self._mean, self._cov = kalman.empty()
        self._last_t: float | None = None
        self._intervals: deque[float] = deque(maxlen=INTERVAL_WINDOW)
        self._sorted_intervals: list[float] = []  # the same, sorted (for their median)
        self._nominal_dt: float | None = None
        # Last observed box (cx, cy, w, h) of each track and the frames elapsed since.
        self._obs: FloatArray = np.zeros((0, 4))
        self._since_obs: FloatArray = np.zeros(0)
        self._frame_size: tuple[int, int] | None = None
        # class -> index of its group in config.class_groups (association stays within a group)
        self._group_of = {c: k for k, group in enumerate(self.config.class_groups) for c in group}
        # group of each class code of the track table's names (-1: in no group), grown with them
        self._group_code: IntArray = np.zeros(0, dtype=np.intp)
        self._columns: TrackColumns | None = None

    def reset(self) -> None:
        """Forget every track and the frame timing; ids keep counting up."""
        self._tracks = TrackTable()
        self._group_code = np.zeros(0, dtype=np.intp)
        self._columns = None
        self._mean, self._cov = kalman.empty()
        self._obs = np.zeros((0, 4))
        self._since_obs = np.zeros(0)
        self._last_t = None
        self._intervals.clear()
        self._sorted_intervals.clear()
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
        self._nominal_dt = self._median_interval(interval)
        return min(interval / self._nominal_dt, MAX_STEP)

    def _median_interval(self, interval: float) -> float:
        """The median of the last INTERVAL_WINDOW intervals with this one (statistics.median's value: the
        middle one, or the mean of the middle two), from a sorted copy kept beside them."""
        window, ordered = self._intervals, self._sorted_intervals
        if len(window) == window.maxlen:
            ordered.remove(window[0])
        window.append(interval)
        bisect.insort(ordered, interval)
        n = len(ordered)
        if n % 2:
            return ordered[n // 2]
        return (ordered[n // 2 - 1] + ordered[n // 2]) / 2

    # the two association stages, births and deaths read as one pass per frame; the steps that
    # stand alone (gating, edge cuts, duplicates, snapshots) are methods already
    def update(  # noqa: C901
        self, detections: Sequence[Detection], t: float, frame_size: tuple[int, int] | None = None
    ) -> list[Track]:
        """Feed the detections of one frame taken at `t` (seconds); returns every live track,
        sorted by id: matched ones with their corrected box, missed ones with their
        predicted box and `time_since_update > 0`, tentative ones with `confirmed=False`.

        `frame_size` (width, height) lets association tell boxes cut by the picture's edge: an
        object entering the picture grows from the edge, so only its inner edges follow its motion.
        """
        cfg = self.config
        self._frame_size = frame_size
        step = self._steps_since_last(t)
        tracks = self._tracks
        n_tracks = len(tracks)

        # the Kalman prediction (a lost track stops growing or shrinking), and which lost tracks it moved
        # out of the picture
        noise = max(step, 0.0)
        seen_last_frame, mean, cov, left, n_left = kernels.start_frame(
            self._mean, self._cov, tracks.misses, self._since_obs, float(step), kalman.STD_POSITION**2 * noise,
            cfg.velocity_noise**2 * noise, kalman.MIN_SIZE, frame_size is not None,
            float(frame_size[0]) if frame_size is not None else 0.0,
            float(frame_size[1]) if frame_size is not None else 0.0,
        )
        # A lost track predicted out of the picture has left it: kept, it would take the box
        # of the next object entering where it left (a bus gone west took a car coming east).
        if n_left:
            stay = ~left
            tracks.keep(stay)
            n_tracks = len(tracks)
            mean, cov, seen_last_frame = mean[stay], cov[stay], seen_last_frame[stay]
            self._mean, self._obs, self._since_obs = self._mean[stay], self._obs[stay], self._since_obs[stay]

        if detections:
            # one flat list, converted once: a third of the cost of an array made of one tuple per box
            flat: list[float] = []
            put = flat.extend
            for d in detections:
                put(d.box)
            if len(flat) != 4 * len(detections):
                raise ValueError("every detection's box must have 4 numbers (x1, y1, x2, y2)")
            boxes = np.array(flat, dtype=np.float64).reshape(-1, 4)
            scores = np.fromiter(map(_SCORE, detections), np.float64, len(detections))
            det_codes = np.fromiter(tracks.codes(map(_CLS, detections)), np.intp, len(detections))
        else:
            boxes = np.zeros((0, 4))
            scores = np.zeros(0)
            det_codes = _NO_ROWS
        # usable boxes (finite numbers) by score: high ones, low ones, both (in order) and which are high
        high_idx, low_idx, considered, is_high = kernels.split_detections(boxes, scores, cfg.high_score, cfg.low_score)

        det_of_track = _NO_ROWS  # no track: nothing to match (read, never written)
        unmatched_high = high_idx
        if n_tracks:
            predicted, gate, young = kernels.association_inputs(
                mean, self._mean, self._since_obs, tracks.hits, kalman.MIN_SIZE, cfg.new_track_distance,
                cfg.match_distance, cfg.still_distance, STILL_SPEED,
            )
            # One cost matrix for both stages (every track against every high and low box): a pair's
            # cost depends only on its track and its box, and one call costs half as much as two.
            apart = self._apart(det_codes[considered])
            cost = self._cost(predicted, boxes[considered], gate, young, apart, self._obs[:, :2])
            # Both stages in one compiled call, unless a subclass swaps the matching step.
            compiled_assign = type(self)._assign is ByteTracker._assign
            if compiled_assign:
                det_of_track = kernels.detections_of_columns(
                    kernels.byte_stages(cost, is_high, seen_last_frame, COST_LIMIT, TIE, FORBIDDEN), considered
                )
            else:
                det_of_track = np.full(n_tracks, -1, dtype=np.intp)
                if high_idx.size:
                    rows, cols = self._assign(cost[:, is_high], COST_LIMIT)
                    det_of_track[rows] = high_idx[cols]
                # ByteTrack's second stage: weak boxes only extend tracks seen on the previous frame.
                candidates = ((det_of_track < 0) & seen_last_frame).nonzero()[0]
                if candidates.size and low_idx.size:
                    rows, cols = self._assign(cost[np.ix_(candidates, (~is_high).nonzero()[0])], COST_LIMIT)
                    det_of_track[candidates[rows]] = low_idx[cols]
            # high boxes no track took; unmatched tracks lost before this frame, and those lost for a while
            unmatched_high, lost, lost_long = kernels.leftovers(
                det_of_track, seen_last_frame, self._since_obs, high_idx, len(scores), PATH_MIN_GAP
            )
            # OC-SORT's recovery stage: a track whose prediction drifted (it stopped, or turned while
            # unseen) may still overlap a detection with its last observed box.
            if lost.size and unmatched_high.size and type(self)._iou is ByteTracker._iou and compiled_assign:
                unmatched_high, lost_long = kernels.recover_by_overlap(
                    self._obs, lost, boxes, unmatched_high, _NONE_BOOL_2D if apart is None else apart, considered,
                    det_of_track, lost_long, kalman.MIN_SIZE, 1.0 - cfg.match_iou + 1e-9, TIE, FORBIDDEN,
                )
            elif lost.size and unmatched_high.size:
                last_boxes = kalman.states_to_boxes(self._obs[lost])
                iou = self._iou(last_boxes, boxes[unmatched_high])
                if apart is not None:
                    iou[apart[np.ix_(lost, np.searchsorted(considered, unmatched_high))]] = 0.0
                rows, cols = self._assign(1.0 - iou, 1.0 - cfg.match_iou + 1e-9)
                if rows.size:
                    det_of_track[lost[rows]] = unmatched_high[cols]
                    unmatched_high = np.delete(unmatched_high, cols)
                    lost_long = lost_long[det_of_track[lost_long] < 0]
            # Recovery along the path: a moving object hidden for several frames (behind a bus, far
            # from the camera) comes out short of its constant-velocity prediction and smaller or
            # larger than when it was lost (perspective), outside both gates above.
            lost = lost_long
            if lost.size and unmatched_high.size:
                cost = self._path_cost(lost, mean, boxes[unmatched_high])
                if apart is not None:
                    cost[apart[np.ix_(lost, np.searchsorted(considered, unmatched_high))]] = COST_LIMIT + 1.0
                rows, cols = self._assign(cost, COST_LIMIT)
                det_of_track[lost[rows]] = unmatched_high[cols]
                unmatched_high = np.delete(unmatched_high, cols)

            # The Kalman correction; and observation-centric velocity: a track seen once, or re-found after a
            # gap, takes the velocity its two last observations imply (the filter alone needs several frames
            # to learn it, during which a fast object outruns its prediction).
            kernels.correct_matched(mean, cov, self._obs, self._since_obs, tracks.hits, det_of_track, boxes,
                                    kalman.STD_POSITION**2, kalman.MIN_SIZE, REFOUND_GAP)

        keep = tracks.step(det_of_track, detections, scores, cfg.min_hits, cfg.max_age, cfg.tentative_max_age,
                           codes=det_codes)
        if not keep.all():
            tracks.keep(keep)
            mean = mean[keep]
            cov = cov[keep]
            self._obs = self._obs[keep]
            self._since_obs = self._since_obs[keep]

        starters = unmatched_high[scores[unmatched_high] >= cfg.new_track_score]
        if starters.size:
            starters = self._without_duplicates(starters, det_of_track[det_of_track >= 0], boxes, scores, detections)
        if starters.size:
            measured = kalman.boxes_to_measurements(boxes[starters])
            new_mean, new_cov = kalman.initiate(measured)
            mean = np.concatenate([mean, new_mean])
            cov = np.concatenate([cov, new_cov])
            self._obs = np.concatenate([self._obs, measured])
            self._since_obs = np.concatenate([self._since_obs, np.zeros(starters.size)])
            tracks.add(self._next_id, [detections[i] for i in starters.tolist()], cfg.min_hits <= 1,
                       codes=det_codes[starters], scores=scores[starters])
            self._next_id += starters.size

        self._mean = mean
        self._cov = cov
        return self._snapshot(t)

    def _apart(self, det_codes: IntArray) -> npt.NDArray[np.bool_] | None:
        """(tracks, detections of these class codes): pairs whose classes lie in different `class_groups`
        (never matched); None when no pair does."""
        if not self._group_of or not det_codes.size:
            return None
        n_names = len(self._tracks.names)
        if self._group_code.size < n_names:  # classes seen for the first time
            group_of = self._group_of
            more = [group_of.get(c, -1) for c in self._tracks.names[self._group_code.size:]]
            self._group_code = np.concatenate([self._group_code, np.array(more, dtype=np.intp)])
        apart, found = kernels.apart_pairs(self._tracks.cls, det_codes, self._group_code)
        return apart if found else None

    def _path_cost(self, lost: IntArray, mean: FloatArray, boxes: FloatArray) -> FloatArray:
        """Cost in [0, 1) of pairs (lost moving track, detection) where the detection lies on the track's
        path: along its velocity from its last observed box, between PATH_ALONG of the way to its
        prediction, at most PATH_LATERAL box sizes to the side, and of a size within PATH_SIZE_RATIO."""
        obs = self._obs[lost]
        travel = mean[lost, 4:6] * self._since_obs[lost, None]  # predicted move since the last sighting
        size = np.maximum(0.5 * (obs[:, 2] + obs[:, 3]), 1.0)
        # a still track, or one predicted to move less than its size, is the other stages' business
        length = np.hypot(travel[:, 0], travel[:, 1])
        moving = length >= size
        det = kalman.boxes_to_measurements(boxes)
        dx = det[None, :, 0] - obs[:, None, 0]
        dy = det[None, :, 1] - obs[:, None, 1]
        ux = (travel[:, 0] / np.maximum(length, 1e-9))[:, None]
        uy = (travel[:, 1] / np.maximum(length, 1e-9))[:, None]
        along = (dx * ux + dy * uy) / np.maximum(length, 1e-9)[:, None]
        det_size = np.maximum(0.5 * (det[:, 2] + det[:, 3]), 1.0)[None, :]
        lateral = np.abs(dx * uy - dy * ux) / np.minimum(size[:, None], det_size)
        ratio = np.maximum(size[:, None] / det_size, det_size / size[:, None])
        lo, hi = PATH_ALONG
        allowed = moving[:, None] & (along >= lo) & (along <= hi)
        allowed &= (lateral <= PATH_LATERAL) & (ratio <= PATH_SIZE_RATIO)
        cost: FloatArray = 0.5 * np.minimum(lateral / PATH_LATERAL, 1.0) + 0.5 * np.minimum(np.abs(1.0 - along), 1.0)
        cost = np.minimum(cost, 0.999)
        cost[~allowed] = COST_LIMIT + 1.0
        return cost

    def _cost(
        self, predicted: FloatArray, boxes: FloatArray, gate: FloatArray, young: npt.NDArray[np.bool_] | None = None,
        apart: npt.NDArray[np.bool_] | None = None, origin: FloatArray | None = None,
    ) -> FloatArray:
        """Association cost in [0, 1) of every (track, detection) pair, COST_LIMIT + 1 where forbidden.

        A pair may match when the boxes overlap (IoU >= match_iou) or when the detection's centre lies
        within the track's gate, measured in box sizes, with a similar size. IoU alone loses objects
        that move more than about half their size between analysed frames (fast vehicles near the
        camera at 5 fps); distance alone confuses neighbours in a crowd, so both count in the cost.

        With `origin` (each track's last observed centre), the distance is measured to the last
        `1 - PATH_ALONG[0]` of the predicted move instead of its end: a vehicle driving away from the
        camera slows down in the picture from frame to frame (perspective), and one braking falls short
        of its prediction, never ahead of it. `apart` marks pairs that may never match.
        """
        cfg = self.config
        n, m = predicted.shape[0], boxes.shape[0]
        if n == 0 or m == 0:
            return np.zeros((n, m))
        # the IoU is computed in the kernel unless a subclass swaps `_iou` (the benchmark's baseline does)
        iou = _NONE_2D if type(self)._iou is ByteTracker._iou else self._iou(predicted, boxes)
        with_frame = self._frame_size is not None and young is not None
        frame_w, frame_h = (float(self._frame_size[0]), float(self._frame_size[1])) if self._frame_size else (0.0, 0.0)
        cost: FloatArray = kernels.cost_matrix(
            predicted, boxes, iou, gate, young if young is not None else np.zeros(n, dtype=bool),
            _NONE_BOOL_2D if apart is None else apart, _NONE_XY if origin is None else origin,
            with_frame, frame_w, frame_h, EDGE_SHARE, 1.0 - PATH_ALONG[0], GATE_MARGIN, cfg.match_iou,
            cfg.max_size_ratio, COST_LIMIT + 1.0,
        )
        return cost

    def _without_duplicates(
        self, starters: IntArray, matched: IntArray, boxes: FloatArray, scores: FloatArray,
        detections: Sequence[Detection],
    ) -> IntArray:
        """Starters minus vehicle boxes nested in the box of a large vehicle (`duplicate_classes`,
        matched this frame or a stronger starter): the rear of a bus boxed besides the whole bus is
        not a second vehicle."""
        cfg = self.config
        outer = frozenset(cfg.duplicate_classes)
        if not outer:
            return starters
        in_group = [i for i in starters.tolist() if detections[i].cls in RIGID_VEHICLES]
        if not in_group:
            return starters
        others = [i for i in matched.tolist() if detections[i].cls in outer]
        dropped: set[int] = set()
        for i in sorted(in_group, key=lambda i: -scores[i]):
            if others:
                b = boxes[i]
                o = boxes[others]
                iw = np.clip(np.minimum(o[:, 2], b[2]) - np.maximum(o[:, 0], b[0]), 0.0, None)
                ih = np.clip(np.minimum(o[:, 3], b[3]) - np.maximum(o[:, 1], b[1]), 0.0, None)
                area = max((b[2] - b[0]) * (b[3] - b[1]), 1e-9)
                # The part of a vehicle (its rear, its front) stands on the same ground as the whole
                # and ends where it ends; a vehicle behind another one, whose box may also lie
                # inside, stands higher in the picture.
                ow, oh = o[:, 2] - o[:, 0], o[:, 3] - o[:, 1]
                same_ground = np.abs(o[:, 3] - b[3]) <= DUPLICATE_EDGE * oh
                same_end = (np.abs(o[:, 0] - b[0]) <= DUPLICATE_EDGE * ow) | (np.abs(o[:, 2] - b[2]) <= DUPLICATE_EDGE * ow)
                if (((iw * ih) / area >= cfg.duplicate_overlap) & same_ground & same_end).any():
                    dropped.add(i)
                    continue
            if detections[i].cls in outer:
                others.append(i)
        if not dropped:
            return starters
        return np.array([i for i in starters.tolist() if i not in dropped], dtype=np.intp)

    def predicted_boxes(self, t: float, *, established_only: bool = True) -> FloatArray:
        """(N, 4) area each live track sweeps from its last box to the one predicted at `t`
        (their bounding box), without changing the tracker.

        With `established_only`, only confirmed tracks detected on their last frame: the ones
        whose motion the motion gate may leave to the Kalman filter.
        """
        if not len(self._tracks) or not math.isfinite(t):
            return np.zeros((0, 4))
        if established_only:
            keep = self._tracks.confirmed & (self._tracks.misses == 0)
            if not keep.any():
                return np.zeros((0, 4))
            mean, cov = self._mean[keep], self._cov[keep]
        else:
            mean, cov = self._mean, self._cov
        step = 1.0
        if self._last_t is not None and self._nominal_dt:
            step = min(max(t - self._last_t, 0.0) / self._nominal_dt, MAX_STEP)
        now = kalman.states_to_boxes(mean)
        then = kalman.states_to_boxes(kalman.predict(mean, cov, step, self.config.velocity_noise)[0])
        return np.concatenate([np.minimum(now[:, :2], then[:, :2]), np.maximum(now[:, 2:], then[:, 2:])], axis=1)

    def coast(self, t: float) -> list[Track]:
        """Advance every track to `t` by prediction alone, on a frame the detector did not see.

        Not a missed frame: no track ages out, misses a frame or is confirmed; the next
        `update` corrects the predictions. Returns the live tracks as `update` does.
        """
        step = self._steps_since_last(t)
        _, self._mean, self._cov = self._predict(step)
        self._since_obs += step
        return self._snapshot(t)

    def _predict(self, step: float) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray]:
        """Every track moved `step` frames forward: (seen on the last frame, means, covariances)."""
        seen_last_frame = self._tracks.misses == 0
        if seen_last_frame.size:
            # A lost track keeps moving but stops growing or shrinking.
            self._mean[~seen_last_frame, 6:8] = 0.0
        mean, cov = kalman.predict(self._mean, self._cov, step, self.config.velocity_noise)
        return seen_last_frame, mean, cov

    def _snapshot(self, t: float) -> list[Track]:
        if not len(self._tracks):
            self._columns = None
            return []
        # tuples zipped from columns: cheaper than a tuple made of each row's list
        per_second = 1.0 / self._nominal_dt if self._nominal_dt else 0.0
        box_array, rows = kernels.boxes_and_velocities(self._mean, per_second, kalman.MIN_SIZE)
        x1, y1, x2, y2, vx, vy = rows.tolist()
        boxes: list[tuple[float, float, float, float]] = list(zip(x1, y1, x2, y2, strict=True))
        velocities: list[tuple[float, float]] = list(zip(vx, vy, strict=True))
        # New tracks are appended with increasing ids, so the list is already sorted by id.
        tracks, self._columns = self._tracks.snapshot(t, boxes, velocities, box_array)
        return tracks

    @property
    def columns(self) -> TrackColumns | None:
        """The tracks the last `update` or `coast` returned, as columns (for `FrameTracks.columns`);
        None when it returned none."""
        return self._columns

    def _assign(self, cost: FloatArray, cost_limit: float) -> tuple[IntArray, IntArray]:
        """Matching step; a subclass may swap it (the benchmark's greedy baseline does)."""
        return linear_assignment(cost, cost_limit)

    def _iou(self, a: FloatArray, b: FloatArray) -> FloatArray:
        """Overlap step; a subclass may swap it (the benchmark's pure-Python baseline does)."""
        return iou_matrix(a, b)

    @property
    def live_count(self) -> int:
        """Number of live tracks (tentative, confirmed and lost)."""
        return len(self._tracks)
