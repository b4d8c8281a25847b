"""The reference the compiled assignment is checked against: linear_assignment in pure Python and numpy
as it was before its kernels, with scipy's solver on the groups (tests/tracking)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from smartcity.tracking.assignment import FORBIDDEN, FloatArray, IntArray


def solve_with_limit(cost: FloatArray, cost_limit: float) -> tuple[IntArray, IntArray]:
    """The solver's part as it was, on scipy: exact assignment where a pair costs `cost[i, j]` (allowed
    only below `cost_limit`) and leaving a row or a column unmatched costs `cost_limit / 2`; solved as a
    square problem of size rows + columns with one dummy partner per row and per column."""
    n, m = cost.shape
    size = n + m
    allowed = cost < cost_limit
    big = np.full((size, size), FORBIDDEN)
    np.copyto(big[:n, :m], cost, where=allowed)
    for i in range(n):
        big[i, m + i] = cost_limit / 2.0  # row i unmatched
    for j in range(m):
        big[n + j, j] = cost_limit / 2.0  # column j unmatched
    big[n:, m:] = 0.0
    rows, cols = linear_sum_assignment(big)
    real = (rows < n) & (cols < m)
    rows, cols = rows[real], cols[real]
    ok = allowed[rows, cols]
    return rows[ok], cols[ok]


def reference_linear_assignment(cost: FloatArray, cost_limit: float) -> tuple[IntArray, IntArray]:
    """linear_assignment in pure Python and numpy, before kernels.sparse_assignment (the reference it is
    checked against). Optimal matching of rows to columns of `cost` where only pairs below `cost_limit` may
    match and each unmatched row or column costs `cost_limit / 2`.

    Returns `(rows, cols)`: matched index pairs, sorted by row.
    """
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    rr, cc = (cost < cost_limit).nonzero()  # row-major: sorted by row
    per_row = np.bincount(rr, minlength=n)
    per_col = np.bincount(cc, minlength=m)
    # A pair that is each other's only candidate is in every optimal solution: matching it
    # costs less than cost_limit, leaving both out costs exactly cost_limit.
    alone = (per_row[rr] == 1) & (per_col[cc] == 1)
    if np.count_nonzero(alone) == alone.size:  # no competition at all: already sorted by row
        return rr, cc
    rest = ~alone
    r_rest, c_rest = rr[rest], cc[rest]
    rest_rows, rest_cols = r_rest.tolist(), c_rest.tolist()
    pair_cost = dict(zip(zip(rest_rows, rest_cols), cost[r_rest, c_rest].tolist()))
    # the groups' matches as Python ints (a group is a few pairs: no array per group)
    more_rows: list[int] = []
    more_cols: list[int] = []
    for sub_rows, sub_cols in components(rest_rows, rest_cols, n, m):
        # One side has a single member: its cheapest allowed partner is optimal, since every
        # partner is allowed and the others stay unmatched either way (the first on a tie, as argmin).
        if len(sub_rows) == 1:
            i = sub_rows[0]
            more_rows.append(i)
            more_cols.append(min(sub_cols, key=lambda j: pair_cost[i, j]))
        elif len(sub_cols) == 1:
            j = sub_cols[0]
            more_rows.append(min(sub_rows, key=lambda i: pair_cost[i, j]))
            more_cols.append(j)
        elif (pairs := _two_sided(sub_rows, sub_cols, pair_cost, cost_limit)) is not None:
            more_rows.extend(i for i, _ in pairs)
            more_cols.extend(j for _, j in pairs)
        else:
            i_sub, j_sub = solve_with_limit(cost[sub_rows][:, sub_cols], cost_limit)
            more_rows.extend(sub_rows[k] for k in i_sub.tolist())
            more_cols.extend(sub_cols[k] for k in j_sub.tolist())
    r = np.concatenate([rr[alone], np.array(more_rows, dtype=np.intp)])
    c = np.concatenate([cc[alone], np.array(more_cols, dtype=np.intp)])
    order = np.argsort(r, kind="stable")
    return r[order], c[order]


# Two matchings whose objectives differ by less than this are a tie left to the solver: its floating
# point answer on the padded matrix is exact to far better than this, so above it both agree.
TIE_REFERENCE = 1e-6


def _two_sided(
    rows: list[int], cols: list[int], pair_cost: dict[tuple[int, int], float], cost_limit: float
) -> list[tuple[int, int]] | None:
    """The optimal matching of a group with two rows or two columns (the common competition: two
    tracks near one or two detections), by enumerating its matchings; None for a larger group or when
    the best two come within TIE_REFERENCE of each other. A matched pair changes the objective by
    cost - cost_limit from leaving both unmatched."""
    options: list[tuple[float, list[tuple[int, int]]]]
    if len(rows) == 2:
        a, b = rows
        first = [(j, pair_cost[a, j] - cost_limit) for j in cols if (a, j) in pair_cost]
        second = [(j, pair_cost[b, j] - cost_limit) for j in cols if (b, j) in pair_cost]
        options = [(va, [(a, ja)]) for ja, va in first] + [(vb, [(b, jb)]) for jb, vb in second]
        options += [(va + vb, [(a, ja), (b, jb)]) for ja, va in first for jb, vb in second if ja != jb]
    elif len(cols) == 2:
        a, b = cols
        first = [(i, pair_cost[i, a] - cost_limit) for i in rows if (i, a) in pair_cost]
        second = [(i, pair_cost[i, b] - cost_limit) for i in rows if (i, b) in pair_cost]
        options = [(va, [(ia, a)]) for ia, va in first] + [(vb, [(ib, b)]) for ib, vb in second]
        options += [
            (va + vb, sorted([(ia, a), (ib, b)])) for ia, va in first for ib, vb in second if ia != ib
        ]
    else:
        return None
    options.sort(key=lambda o: o[0])
    if len(options) > 1 and options[1][0] - options[0][0] < TIE_REFERENCE:
        return None
    return options[0][1]


def components(
    pair_rows: list[int], pair_cols: list[int], n_rows: int, n_cols: int
) -> list[tuple[list[int], list[int]]]:
    """Connected groups of the bipartite graph of allowed pairs (union-find; nodes are rows
    0..n_rows-1 and columns n_rows..), each with its rows and columns in increasing order, groups
    in the order of their smallest node. Each group is an independent assignment problem."""
    parent = list(range(n_rows + n_cols))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in zip(pair_rows, pair_cols):
        a, b = find(i), find(n_rows + j)
        if a != b:
            parent[a] = b
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for node in sorted({*pair_rows, *(n_rows + j for j in pair_cols)}):
        rows, cols = groups.setdefault(find(node), ([], []))
        if node < n_rows:
            rows.append(node)
        else:
            cols.append(node - n_rows)
    return list(groups.values())
