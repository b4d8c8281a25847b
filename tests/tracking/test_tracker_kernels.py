"""The tracker's compiled kernels against the numpy code they replaced (kept here as the reference):
the same values, bit for bit, on random inputs that reach every branch."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from assignment_reference import reference_linear_assignment

from smartcity.core.vision import Detection
from smartcity.tracking import ByteTracker, kalman, kernels
from smartcity.tracking.assignment import FORBIDDEN, TIE, iou_matrix
from smartcity.tracking.byte_tracker import COST_LIMIT, EDGE_SHARE, GATE_MARGIN, PATH_ALONG, STILL_SPEED
from smartcity.tracking.config import TrackerConfig
from smartcity.tracking.kalman import MIN_SIZE, PP, PV, STD_POSITION, STD_VELOCITY, VV

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MATCH_IOU, MAX_SIZE_RATIO = 0.3, 2.0


# ------------------------------------------------------------------ references (the numpy code before the kernels)


def _ref_edge_cut(predicted: FloatArray, boxes: FloatArray, axis: int, size: int, delta: FloatArray,
                  ratio: FloatArray, p_size: FloatArray, d_size: FloatArray, young: BoolArray) -> None:
    lo, hi = axis, axis + 2
    edge = EDGE_SHARE * size
    rows = young.nonzero()[0]
    pred = predicted[rows]
    p_low = pred[:, lo] <= edge
    p_high = pred[:, hi] >= size - edge
    if not (p_low.any() or p_high.any()):
        return
    low = p_low[:, None] | (boxes[:, lo] <= edge)[None, :]
    high = p_high[:, None] | (boxes[:, hi] >= size - edge)[None, :]
    extent = np.maximum(p_size[rows], d_size)
    by_high = (boxes[None, :, hi] - pred[:, None, hi]) / extent
    by_low = (boxes[None, :, lo] - pred[:, None, lo]) / extent
    delta[rows] = np.where(low & ~high, by_high, np.where(high & ~low, by_low, delta[rows]))
    ratio[rows] = np.where(low | high, 1.0, ratio[rows])


def _ref_cost(predicted: FloatArray, boxes: FloatArray, gate: FloatArray, young: BoolArray,
              apart: BoolArray | None, origin: FloatArray | None, frame_size: tuple[int, int] | None) -> FloatArray:
    iou = iou_matrix(predicted, boxes)
    pw = np.maximum(predicted[:, 2] - predicted[:, 0], 1.0)[:, None]
    ph = np.maximum(predicted[:, 3] - predicted[:, 1], 1.0)[:, None]
    dw = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)[None, :]
    dh = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)[None, :]
    ox = boxes[None, :, 0] + boxes[None, :, 2] - predicted[:, None, 0] - predicted[:, None, 2]
    oy = boxes[None, :, 1] + boxes[None, :, 3] - predicted[:, None, 1] - predicted[:, None, 3]
    if origin is not None:
        bx = predicted[:, 0] + predicted[:, 2] - 2.0 * origin[:, 0]
        by = predicted[:, 1] + predicted[:, 3] - 2.0 * origin[:, 1]
        back = ox * bx[:, None]
        back += oy * by[:, None]
        back *= (-1.0 / np.maximum(bx * bx + by * by, 1e-9))[:, None]
        np.maximum(back, 0.0, out=back)
        np.minimum(back, 1.0 - PATH_ALONG[0], out=back)
        ox += back * bx[:, None]
        oy += back * by[:, None]
    dx = ox / (pw + dw)
    dy = oy / (ph + dh)
    rw = np.maximum(pw / dw, dw / pw)
    rh = np.maximum(ph / dh, dh / ph)
    if frame_size is not None and young.any():
        _ref_edge_cut(predicted, boxes, 0, frame_size[0], dx, rw, pw, dw, young)
        _ref_edge_cut(predicted, boxes, 1, frame_size[1], dy, rh, ph, dh, young)
    limit = (GATE_MARGIN * gate)[:, None]
    rows, cols = ((np.abs(dx) <= limit) & (np.abs(dy) <= limit)).nonzero()
    distance = np.full(dx.shape, 2.0)
    distance[rows, cols] = np.hypot(dx[rows, cols], dy[rows, cols]) / gate[rows]
    ratio = np.maximum(rw, rh)
    allowed = (iou >= MATCH_IOU) | ((distance <= 1.0) & (ratio <= MAX_SIZE_RATIO))
    if apart is not None:
        allowed &= ~apart
    cost: FloatArray = 0.5 * (1.0 - iou) + 0.5 * np.minimum(distance, 1.0)
    cost[~allowed] = COST_LIMIT + 1.0
    return cost


def _ref_scale2(wh: FloatArray) -> FloatArray:
    out = np.empty((wh.shape[0], 4))
    np.maximum(wh, 1.0, out=out[:, 0:2])
    out[:, 2:4] = out[:, 0:2]
    out *= out
    return out


def _ref_predict(mean: FloatArray, cov: FloatArray, dt: float, std_velocity: float) -> tuple[FloatArray, FloatArray]:
    scale2 = _ref_scale2(mean[:, 2:4])
    new_mean = mean.copy()
    new_mean[:, :4] += dt * mean[:, 4:]
    np.maximum(new_mean[:, 2:4], MIN_SIZE, out=new_mean[:, 2:4])
    pp, pv, vv = cov[:, PP], cov[:, PV], cov[:, VV]
    new_cov = np.empty_like(cov)
    new_pv = new_cov[:, PV]
    np.add(pv, dt * vv, out=new_pv)
    new_pp = new_cov[:, PP]
    np.multiply(pv + new_pv, dt, out=new_pp)
    new_pp += pp
    noise = max(dt, 0.0)
    new_pp += (STD_POSITION**2 * noise) * scale2
    np.multiply(scale2, std_velocity**2 * noise, out=new_cov[:, VV])
    new_cov[:, VV] += vv
    return new_mean, new_cov


def _ref_update(mean: FloatArray, cov: FloatArray, measurements: FloatArray) -> tuple[FloatArray, FloatArray]:
    scale2 = _ref_scale2(mean[:, 2:4])
    pp, pv = cov[:, PP], cov[:, PV]
    s = pp + STD_POSITION**2 * scale2
    gain_p, gain_v = pp / s, pv / s
    innovation = measurements - mean[:, :4]
    new_mean = np.empty_like(mean)
    np.multiply(gain_p, innovation, out=new_mean[:, :4])
    np.multiply(gain_v, innovation, out=new_mean[:, 4:])
    new_mean += mean
    np.maximum(new_mean[:, 2:4], MIN_SIZE, out=new_mean[:, 2:4])
    new_cov = np.empty_like(cov)
    np.multiply(gain_p, pp, out=new_cov[:, PP])
    np.multiply(gain_p, pv, out=new_cov[:, PV])
    np.multiply(gain_v, pv, out=new_cov[:, VV])
    np.subtract(cov, new_cov, out=new_cov)
    return new_mean, new_cov


# ------------------------------------------------------------------ random inputs


def _boxes(rng: np.random.Generator, n: int, width: float, height: float) -> FloatArray:
    """Boxes anywhere in (and a little beyond) the frame, some thin or empty, some on its edges."""
    w = rng.uniform(0.0, 160.0, n)
    h = rng.uniform(0.0, 160.0, n)
    w[rng.random(n) < 0.05] = 0.5  # thinner than a pixel: sizes clamp to 1
    x1 = rng.uniform(-40.0, width, n)
    y1 = rng.uniform(-40.0, height, n)
    at_edge = rng.random(n) < 0.2
    right = rng.random(n) < 0.5
    x1[at_edge & ~right] = 0.0
    x1[at_edge & right] = width - w[at_edge & right] - 0.5 * rng.random(int((at_edge & right).sum()))
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)


def _near(rng: np.random.Generator, boxes: FloatArray, m: int) -> FloatArray:
    """Detections: jittered and moved copies of some of `boxes` (so that pairs match) plus strangers."""
    base = boxes[rng.integers(0, len(boxes), m)] if len(boxes) else np.zeros((m, 4))
    moved = base + rng.normal(0.0, 15.0, (m, 1)) + rng.normal(0.0, 3.0, (m, 4))
    stranger = rng.random(m) < 0.3
    moved[stranger] = _boxes(rng, int(stranger.sum()), 640.0, 480.0)
    return moved


@pytest.mark.parametrize("seed", range(40))
def test_cost_matrix_equals_the_numpy_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    frame = (640, 480)
    predicted = _boxes(rng, n, *frame)
    boxes = _near(rng, predicted, m)
    gate = rng.uniform(0.2, 2.5, n)
    young = rng.random(n) < 0.4
    apart = rng.random((n, m)) < 0.2 if seed % 2 else None
    origin = (predicted[:, :2] + predicted[:, 2:]) / 2 + rng.normal(0.0, 30.0, (n, 2)) if seed % 3 else None
    with_frame = seed % 5 != 0
    expected = _ref_cost(predicted, boxes, gate, young, apart, origin, frame if with_frame else None)
    got = kernels.cost_matrix(
        predicted, boxes, np.zeros((0, 0)), gate, young, apart if apart is not None else np.zeros((0, 0), dtype=bool),
        origin if origin is not None else np.zeros((0, 2)), with_frame, float(frame[0]), float(frame[1]),
        EDGE_SHARE, 1.0 - PATH_ALONG[0], GATE_MARGIN, MATCH_IOU, MAX_SIZE_RATIO, COST_LIMIT + 1.0,
    )
    np.testing.assert_array_equal(got, expected)
    # the inputs reach both outcomes: some pairs allowed, some not
    assert (expected < COST_LIMIT).any() or n * m < 4
    # an IoU handed in (a subclass's own overlap) is used as given
    given = kernels.cost_matrix(
        predicted, boxes, iou_matrix(predicted, boxes), gate, young, np.zeros((0, 0), dtype=bool), np.zeros((0, 2)),
        False, 0.0, 0.0, EDGE_SHARE, 1.0 - PATH_ALONG[0], GATE_MARGIN, MATCH_IOU, MAX_SIZE_RATIO, COST_LIMIT + 1.0,
    )
    np.testing.assert_array_equal(given, _ref_cost(predicted, boxes, gate, young, None, None, None))


def test_edge_cuts_change_the_cost_of_young_tracks_only() -> None:
    # a track entering from the left edge and its detection grown from that edge (IoU 0.25, four times
    # as wide): seen once, only its inner edge counts and no width ratio, so the pair matches; an
    # established track's does not
    predicted = np.array([[0.0, 100.0, 15.0, 160.0], [0.0, 300.0, 15.0, 360.0]])
    boxes = np.array([[0.0, 100.0, 60.0, 160.0], [0.0, 300.0, 60.0, 360.0]])
    young = np.array([True, False])
    gate = np.full(2, 1.0)
    args = (np.zeros((0, 0), dtype=bool), np.zeros((0, 2)), True, 640.0, 480.0, EDGE_SHARE, 1.0 - PATH_ALONG[0],
            GATE_MARGIN, MATCH_IOU, MAX_SIZE_RATIO, COST_LIMIT + 1.0)
    cost = kernels.cost_matrix(predicted, boxes, np.zeros((0, 0)), gate, young, *args)
    assert cost[0, 0] < COST_LIMIT
    assert cost[1, 1] == COST_LIMIT + 1.0
    np.testing.assert_array_equal(cost, _ref_cost(predicted, boxes, gate, young, None, None, (640, 480)))


@pytest.mark.parametrize("seed", range(20))
def test_kalman_steps_equal_the_numpy_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    mean = np.concatenate([rng.uniform(0, 500, (n, 2)), rng.uniform(-5, 80, (n, 2)), rng.normal(0, 4, (n, 4))], axis=1)
    cov = rng.uniform(0.1, 50.0, (n, 3, 4))
    dt = float(rng.choice([1.0, 0.5, 2.7, 10.0, -1.0]))
    std_velocity = float(rng.choice([STD_VELOCITY, 0.02]))
    for got, want in zip(kalman.predict(mean, cov, dt, std_velocity), _ref_predict(mean, cov, dt, std_velocity)):
        np.testing.assert_array_equal(got, want)
    measurements = mean[:, :4] + rng.normal(0, 5, (n, 4))
    for got, want in zip(kalman.update(mean, cov, measurements), _ref_update(mean, cov, measurements)):
        np.testing.assert_array_equal(got, want)
    # rows taken out of larger arrays (not contiguous) give the same values
    rows = np.arange(0, n, 2)
    for got, want in zip(kalman.update(mean[rows], cov[rows], measurements[rows]),
                         _ref_update(mean[rows], cov[rows], measurements[rows])):
        np.testing.assert_array_equal(got, want)


def _ref_gates(last_mean: FloatArray, since_obs: FloatArray, hits: np.ndarray) -> tuple[FloatArray, BoolArray]:
    cfg = TrackerConfig()
    since = np.maximum(since_obs, 1.0)
    once = hits == 1
    unknown = np.minimum(cfg.new_track_distance * since, 3.0 * cfg.new_track_distance)
    size = np.maximum(last_mean[:, 2:4], 1.0)
    moving = np.hypot(last_mean[:, 4] / size[:, 0], last_mean[:, 5] / size[:, 1]) > STILL_SPEED
    grown = np.where(moving, cfg.match_distance * np.sqrt(since), cfg.still_distance)
    return np.minimum(np.where(once, unknown, grown), 3.0 * cfg.new_track_distance), once


def _states(rng: np.random.Generator, n: int) -> FloatArray:
    speed = rng.normal(0, 4, (n, 4)) * (rng.random((n, 1)) < 0.7)  # some still
    return np.concatenate([rng.uniform(0, 500, (n, 2)), rng.uniform(-5, 80, (n, 2)), speed], axis=1)


@pytest.mark.parametrize("seed", range(20))
def test_association_inputs_equal_the_numpy_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    last_mean = _states(rng, n)
    mean = kalman.predict(last_mean, rng.uniform(0.1, 50.0, (n, 3, 4)), 1.0)[0]
    since_obs = rng.choice([1.0, 2.0, 3.5, 7.0], n)
    hits = rng.integers(1, 4, n)
    cfg = TrackerConfig()
    predicted, gate, once = kernels.association_inputs(
        mean, last_mean, since_obs, hits, MIN_SIZE, cfg.new_track_distance, cfg.match_distance, cfg.still_distance,
        STILL_SPEED,
    )
    np.testing.assert_array_equal(predicted, kalman.states_to_boxes(mean))
    want_gate, want_once = _ref_gates(last_mean, since_obs, hits)
    np.testing.assert_array_equal(gate, want_gate)
    np.testing.assert_array_equal(once, want_once)
    assert len(set(gate.tolist())) > 2 or n < 6  # moving, still and young tracks among them


@pytest.mark.parametrize("seed", range(20))
def test_correct_matched_equals_the_numpy_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 60)), int(rng.integers(1, 60))
    mean, cov = _states(rng, n), rng.uniform(0.1, 50.0, (n, 3, 4))
    obs = mean[:, :4] + rng.normal(0, 10, (n, 4))
    since_obs = rng.choice([1.0, 2.0, 3.5], n)
    hits = rng.integers(1, 4, n)
    boxes = _boxes(rng, m, 640.0, 480.0)
    det_of_track = np.full(n, -1, dtype=np.intp)
    took = rng.permutation(n)[: min(n, m) // 2 + 1]
    det_of_track[took] = rng.permutation(m)[: len(took)]
    # the reference: the tracker's numpy code before the kernel
    want_mean, want_cov, want_obs, want_since = mean.copy(), cov.copy(), obs.copy(), since_obs.copy()
    matched = np.flatnonzero(det_of_track >= 0)
    measured = kalman.boxes_to_measurements(boxes[det_of_track[matched]])
    want_mean[matched], want_cov[matched] = _ref_update(want_mean[matched], want_cov[matched], measured)
    since, h = want_since[matched], hits[matched]
    reset = (h == 1) | (since > 1.5)
    k = matched[reset]
    want_mean[k, 4:6] = (measured[reset, :2] - want_obs[k, :2]) / since[reset, None]
    want_mean[k[h[reset] == 1], 6:8] = 0.0
    want_obs[matched] = measured
    want_since[matched] = 0.0
    kernels.correct_matched(mean, cov, obs, since_obs, hits, det_of_track, boxes, STD_POSITION**2, MIN_SIZE, 1.5)
    for got, want in ((mean, want_mean), (cov, want_cov), (obs, want_obs), (since_obs, want_since)):
        np.testing.assert_array_equal(got, want)


def _two_stages(cost: FloatArray, is_high: BoolArray, seen: BoolArray) -> np.ndarray:
    """The tracker's two stages through the pure-Python reference of linear_assignment (scipy's solver
    on the groups): the column of each track after both."""
    col = np.full(cost.shape[0], -1, dtype=np.intp)
    high_cols, low_cols = np.flatnonzero(is_high), np.flatnonzero(~is_high)
    if high_cols.size:
        rows, cols = reference_linear_assignment(cost[:, is_high], COST_LIMIT)
        col[rows] = high_cols[cols]
    candidates = np.flatnonzero((col < 0) & seen)
    if candidates.size and low_cols.size:
        rows, cols = reference_linear_assignment(cost[np.ix_(candidates, low_cols)], COST_LIMIT)
        col[candidates[rows]] = low_cols[cols]
    return col


def test_byte_stages_equal_the_two_assignments_of_the_reference() -> None:
    solved = 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        n, m = int(rng.integers(0, 25)), int(rng.integers(0, 25))
        cost = rng.random((n, m))
        if seed % 3 == 0:
            cost = np.round(cost * 4) / 4  # equal costs: ties, which only the solver settles
        cost[rng.random((n, m)) < rng.uniform(0.5, 0.95)] = COST_LIMIT + 1.0
        is_high, seen = rng.random(m) < 0.6, rng.random(n) < 0.8
        col = kernels.byte_stages(cost, is_high, seen, COST_LIMIT, TIE, FORBIDDEN)
        np.testing.assert_array_equal(col, _two_stages(cost, is_high, seen))
        if n and m:
            solved += (
                kernels.sparse_assignment(np.ascontiguousarray(cost[:, is_high]), COST_LIMIT, TIE)[2] > 0
            )
    assert solved >= 10  # the solver's groups were reached, not only the enumerated ones


@pytest.mark.parametrize("seed", range(30))
def test_recover_by_overlap_equals_the_numpy_stage(seed: int) -> None:
    """OC-SORT's recovery stage in one kernel against the code it replaced: last observed boxes, IoU
    matrix, pairs of apart classes cleared, the reference assignment on 1 - IoU, then the leftovers."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    obs = _states(rng, n)[:, :4]
    obs[rng.random(n) < 0.1, 2] = 0.0  # sizes under MIN_SIZE
    boxes = _near(rng, kalman.states_to_boxes(obs), m)
    considered = np.sort(rng.choice(m, size=int(rng.integers(1, m + 1)), replace=False)).astype(np.intp)
    free = considered[rng.random(len(considered)) < 0.7]
    lost = np.flatnonzero(rng.random(n) < 0.6).astype(np.intp)
    path = lost[rng.random(len(lost)) < 0.5]
    apart = rng.random((n, len(considered))) < 0.2 if seed % 2 else np.zeros((0, 0), dtype=bool)
    limit = 1.0 - 0.3 + 1e-9
    want = np.full(n, -1, dtype=np.intp)
    want_free, want_path = free.copy(), path.copy()
    if len(lost) and len(free):
        iou = iou_matrix(kalman.states_to_boxes(obs[lost]), boxes[free])
        if apart.size:
            iou[apart[np.ix_(lost, np.searchsorted(considered, free))]] = 0.0
        rows, cols = reference_linear_assignment(1.0 - iou, limit)
        want[lost[rows]] = free[cols]
        want_free = np.delete(free, cols)
        want_path = path[want[path] < 0]
    got = np.full(n, -1, dtype=np.intp)
    got_free, got_path = kernels.recover_by_overlap(
        obs, lost, boxes, free, apart, considered, got, path, MIN_SIZE, limit, TIE, FORBIDDEN
    )
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_free, want_free)
    np.testing.assert_array_equal(got_path, want_path)


def test_warm_up_compiles_what_the_tracker_calls() -> None:
    """After warm_up, a tracker running a scene (births, matches, misses, objects leaving the picture)
    compiles nothing more: the types warm_up passes are the tracker's."""
    kernels.warm_up()
    public = {name: getattr(kernels, name) for name in dir(kernels) if not name.startswith("_")}
    compiled = {name: set(fn.signatures) for name, fn in public.items() if hasattr(fn, "signatures")}
    assert compiled and all(compiled.values())
    rng = np.random.default_rng(5)
    tracker = ByteTracker()
    pos = rng.uniform(50.0, 600.0, (12, 2))
    vel = rng.normal(0.0, 8.0, (12, 2))
    for f in range(40):
        pos += vel
        dets = [Detection((x - 20.0, y - 20.0, x + 20.0, y + 20.0), "car", float(rng.uniform(0.2, 0.95)))
                for x, y in pos if rng.random() > 0.1]
        tracker.update(dets, f / 10.0, (640, 480))
    assert tracker.live_count > 0
    assert {name: set(public[name].signatures) for name in compiled} == compiled
