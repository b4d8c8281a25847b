"""Box overlap and bipartite assignment used by the tracker: vectorised IoU, an exact
min-cost assignment with a cost limit (shortest augmenting paths, compiled: kernels.min_cost_matching
gives scipy's linear_sum_assignment's answer without a call into scipy per group) and a greedy one.

Tracking cost matrices are sparse (most track/detection pairs are far apart), so
`linear_assignment` first takes the pairs that are each other's only candidate, which every
optimal solution contains, splits the rest into independent groups of competing pairs, solves a
group with one or two rows or columns (the common competition: two tracks near one or two
detections) by enumerating its matchings (all of that in one compiled kernel), and runs the cubic
solver only on larger groups and on ties.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from smartcity.tracking import kernels

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# Stands for "not allowed" in the padded cost matrix. Finite so that potentials stay
# finite; large enough that the solver never picks it while a cheaper perfect matching
# (every row and column left unmatched at cost_limit / 2) always exists.
FORBIDDEN = 1e6


def iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """IoU of every box of `a` (N, 4) with every box of `b` (M, 4), boxes as x1, y1, x2, y2."""
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype=np.float64)
    # columns as (N, 1) and (1, M) views; the (N, M) intermediates are computed in place
    ax1, ay1, ax2, ay2 = a.T[:, :, None]
    bx1, by1, bx2, by2 = b.T[:, None, :]
    inter = np.minimum(ax2, bx2)
    inter -= np.maximum(ax1, bx1)
    np.maximum(inter, 0.0, out=inter)
    ih = np.minimum(ay2, by2)
    ih -= np.maximum(ay1, by1)
    np.maximum(ih, 0.0, out=ih)
    inter *= ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1)
    union -= inter
    if union.min() > 0.0:  # the common case: no empty box
        out: FloatArray = np.divide(inter, union, out=inter)
        return out
    masked: FloatArray = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return masked


def linear_assignment(cost: FloatArray, cost_limit: float) -> tuple[IntArray, IntArray]:
    """Optimal matching of rows to columns of `cost` where only pairs below `cost_limit` may
    match and each unmatched row or column costs `cost_limit / 2`.

    Returns `(rows, cols)`: matched index pairs, sorted by row.

    A pair that is each other's only candidate is in every optimal solution (matching it costs less
    than cost_limit, leaving both out costs exactly cost_limit). The other allowed pairs split into
    independent groups (connected components of the bipartite graph of allowed pairs): one with a
    single row or column takes its cheapest pair, one with two rows or two columns is solved by
    enumerating its matchings unless its best two come within TIE of each other (kernels.
    sparse_assignment); the solver takes the rest (kernels._solve_pending: each group as a square problem
    with a dummy partner per row and per column, as ByteTrack's lapjv with `extend_cost` sets it: a strong
    pair is never given up to match two weak ones). All of it is one compiled call.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    col_of_row: IntArray = kernels.assignment(cost, float(cost_limit), TIE, FORBIDDEN)
    rows = np.flatnonzero(col_of_row >= 0)
    return rows, col_of_row[rows]


# Two matchings whose objectives differ by less than this are a tie left to the solver: its floating
# point answer on the padded matrix is exact to far better than this, so above it both agree.
TIE = 1e-6


def greedy_assignment(cost: FloatArray, cost_limit: float) -> tuple[IntArray, IntArray]:
    """Cheapest-pair-first matching below `cost_limit` (the baseline the benchmark compares with).

    Not optimal: it can take one good pair that blocks two slightly worse ones.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    rr, cc = np.nonzero(cost < cost_limit)
    order = np.argsort(cost[rr, cc], kind="stable")
    row_used = np.zeros(n, dtype=bool)
    col_used = np.zeros(m, dtype=bool)
    rows: list[int] = []
    cols: list[int] = []
    for k in order.tolist():
        i, j = int(rr[k]), int(cc[k])
        if not row_used[i] and not col_used[j]:
            row_used[i] = col_used[j] = True
            rows.append(i)
            cols.append(j)
    r = np.asarray(rows, dtype=np.intp)
    c = np.asarray(cols, dtype=np.intp)
    order2 = np.argsort(r, kind="stable")
    return r[order2], c[order2]
