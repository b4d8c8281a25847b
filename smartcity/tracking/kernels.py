"""Compiled (numba) kernels of the tracker's per-frame arithmetic: association cost, the sparse part
of the assignment, and the Kalman predict / correct steps.

Each kernel performs the same IEEE operations, in the same order, as the numpy code it replaces
(kept beside the tests as the reference), so the tracker's output is unchanged bit for bit; what
goes is the per-call overhead of a few dozen small numpy operations per frame, which dominated a
frame of 50 tracks. Compiled on first use and cached on disk (`cache=True`: beside this module,
or in numba's per-user cache when the package directory is read-only, as in a Ray worker's
runtime environment).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _box_iou(
    ax1: float, ay1: float, ax2: float, ay2: float, area_a: float, bx1: float, by1: float, bx2: float, by2: float
) -> float:
    """IoU of box a (its area given) and box b, as assignment.iou_matrix computes it for one pair (no
    overlap or an empty union: 0)."""
    iw = max(min(ax2, bx2) - max(ax1, bx1), 0.0)
    ih = max(min(ay2, by2) - max(ay1, by1), 0.0)
    inter = iw * ih
    if inter == 0.0:
        return 0.0
    union = area_a + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0.0 else 0.0


@njit(cache=True, nogil=True)
def cost_matrix(  # noqa: PLR0913 - one flat call: every argument is one of the cost's inputs
    predicted: np.ndarray, boxes: np.ndarray, iou_in: np.ndarray, gate: np.ndarray, young: np.ndarray,
    apart: np.ndarray, origin: np.ndarray, with_frame: bool, frame_w: float, frame_h: float, edge_share: float,
    along_short: float, gate_margin: float, match_iou: float, max_size_ratio: float, forbidden: float,
) -> np.ndarray:
    """The tracker's association cost (see ByteTracker._cost) of every (track, detection) pair.

    `iou_in`: the IoU matrix, or a (0, 0) array to compute it here. `apart`: (N, M) pairs never
    matched, or (0, 0) for none. `origin`: (N, 2) last observed centres, or (0, 2) to measure to the
    prediction itself. `with_frame`: the frame's size is known (edge cuts for `young` tracks, those seen
    once). Forbidden pairs cost `forbidden`."""
    n, m = predicted.shape[0], boxes.shape[0]
    cost = np.empty((n, m))
    with_iou = iou_in.shape[0] == n and iou_in.shape[1] == m and n > 0
    with_apart = apart.shape[0] == n and apart.shape[1] == m and n > 0
    with_origin = origin.shape[0] == n and n > 0
    edge_x = edge_share * frame_w
    edge_y = edge_share * frame_h
    cut_x = with_frame and _young_at_edge(predicted, young, 0, frame_w, edge_x)
    cut_y = with_frame and _young_at_edge(predicted, young, 1, frame_h, edge_y)
    for i in range(n):
        p0, p1, p2, p3 = predicted[i, 0], predicted[i, 1], predicted[i, 2], predicted[i, 3]
        pw = max(p2 - p0, 1.0)
        ph = max(p3 - p1, 1.0)
        area_p = (p2 - p0) * (p3 - p1)
        bx = by = scale = 0.0
        if with_origin:
            bx = p0 + p2 - 2.0 * origin[i, 0]
            by = p1 + p3 - 2.0 * origin[i, 1]
            scale = -1.0 / max(bx * bx + by * by, 1e-9)
        young_i = young[i]
        g = gate[i]
        limit = gate_margin * g
        # a pair that neither overlaps nor lies near the gate is forbidden without the divisions below:
        # the test is looser than theirs by far more than their rounding (never a pair they would allow)
        quick = match_iou > 0.0 and not (young_i and (cut_x or cut_y))
        reach = limit * (1.0 + 1e-9)
        for j in range(m):
            b0, b1, b2, b3 = boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3]
            iou = iou_in[i, j] if with_iou else _box_iou(p0, p1, p2, p3, area_p, b0, b1, b2, b3)
            dw = max(b2 - b0, 1.0)
            dh = max(b3 - b1, 1.0)
            ox = b0 + b2 - p0 - p2
            oy = b1 + b3 - p1 - p3
            if with_origin:
                back = ox * bx
                back += oy * by
                back *= scale
                back = min(max(back, 0.0), along_short)
                ox += back * bx
                oy += back * by
            if quick and iou < match_iou and (abs(ox) > reach * (pw + dw) or abs(oy) > reach * (ph + dh)):
                cost[i, j] = forbidden
                continue
            dx = ox / (pw + dw)
            dy = oy / (ph + dh)
            rw = max(pw / dw, dw / pw)
            rh = max(ph / dh, dh / ph)
            if young_i and cut_x:
                dx, rw = _edge_cut(p0, p2, b0, b2, pw, dw, frame_w, edge_x, dx, rw)
            if young_i and cut_y:
                dy, rh = _edge_cut(p1, p3, b1, b3, ph, dh, frame_h, edge_y, dy, rh)
            distance = math.hypot(dx, dy) / g if abs(dx) <= limit and abs(dy) <= limit else 2.0
            ratio = max(rw, rh)
            allowed = (iou >= match_iou) or (distance <= 1.0 and ratio <= max_size_ratio)
            if with_apart and apart[i, j]:
                allowed = False
            if allowed:
                cost[i, j] = 0.5 * (1.0 - iou) + 0.5 * min(distance, 1.0)
            else:
                cost[i, j] = forbidden
    return cost


@njit(cache=True, nogil=True)
def _young_at_edge(predicted: np.ndarray, young: np.ndarray, axis: int, size: float, edge: float) -> bool:
    """Whether a young track's prediction touches the picture's edges along `axis`: edge cuts apply to an
    axis only then (ByteTracker._edge_cut, before the kernel, returned early otherwise)."""
    for i in range(predicted.shape[0]):
        if young[i] and (predicted[i, axis] <= edge or predicted[i, axis + 2] >= size - edge):
            return True
    return False


@njit(cache=True, nogil=True, inline="always")
def _edge_cut(
    p_lo: float, p_hi: float, b_lo: float, b_hi: float, p_size: float, d_size: float, size: float, edge: float,
    delta: float, ratio: float,
) -> tuple[float, float]:
    """ByteTracker._edge_cut for one pair along one axis: (offset, size ratio)."""
    low = p_lo <= edge or b_lo <= edge
    high = p_hi >= size - edge or b_hi >= size - edge
    extent = max(p_size, d_size)
    if low and not high:
        delta = (b_hi - p_hi) / extent
    elif high and not low:
        delta = (b_lo - p_lo) / extent
    if low or high:
        ratio = 1.0
    return delta, ratio


@njit(cache=True, nogil=True)
def _find(parent: np.ndarray, x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@njit(cache=True, nogil=True)
def sparse_assignment(cost: np.ndarray, cost_limit: float, tie: float) -> tuple[np.ndarray, np.ndarray, int]:
    """The part of linear_assignment (see there) that needs no solver: pairs that are each other's only
    candidate, groups of competing pairs with one row or one column (the cheapest pair, the first on a
    tie) and groups with two rows or two columns whose best matching beats the next by `tie` or more.

    Returns (column of each row or -1, label of the group of each node left to the solver or -1, number
    of those groups), nodes being rows 0..n-1 then columns n..n+m-1; groups are labelled 0, 1, ...
    """
    n, m = cost.shape
    col_of_row, group_of, n_groups = _lone_pairs_and_groups(cost, cost_limit)
    pending = np.full(n + m, -1, dtype=np.intp)
    if n_groups == 0:
        return col_of_row, pending, 0
    n_rows = np.zeros(n_groups, dtype=np.intp)
    n_cols = np.zeros(n_groups, dtype=np.intp)
    # the first two rows and the first two columns of each group (enough for the groups solved here)
    rows2 = np.full((n_groups, 2), -1, dtype=np.intp)
    cols2 = np.full((n_groups, 2), -1, dtype=np.intp)
    for node in range(n + m):
        g = group_of[node]
        if g < 0:
            continue
        if node < n:
            if n_rows[g] < 2:
                rows2[g, n_rows[g]] = node
            n_rows[g] += 1
        else:
            if n_cols[g] < 2:
                cols2[g, n_cols[g]] = node - n
            n_cols[g] += 1
    solved = np.zeros(n_groups, dtype=np.bool_)
    for g in range(n_groups):
        if n_rows[g] == 1 or n_cols[g] == 1:
            _one_sided(cost, g, group_of, n_rows[g] == 1, rows2[g, 0], cols2[g, 0], col_of_row)
            solved[g] = True
        elif n_rows[g] == 2 or n_cols[g] == 2:
            solved[g] = _two_sided(cost, cost_limit, tie, g, group_of, n_rows[g] == 2, rows2[g, 0], rows2[g, 1],
                                   cols2[g, 0], cols2[g, 1], col_of_row)
    # the groups left to the solver, labelled 0, 1, ... in the order of their first node
    for node in range(n + m):
        g = group_of[node]
        if g >= 0 and not solved[g]:
            pending[node] = g
    return (col_of_row, *_labels_in_order(pending, n_groups))


@njit(cache=True, nogil=True)
def _labels_in_order(key: np.ndarray, n_keys: int) -> tuple[np.ndarray, int]:
    """Each node's key (0 <= key < n_keys, or -1 for none) relabelled 0, 1, ... in the order of the key's
    first node, -1 kept; and the number of labels."""
    label = np.full(n_keys, -1, dtype=np.intp)
    out = np.full(key.shape[0], -1, dtype=np.intp)
    k = 0
    for node in range(key.shape[0]):
        c = key[node]
        if c >= 0:
            if label[c] < 0:
                label[c] = k
                k += 1
            out[node] = label[c]
    return out, k


@njit(cache=True, nogil=True)
def _lone_pairs_and_groups(cost: np.ndarray, cost_limit: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(column of each row in a lone pair or -1, group of each node in a contested pair or -1, groups):
    a lone pair is each other's only candidate; the other allowed pairs form the groups (the connected
    components of their bipartite graph, by union-find), labelled in the order of their first node."""
    n, m = cost.shape
    per_row = np.zeros(n, dtype=np.intp)
    per_col = np.zeros(m, dtype=np.intp)
    for i in range(n):
        for j in range(m):
            if cost[i, j] < cost_limit:
                per_row[i] += 1
                per_col[j] += 1
    col_of_row = np.full(n, -1, dtype=np.intp)
    parent = np.arange(n + m)
    contested = np.zeros(n + m, dtype=np.bool_)
    for i in range(n):
        if per_row[i] == 0:
            continue
        for j in range(m):
            if cost[i, j] < cost_limit:
                if per_row[i] == 1 and per_col[j] == 1:
                    col_of_row[i] = j
                else:
                    contested[i] = contested[n + j] = True
                    a, b = _find(parent, i), _find(parent, n + j)
                    if a != b:
                        parent[a] = b
    root_of = np.full(n + m, -1, dtype=np.intp)
    for node in range(n + m):
        if contested[node]:
            root_of[node] = _find(parent, node)
    return (col_of_row, *_labels_in_order(root_of, n + m))


@njit(cache=True, nogil=True)
def _one_sided(
    cost: np.ndarray, g: int, group_of: np.ndarray, one_row: bool, row: int, col: int, col_of_row: np.ndarray,
) -> None:
    """A group with one row (`one_row`) or one column: its cheapest pair (every pair of the group is
    allowed; the others stay unmatched either way), the first in index order on a tie."""
    n, m = cost.shape
    best_i, best_j, best = -1, -1, np.inf
    for k in range(m if one_row else n):
        i, j = (row, k) if one_row else (k, col)
        if group_of[i] == g and group_of[n + j] == g and cost[i, j] < best:
            best_i, best_j, best = i, j, cost[i, j]
    col_of_row[best_i] = best_j


@njit(cache=True, nogil=True)
def _two_sided(
    cost: np.ndarray, cost_limit: float, tie: float, g: int, group_of: np.ndarray, by_rows: bool, row_a: int,
    row_b: int, col_a: int, col_b: int, col_of_row: np.ndarray,
) -> bool:
    """A group with two rows (`by_rows`) or two columns: its best matching by enumeration, written into
    `col_of_row`, unless the next best comes within `tie` of it (returns False: left to the solver).
    A matched pair changes the objective by cost - cost_limit from leaving both unmatched."""
    n, m = cost.shape
    best, second = np.inf, np.inf
    # the best option: up to two (row, column) pairs
    bi0, bj0, bi1, bj1 = -1, -1, -1, -1
    other = m if by_rows else n
    for first in range(2):
        for k in range(other):
            i, j = (row_a if first == 0 else row_b, k) if by_rows else (k, col_a if first == 0 else col_b)
            if group_of[i] != g or group_of[n + j] != g or not cost[i, j] < cost_limit:
                continue
            v = cost[i, j] - cost_limit
            if v < best:
                second, best = best, v
                bi0, bj0, bi1, bj1 = i, j, -1, -1
            elif v < second:
                second = v
    for ka in range(other):
        ia, ja = (row_a, ka) if by_rows else (ka, col_a)
        if group_of[ia] != g or group_of[n + ja] != g or not cost[ia, ja] < cost_limit:
            continue
        va = cost[ia, ja] - cost_limit
        for kb in range(other):
            if kb == ka:
                continue
            ib, jb = (row_b, kb) if by_rows else (kb, col_b)
            if group_of[ib] != g or group_of[n + jb] != g or not cost[ib, jb] < cost_limit:
                continue
            v = va + (cost[ib, jb] - cost_limit)
            if v < best:
                second, best = best, v
                bi0, bj0, bi1, bj1 = ia, ja, ib, jb
            elif v < second:
                second = v
    if second - best < tie:
        return False
    col_of_row[bi0] = bj0
    if bi1 >= 0:
        col_of_row[bi1] = bj1
    return True


@njit(cache=True, nogil=True)
def _cheapest_path(
    cost: np.ndarray,
    start: int,
    u: np.ndarray,
    v: np.ndarray,
    path: np.ndarray,
    row_of: np.ndarray,
    dist: np.ndarray,
    row_seen: np.ndarray,
    col_seen: np.ndarray,
    todo: np.ndarray,
) -> tuple[int, float]:
    """One Dijkstra search of the shortest augmenting path method (Crouse 2016) from the free row
    `start` over reduced costs: (the free column it ends at, its length). Columns are scanned from the
    last to the first and, among equally near ones, a free column wins, as in scipy's
    linear_sum_assignment: the same matching comes out on ties."""
    m = cost.shape[1]
    n_todo = m
    for k in range(m):
        todo[k] = m - 1 - k
    row_seen[:] = False
    col_seen[:] = False
    dist[:] = np.inf
    reach = 0.0
    i = start
    while True:
        row_seen[i] = True
        pick, nearest = -1, np.inf
        for k in range(n_todo):
            j = todo[k]
            d = reach + cost[i, j] - u[i] - v[j]
            if d < dist[j]:
                path[j] = i
                dist[j] = d
            if dist[j] < nearest or (dist[j] == nearest and row_of[j] == -1):
                nearest = dist[j]
                pick = k
        reach = nearest
        j = todo[pick]
        col_seen[j] = True
        n_todo -= 1
        todo[pick] = todo[n_todo]
        if row_of[j] == -1:
            return j, reach
        i = row_of[j]


@njit(cache=True, nogil=True)
def min_cost_matching(cost: np.ndarray) -> np.ndarray:
    """The column of each row in a minimum-cost assignment of a finite (n, m) cost matrix, n <= m,
    by shortest augmenting paths: the answer of scipy's linear_sum_assignment (1.17: same method, same
    arithmetic, same choices among equals; tests/tracking compares them), without the call."""
    n, m = cost.shape
    if n > m:
        raise ValueError("min_cost_matching needs no more rows than columns")
    u = np.zeros(n)
    v = np.zeros(m)
    dist = np.empty(m)
    path = np.full(m, -1, dtype=np.intp)
    col_of = np.full(n, -1, dtype=np.intp)
    row_of = np.full(m, -1, dtype=np.intp)
    row_seen = np.zeros(n, dtype=np.bool_)
    col_seen = np.zeros(m, dtype=np.bool_)
    todo = np.empty(m, dtype=np.intp)
    for start in range(n):
        sink, reach = _cheapest_path(cost, start, u, v, path, row_of, dist, row_seen, col_seen, todo)
        u[start] += reach
        for i in range(n):
            if row_seen[i] and i != start:
                u[i] += reach - dist[col_of[i]]
        for j in range(m):
            if col_seen[j]:
                v[j] -= reach - dist[j]
        # flip the path's pairs, from its free column back to the new row
        j = sink
        while True:
            i = path[j]
            row_of[j] = i
            col_of[i], j = j, col_of[i]
            if i == start:
                break
    return col_of


@njit(cache=True, nogil=True)
def _solve_group(
    cost: np.ndarray,
    cost_limit: float,
    forbidden: float,
    rows: np.ndarray,
    cols: np.ndarray,
    col_of_row: np.ndarray,
) -> None:
    """One group of competing pairs (rows x cols of `cost`) solved exactly: a pair costs its cost (allowed
    only below `cost_limit`), an unmatched row or column `cost_limit / 2`, as the square problem with a
    dummy partner per row and per column (tests/assignment_reference.py keeps it on scipy); writes the
    matched pairs."""
    n, m = rows.shape[0], cols.shape[0]
    size = n + m
    half = cost_limit / 2.0
    big = np.full((size, size), forbidden)
    for a in range(n):
        for b in range(m):
            c = cost[rows[a], cols[b]]
            if c < cost_limit:
                big[a, b] = c
        big[a, m + a] = half
    for b in range(m):
        big[n + b, b] = half
        for k in range(m, size):
            big[n + b, k] = 0.0
    col_of = min_cost_matching(big)
    for a in range(n):
        b = col_of[a]
        if b < m and cost[rows[a], cols[b]] < cost_limit:
            col_of_row[rows[a]] = cols[b]


@njit(cache=True, nogil=True)
def _solve_pending(
    cost: np.ndarray,
    cost_limit: float,
    forbidden: float,
    col_of_row: np.ndarray,
    pending: np.ndarray,
    n_pending: int,
) -> None:
    """The groups sparse_assignment left (`pending`: each node's group label or -1, rows then columns),
    each solved by _solve_group into `col_of_row`."""
    n = cost.shape[0]
    for g in range(n_pending):
        n_rows = n_cols = 0
        for node in range(pending.shape[0]):
            if pending[node] == g:
                if node < n:
                    n_rows += 1
                else:
                    n_cols += 1
        rows = np.empty(n_rows, dtype=np.intp)
        cols = np.empty(n_cols, dtype=np.intp)
        a = b = 0
        for node in range(pending.shape[0]):
            if pending[node] == g:
                if node < n:
                    rows[a] = node
                    a += 1
                else:
                    cols[b] = node - n
                    b += 1
        _solve_group(cost, cost_limit, forbidden, rows, cols, col_of_row)


@njit(cache=True, nogil=True)
def assignment(cost: np.ndarray, cost_limit: float, tie: float, forbidden: float) -> np.ndarray:
    """assignment.linear_assignment in one call: the column of each row or -1."""
    col_of_row, pending, n_pending = sparse_assignment(cost, cost_limit, tie)
    if n_pending:
        _solve_pending(cost, cost_limit, forbidden, col_of_row, pending, n_pending)
    return col_of_row


@njit(cache=True, nogil=True, inline="always")
def _squared_size(mean: np.ndarray, r: int) -> tuple[float, float]:
    """Squared width and height of state `r`, at least 1: the scale of its x-like and y-like noises."""
    sw = max(mean[r, 2], 1.0)
    sh = max(mean[r, 3], 1.0)
    return sw * sw, sh * sh


@njit(cache=True, nogil=True)
def kalman_predict(
    mean: np.ndarray, cov: np.ndarray, dt: float, q_position: float, q_velocity: float, min_size: float,
) -> tuple[np.ndarray, np.ndarray]:
    """kalman.predict on compact covariances (N, 3, 4); `q_position` and `q_velocity`: the noise variances
    added per unit of squared box size (STD_POSITION**2 and std_velocity**2 times the elapsed steps)."""
    n = mean.shape[0]
    new_mean = np.empty_like(mean)
    new_cov = np.empty_like(cov)
    for r in range(n):
        sw, sh = _squared_size(mean, r)
        for k in range(4):
            new_mean[r, k] = mean[r, k] + dt * mean[r, 4 + k]
            new_mean[r, 4 + k] = mean[r, 4 + k]
        new_mean[r, 2] = max(new_mean[r, 2], min_size)
        new_mean[r, 3] = max(new_mean[r, 3], min_size)
        for k in range(4):
            s2 = sw if k % 2 == 0 else sh
            pp, pv, vv = cov[r, 0, k], cov[r, 1, k], cov[r, 2, k]
            new_pv = pv + dt * vv
            new_cov[r, 1, k] = new_pv
            new_cov[r, 0, k] = (pv + new_pv) * dt + pp + q_position * s2
            new_cov[r, 2, k] = s2 * q_velocity + vv
    return new_mean, new_cov


@njit(cache=True, nogil=True)
def start_frame(  # noqa: PLR0913 - one flat call: the tracks' arrays and the frame's settings
    mean: np.ndarray, cov: np.ndarray, misses: np.ndarray, since_obs: np.ndarray, step: float,
    q_position: float, q_velocity: float, min_size: float, with_frame: bool, frame_w: float, frame_h: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The tracker's first steps on a frame, in one call: a lost track stops growing or shrinking
    (`mean`'s size velocities zeroed in place), every track moves `step` frames forward
    (kalman_predict), `since_obs` grows by `step` (in place); returns (seen on the last frame, means,
    covariances, lost tracks predicted out of the picture, when `with_frame`, and how many they are)."""
    n = mean.shape[0]
    seen = np.empty(n, dtype=np.bool_)
    for r in range(n):
        seen[r] = misses[r] == 0
        if not seen[r]:
            mean[r, 6] = 0.0
            mean[r, 7] = 0.0
        since_obs[r] += step
    new_mean, new_cov = kalman_predict(mean, cov, step, q_position, q_velocity, min_size)
    left = np.zeros(n, dtype=np.bool_)
    n_left = 0
    if with_frame:
        for r in range(n):
            cx, cy = new_mean[r, 0], new_mean[r, 1]
            left[r] = not seen[r] and (cx < 0 or cx > frame_w or cy < 0 or cy > frame_h)
            n_left += left[r]
    return seen, new_mean, new_cov, left, n_left


@njit(cache=True, nogil=True)
def kalman_update(
    mean: np.ndarray, cov: np.ndarray, measurements: np.ndarray, r_position: float, min_size: float,
) -> tuple[np.ndarray, np.ndarray]:
    """kalman.update: (N, 8) states and (N, 3, 4) compact covariances corrected by (N, 4) measurements;
    `r_position`: the measurement variance per unit of squared box size (STD_POSITION**2)."""
    new_mean = mean.copy()
    new_cov = cov.copy()
    for r in range(mean.shape[0]):
        _correct_row(new_mean, new_cov, r, measurements[r], r_position, min_size)
    return new_mean, new_cov


@njit(cache=True, nogil=True)
def association_inputs(  # noqa: PLR0913 - one flat call: the tracks' arrays and the gate's settings
    mean: np.ndarray, last_mean: np.ndarray, since_obs: np.ndarray, hits: np.ndarray, min_size: float,
    new_track_distance: float, match_distance: float, still_distance: float, still_speed: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the association cost needs of the tracks: (predicted boxes x1, y1, x2, y2 from the predicted
    states `mean`, each track's gate, which tracks were seen once). The gate is how far (in box sizes) a
    detection may be from the prediction and still match; whether a track moves is read from its state
    before the prediction (`last_mean`), its time unseen from `since_obs` (frames)."""
    n = mean.shape[0]
    predicted = np.empty((n, 4))
    gate = np.empty(n)
    once = np.empty(n, dtype=np.bool_)
    cap = 3.0 * new_track_distance
    for r in range(n):
        for k in range(2):
            half = max(mean[r, 2 + k], min_size)
            half *= 0.5
            predicted[r, k] = mean[r, k] - half
            predicted[r, 2 + k] = mean[r, k] + half
        since = max(since_obs[r], 1.0)
        once[r] = hits[r] == 1
        # A track seen once may have moved anywhere within its reach since. A moving track's prediction
        # gets less certain the longer it goes unseen; a still one's does not (a widening gate let a
        # long-lost parked car's track take the first box of a fast car passing by, and the car then
        # went uncounted). A still track keeps a tight gate: in a queue the car behind stands about half
        # a box away, and a still track whose car was missed for a frame took its neighbour's box (an
        # identity swap across a counting line is counted as two crossings, one each way).
        if once[r]:
            g = min(new_track_distance * since, cap)
        else:
            moving = math.hypot(last_mean[r, 4] / max(last_mean[r, 2], 1.0),
                                last_mean[r, 5] / max(last_mean[r, 3], 1.0)) > still_speed
            g = match_distance * math.sqrt(since) if moving else still_distance
        gate[r] = min(g, cap)
    return predicted, gate, once


@njit(cache=True, nogil=True)
def correct_matched(
    mean: np.ndarray, cov: np.ndarray, obs: np.ndarray, since_obs: np.ndarray, hits: np.ndarray,
    det_of_track: np.ndarray, boxes: np.ndarray, r_position: float, min_size: float, reset_gap: float,
) -> None:
    """Correct the tracks that took a detection (`det_of_track` >= 0), in place: the Kalman update
    (kalman_update) with the detection's box as cx, cy, w, h; a track seen once (`hits` == 1) or
    re-found after more than `reset_gap` frames takes the velocity its last two observations imply (and
    one seen once no size change); the detection becomes its last observation (`obs`, `since_obs`)."""
    measured = np.empty(4)
    for r in range(mean.shape[0]):
        d = det_of_track[r]
        if d < 0:
            continue
        measured[0] = (boxes[d, 0] + boxes[d, 2]) * 0.5
        measured[1] = (boxes[d, 1] + boxes[d, 3]) * 0.5
        measured[2] = boxes[d, 2] - boxes[d, 0]
        measured[3] = boxes[d, 3] - boxes[d, 1]
        _correct_row(mean, cov, r, measured, r_position, min_size)
        since = since_obs[r]
        if hits[r] == 1 or since > reset_gap:
            mean[r, 4] = (measured[0] - obs[r, 0]) / since
            mean[r, 5] = (measured[1] - obs[r, 1]) / since
            if hits[r] == 1:
                mean[r, 6] = 0.0
                mean[r, 7] = 0.0
        for k in range(4):
            obs[r, k] = measured[k]
        since_obs[r] = 0.0


@njit(cache=True, nogil=True, inline="always")
def _correct_row(
    mean: np.ndarray, cov: np.ndarray, r: int, measured: np.ndarray, r_position: float, min_size: float,
) -> None:
    """kalman_update of row `r`, in place."""
    sw, sh = _squared_size(mean, r)
    for k in range(4):
        s2 = sw if k % 2 == 0 else sh
        pp, pv = cov[r, 0, k], cov[r, 1, k]
        s = pp + r_position * s2
        gain_p = pp / s
        gain_v = pv / s
        innovation = measured[k] - mean[r, k]
        mean[r, k] = gain_p * innovation + mean[r, k]
        mean[r, 4 + k] = gain_v * innovation + mean[r, 4 + k]
        cov[r, 0, k] = pp - gain_p * pp
        cov[r, 1, k] = pv - gain_p * pv
        cov[r, 2, k] = cov[r, 2, k] - gain_v * pv
    mean[r, 2] = max(mean[r, 2], min_size)
    mean[r, 3] = max(mean[r, 3], min_size)


@njit(cache=True, nogil=True)
def byte_stages(
    cost: np.ndarray,
    is_high: np.ndarray,
    seen_last_frame: np.ndarray,
    cost_limit: float,
    tie: float,
    forbidden: float,
) -> np.ndarray:
    """ByteTrack's two association stages on one cost matrix (tracks x considered detections): the high
    columns matched to every track, then the other columns to the tracks left over that were seen on
    the previous frame, each stage as linear_assignment solves it (`assignment`). Returns the column
    matched to each track or -1."""
    n = cost.shape[0]
    col = np.full(n, -1, dtype=np.intp)
    high_cols = np.flatnonzero(is_high)
    low_cols = np.flatnonzero(~is_high)
    if high_cols.shape[0]:
        col_of_row = assignment(np.ascontiguousarray(cost[:, high_cols]), cost_limit, tie, forbidden)
        for r in range(n):
            if col_of_row[r] >= 0:
                col[r] = high_cols[col_of_row[r]]
    candidates = np.flatnonzero((col < 0) & seen_last_frame)
    if candidates.shape[0] and low_cols.shape[0]:
        sub = np.empty((candidates.shape[0], low_cols.shape[0]))
        for a in range(candidates.shape[0]):
            for b in range(low_cols.shape[0]):
                sub[a, b] = cost[candidates[a], low_cols[b]]
        col_of_row = assignment(sub, cost_limit, tie, forbidden)
        for a in range(candidates.shape[0]):
            if col_of_row[a] >= 0:
                col[candidates[a]] = low_cols[col_of_row[a]]
    return col


@njit(cache=True, nogil=True)
def class_votes(  # noqa: PLR0913 - one flat call: the votes' arrays, row for row with the tracks
    rows: np.ndarray, codes: np.ndarray, cls: np.ndarray, ring: np.ndarray, n_votes: np.ndarray,
    head: np.ndarray, counts: np.ndarray, stamp: np.ndarray, next_stamp: int,
) -> int:
    """Row `rows[k]` votes for class `codes[k]`: the track's class is the majority over its last
    `ring.shape[1]` votes (a ring from `head`, `n_votes` long), and switches only when another class
    has strictly more votes; among classes with as many, the one that entered the window first
    (`stamp`, set when its count rises from 0). Returns the next stamp."""
    window = ring.shape[1]
    for k in range(rows.shape[0]):
        r = rows[k]
        c = codes[k]
        n = n_votes[r]
        cur = cls[r]
        if c == cur and counts[r, c] == n:  # unanimous so far: only the window's length can change
            if n < window:
                ring[r, (head[r] + n) % window] = c
                n_votes[r] = n + 1
                counts[r, c] = n + 1
            continue
        if n == window:  # the oldest vote leaves the window
            old = ring[r, head[r]]
            counts[r, old] -= 1
            ring[r, head[r]] = c
            head[r] = (head[r] + 1) % window
        else:
            ring[r, (head[r] + n) % window] = c
            n_votes[r] = n + 1
        if counts[r, c] == 0:
            stamp[r, c] = next_stamp
            next_stamp += 1
        counts[r, c] += 1
        current = counts[r, cur]
        best, best_stamp, best_c = 0, 0, -1
        for j in range(counts.shape[1]):
            m = counts[r, j]
            if m > best or (m == best and m > 0 and stamp[r, j] < best_stamp):
                best, best_stamp, best_c = m, stamp[r, j], j
        if best > current:
            cls[r] = best_c
    return next_stamp


@njit(cache=True, nogil=True)
def table_step(  # noqa: PLR0913 - one flat call: the track table's arrays, row for row
    det_of_track: np.ndarray, scores: np.ndarray, codes: np.ndarray, age: np.ndarray, hits: np.ndarray,
    misses: np.ndarray, confirmed: np.ndarray, score: np.ndarray, min_hits: int, max_age: int,
    tentative_max_age: int, cls: np.ndarray, ring: np.ndarray, n_votes: np.ndarray, head: np.ndarray,
    counts: np.ndarray, stamp: np.ndarray, next_stamp: int,
) -> tuple[np.ndarray, int]:
    """TrackTable.step's counters, in place: row r took detection `det_of_track[r]` (>= 0) or missed
    the frame; a matched row votes for its detection's class (class_votes). Returns (rows that live
    on, the next vote stamp)."""
    n = det_of_track.shape[0]
    n_matched = 0
    for r in range(n):
        if det_of_track[r] >= 0:
            n_matched += 1
    rows = np.empty(n_matched, dtype=np.intp)
    taken = np.empty(n_matched, dtype=np.intp)
    alive = np.empty(n, dtype=np.bool_)
    k = 0
    for r in range(n):
        age[r] += 1
        d = det_of_track[r]
        if d >= 0:
            hits[r] += 1
            misses[r] = 0
            score[r] = scores[d]
            if hits[r] >= min_hits:
                confirmed[r] = True
            rows[k] = r
            taken[k] = codes[d]
            k += 1
        else:
            misses[r] += 1
        # a track seen twice has a velocity: it waits as long as a confirmed one
        limit = max_age if confirmed[r] or hits[r] >= 2 else tentative_max_age
        alive[r] = d >= 0 or misses[r] <= limit
    next_stamp = class_votes(rows, taken, cls, ring, n_votes, head, counts, stamp, next_stamp)
    return alive, next_stamp


@njit(cache=True, nogil=True, inline="always")
def _grown(a: np.ndarray, k: int) -> np.ndarray:
    """A copy of the 1-D `a` with room for `k` more values (not set)."""
    out = np.empty(a.shape[0] + k, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True, inline="always")
def _grown_rows(a: np.ndarray, k: int) -> np.ndarray:
    """A copy of the 2-D `a` with `k` more rows of zeros."""
    out = np.zeros((a.shape[0] + k, a.shape[1]), dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def table_add(  # noqa: PLR0913 - one flat call: the track table's arrays, row for row
    ids: np.ndarray, hits: np.ndarray, age: np.ndarray, misses: np.ndarray, confirmed: np.ndarray,
    score: np.ndarray, cls: np.ndarray, ring: np.ndarray, n_votes: np.ndarray, head: np.ndarray,
    counts: np.ndarray, stamp: np.ndarray, first_id: int, new_scores: np.ndarray, new_codes: np.ndarray,
    start_confirmed: bool, next_stamp: int,
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
    np.ndarray, np.ndarray, np.ndarray,
]:
    """The track table's arrays with a row appended per new track (ids from `first_id` up, seen once, its
    detection's score and class code as its first vote, stamped from `next_stamp` on in order)."""
    n, k = ids.shape[0], new_codes.shape[0]
    out_ids, out_hits, out_age, out_misses = _grown(ids, k), _grown(hits, k), _grown(age, k), _grown(misses, k)
    out_confirmed, out_score, out_cls = _grown(confirmed, k), _grown(score, k), _grown(cls, k)
    out_n_votes, out_head = _grown(n_votes, k), _grown(head, k)
    out_ring, out_counts, out_stamp = _grown_rows(ring, k), _grown_rows(counts, k), _grown_rows(stamp, k)
    for a in range(k):
        r = n + a
        code = new_codes[a]
        out_ids[r] = first_id + a
        out_hits[r] = 1
        out_age[r] = 1
        out_misses[r] = 0
        out_confirmed[r] = start_confirmed
        out_score[r] = new_scores[a]
        out_cls[r] = code
        out_ring[r, 0] = code
        out_n_votes[r] = 1
        out_head[r] = 0
        out_counts[r, code] = 1
        out_stamp[r, code] = next_stamp + a
    return (
        out_ids, out_hits, out_age, out_misses, out_confirmed, out_score, out_cls, out_ring, out_n_votes, out_head,
        out_counts, out_stamp,
    )


@njit(cache=True, nogil=True)
def split_detections(
    boxes: np.ndarray, scores: np.ndarray, high_score: float, low_score: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The usable detections (finite box and score) by score: (indices of the high ones, >= `high_score`;
    of the low ones, in [`low_score`, `high_score`); of both, in order; whether each of those is high)."""
    n = scores.shape[0]
    kind = np.zeros(n, dtype=np.int8)  # 0: neither, 1: low, 2: high
    n_high = n_low = 0
    for i in range(n):
        s = scores[i]
        if not (math.isfinite(s) and math.isfinite(boxes[i, 0]) and math.isfinite(boxes[i, 1])
                and math.isfinite(boxes[i, 2]) and math.isfinite(boxes[i, 3])):
            continue
        if s >= high_score:
            kind[i] = 2
            n_high += 1
        elif s >= low_score:
            kind[i] = 1
            n_low += 1
    high_idx = np.empty(n_high, dtype=np.intp)
    low_idx = np.empty(n_low, dtype=np.intp)
    considered = np.empty(n_high + n_low, dtype=np.intp)
    is_high = np.empty(n_high + n_low, dtype=np.bool_)
    h = lo = c = 0
    for i in range(n):
        if kind[i] == 0:
            continue
        considered[c] = i
        is_high[c] = kind[i] == 2
        c += 1
        if kind[i] == 2:
            high_idx[h] = i
            h += 1
        else:
            low_idx[lo] = i
            lo += 1
    return high_idx, low_idx, considered, is_high


@njit(cache=True, nogil=True)
def apart_pairs(track_codes: np.ndarray, det_codes: np.ndarray, group_code: np.ndarray) -> tuple[np.ndarray, bool]:
    """(tracks, detections) pairs whose class codes lie in different class groups (`group_code`: the
    group of each code, -1 for none; a class in no group is never kept apart), and whether any is."""
    n, m = track_codes.shape[0], det_codes.shape[0]
    apart = np.zeros((n, m), dtype=np.bool_)
    found = False
    for j in range(m):
        dg = group_code[det_codes[j]]
        if dg < 0:
            continue
        for i in range(n):
            tg = group_code[track_codes[i]]
            if tg >= 0 and tg != dg:
                apart[i, j] = True
                found = True
    return apart, found


@njit(cache=True, nogil=True)
def detections_of_columns(col: np.ndarray, considered: np.ndarray) -> np.ndarray:
    """Per track, the detection its cost-matrix column `col` (-1: none) stands for (`considered[col]`)."""
    out = np.full(col.shape[0], -1, dtype=np.intp)
    for r in range(col.shape[0]):
        if col[r] >= 0:
            out[r] = considered[col[r]]
    return out


@njit(cache=True, nogil=True)
def leftovers(
    det_of_track: np.ndarray, seen: np.ndarray, since_obs: np.ndarray, high_idx: np.ndarray, n_dets: int,
    path_min_gap: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """After the two stages: (high detections no track took, in order; unmatched tracks not seen on the
    last frame; those of them unseen for at least `path_min_gap` frames)."""
    taken = np.zeros(n_dets, dtype=np.bool_)
    n_lost = n_path = 0
    for r in range(det_of_track.shape[0]):
        d = det_of_track[r]
        if d >= 0:
            taken[d] = True
        elif not seen[r]:
            n_lost += 1
            if since_obs[r] >= path_min_gap:
                n_path += 1
    n_free = 0
    for k in range(high_idx.shape[0]):
        if not taken[high_idx[k]]:
            n_free += 1
    free = np.empty(n_free, dtype=np.intp)
    j = 0
    for k in range(high_idx.shape[0]):
        if not taken[high_idx[k]]:
            free[j] = high_idx[k]
            j += 1
    lost = np.empty(n_lost, dtype=np.intp)
    path = np.empty(n_path, dtype=np.intp)
    a = b = 0
    for r in range(det_of_track.shape[0]):
        if det_of_track[r] < 0 and not seen[r]:
            lost[a] = r
            a += 1
            if since_obs[r] >= path_min_gap:
                path[b] = r
                b += 1
    return free, lost, path


@njit(cache=True, nogil=True)
def recover_by_overlap(  # noqa: PLR0913 - one flat call: the stage's arrays and settings
    obs: np.ndarray, lost: np.ndarray, boxes: np.ndarray, free: np.ndarray, apart: np.ndarray,
    considered: np.ndarray, det_of_track: np.ndarray, path: np.ndarray, min_size: float, cost_limit: float,
    tie: float, forbidden: float,
) -> tuple[np.ndarray, np.ndarray]:
    """OC-SORT's recovery stage (see ByteTracker.update) in one call: the `lost` tracks' last observed
    boxes (`obs` states) matched to the `free` high detections by IoU (cost 1 - IoU below `cost_limit`;
    `apart`: (tracks, considered detections) pairs never matched, or (0, 0)), written into `det_of_track`.
    Returns (the free detections left, in order; the `path` tracks still unmatched). Same operations as
    kalman.states_to_boxes and assignment.iou_matrix, in the same order."""
    n_lost, n_free = lost.shape[0], free.shape[0]
    with_apart = apart.shape[0] > 0
    cost = np.empty((n_lost, n_free))
    for a in range(n_lost):
        r = lost[a]
        hw = max(obs[r, 2], min_size) * 0.5
        hh = max(obs[r, 3], min_size) * 0.5
        ax1, ay1, ax2, ay2 = obs[r, 0] - hw, obs[r, 1] - hh, obs[r, 0] + hw, obs[r, 1] + hh
        area_a = (ax2 - ax1) * (ay2 - ay1)
        for b in range(n_free):
            d = free[b]
            iou = _box_iou(ax1, ay1, ax2, ay2, area_a, boxes[d, 0], boxes[d, 1], boxes[d, 2], boxes[d, 3])
            if with_apart and apart[r, np.searchsorted(considered, d)]:
                iou = 0.0
            cost[a, b] = 1.0 - iou
    col = assignment(cost, cost_limit, tie, forbidden)
    taken = np.zeros(n_free, dtype=np.bool_)
    for a in range(n_lost):
        if col[a] >= 0:
            det_of_track[lost[a]] = free[col[a]]
            taken[col[a]] = True
    return free[~taken], path[det_of_track[path] < 0]


@njit(cache=True, nogil=True)
def boxes_and_velocities(mean: np.ndarray, per_second: float, min_size: float) -> tuple[np.ndarray, np.ndarray]:
    """The tracks' boxes (N, 4) x1, y1, x2, y2 (kalman.states_to_boxes), and the same with the
    velocities in pixels per second as rows (6, N): x1, y1, x2, y2, vx, vy."""
    n = mean.shape[0]
    boxes = np.empty((n, 4))
    rows = np.empty((6, n))
    for r in range(n):
        hw = max(mean[r, 2], min_size) * 0.5
        hh = max(mean[r, 3], min_size) * 0.5
        boxes[r, 0] = rows[0, r] = mean[r, 0] - hw
        boxes[r, 1] = rows[1, r] = mean[r, 1] - hh
        boxes[r, 2] = rows[2, r] = mean[r, 0] + hw
        boxes[r, 3] = rows[3, r] = mean[r, 1] + hh
        rows[4, r] = mean[r, 4] * per_second
        rows[5, r] = mean[r, 5] * per_second
    return boxes, rows


def warm_up() -> None:
    """Compile every kernel of this module for the argument types the tracker passes (and store them in
    numba's cache): a process that imports the tracker on a fresh install otherwise compiles them on
    its first frames, for seconds. scripts/setup.sh calls it once."""
    f, i, b = np.zeros((2, 4)), np.zeros(2, dtype=np.intp), np.zeros(2, dtype=np.bool_)
    mean, cov = np.ones((2, 8)), np.ones((2, 3, 4))
    cost = np.full((2, 2), 0.5)
    # the origins are a column slice of the last observations; a cost matrix may come in Fortran order
    cost_matrix(f, f, np.zeros((0, 0)), np.ones(2), b, np.zeros((0, 0), dtype=np.bool_), f[:, :2], True,
                640.0, 480.0, 0.01, 0.7, 1.01, 0.3, 2.0, 2.0)
    sparse_assignment(cost, 1.0, 1e-6)
    sparse_assignment(np.asfortranarray(cost), 1.0, 1e-6)
    byte_stages(cost, np.ones(2, dtype=np.bool_), np.ones(2, dtype=np.bool_), 1.0, 1e-6, 1e6)
    for c in (cost, np.asfortranarray(cost)):
        assignment(c, 1.0, 1e-6, 1e6)
    min_cost_matching(cost)
    kalman_predict(mean, cov, 1.0, 0.1, 0.1, 1e-3)
    split_detections(f, np.ones(2), 0.5, 0.1)
    apart_pairs(i, i, i)
    boxes_and_velocities(mean, 5.0, 1e-3)
    for apart in (np.zeros((0, 0), dtype=np.bool_), np.zeros((2, 2), dtype=np.bool_)):
        recover_by_overlap(mean, i, f, i, apart, i, i.copy(), i, 1e-3, 0.7, 1e-6, 1e6)
    detections_of_columns(i, i)
    leftovers(np.full(2, -1, dtype=np.intp), b, np.ones(2), i, 2, 3.0)
    start_frame(mean.copy(), cov, i, np.ones(2), 1.0, 0.1, 0.1, 1e-3, True, 640.0, 480.0)
    kalman_update(mean, cov, f, 0.1, 1e-3)
    association_inputs(mean, mean, np.ones(2), i, 1e-3, 1.0, 1.0, 0.5, 0.05)
    correct_matched(mean, cov, f.copy(), np.ones(2), i, np.full(2, -1, dtype=np.intp), f, 0.1, 1e-3, 1.5)
    ring, counts = np.zeros((2, 15), dtype=np.intp), np.zeros((2, 4), dtype=np.intp)
    class_votes(i, i, i.copy(), ring, i.copy(), i.copy(), counts, np.zeros((2, 4), dtype=np.int64), 1)
    table_add(i, i, i, i, b, np.ones(2), i, ring, i, i, counts, np.zeros((2, 4), dtype=np.int64), 3, np.ones(2), i,
              True, 1)
    table_step(np.full(2, -1, dtype=np.intp), np.ones(2), i, i.copy(), i.copy(), i.copy(), b.copy(), np.ones(2), 1, 30,
               2, i.copy(), ring, i.copy(), i.copy(), counts, np.zeros((2, 4), dtype=np.int64), 1)
