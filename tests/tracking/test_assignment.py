"""IoU and the assignment solver, checked against hand-computed values and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from assignment_reference import TIE_REFERENCE as _TIE
from assignment_reference import components, reference_linear_assignment, solve_with_limit
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from smartcity.tracking import kernels
from smartcity.tracking.assignment import (
    greedy_assignment,
    iou_matrix,
    linear_assignment,
)


def _objective(cost: np.ndarray, rows: np.ndarray, cols: np.ndarray, limit: float) -> float:
    n, m = cost.shape
    return float(cost[rows, cols].sum() + (n - len(rows) + m - len(rows)) * limit / 2)


def _brute_force(cost: np.ndarray, limit: float) -> float:
    """Best objective over every partial matching (rows choose a distinct column or none)."""
    n, m = cost.shape
    best = float("inf")
    options = [[None, *[j for j in range(m) if cost[i, j] < limit]] for i in range(n)]
    for choice in itertools.product(*options):
        taken = [j for j in choice if j is not None]
        if len(taken) != len(set(taken)):
            continue
        total = sum(cost[i, j] for i, j in enumerate(choice) if j is not None)
        total += (n - len(taken) + m - len(taken)) * limit / 2
        best = min(best, total)
    return best


def test_iou_matrix_known_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [5, 5, 5, 5]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)
    iou = iou_matrix(a, b)
    assert iou.shape == (3, 3)
    assert iou[0, 0] == pytest.approx(1.0)
    assert iou[0, 1] == pytest.approx(50 / 150)
    assert iou[0, 2] == 0.0
    # a zero-area box overlaps nothing and never yields NaN
    assert np.all(iou[2] == 0.0)
    assert iou_matrix(a[:0], b).shape == (0, 3)
    assert iou_matrix(a, b[:0]).shape == (3, 0)


def test_optimal_beats_greedy_when_greedy_blocks_two_pairs() -> None:
    cost = np.array([[0.1, 0.2], [0.2, 0.65]])
    rows, cols = linear_assignment(cost, 0.7)
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]
    g_rows, g_cols = greedy_assignment(cost, 0.7)
    assert list(zip(g_rows.tolist(), g_cols.tolist())) == [(0, 0), (1, 1)]
    assert _objective(cost, rows, cols, 0.7) < _objective(cost, g_rows, g_cols, 0.7)


def test_strong_pair_is_not_traded_for_two_weak_ones() -> None:
    # Matching 0-1 and 1-0 has more pairs but costs 1.3; keeping 0-0 costs 0.1 + 2 * 0.35.
    cost = np.array([[0.1, 0.65], [0.65, 5.0]])
    rows, cols = linear_assignment(cost, 0.7)
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 0)]


def test_pairs_at_or_above_the_limit_never_match() -> None:
    cost = np.array([[0.7, 0.9], [0.95, 0.7]])
    rows, cols = linear_assignment(cost, 0.7)
    assert rows.size == 0 and cols.size == 0


def test_isolated_pairs_and_a_conflict_together() -> None:
    cost = np.full((4, 5), 1.0)
    cost[0, 3] = 0.2  # alone
    cost[1, 0] = 0.1  # rows 1 and 2 compete for columns 0 and 1
    cost[1, 1] = 0.3
    cost[2, 0] = 0.15
    cost[3, 4] = 0.5  # alone
    rows, cols = linear_assignment(cost, 0.7)
    assert list(zip(rows.tolist(), cols.tolist())) == [(0, 3), (1, 1), (2, 0), (3, 4)]


@settings(max_examples=400, deadline=None)
@given(
    n=st.integers(0, 6),
    m=st.integers(0, 6),
    seed=st.integers(0, 2**31),
    sparsity=st.floats(0.0, 0.9),
    duplicates=st.booleans(),
)
def test_linear_assignment_matches_brute_force(n: int, m: int, seed: int, sparsity: float, duplicates: bool) -> None:
    """Optimal (brute force), and the very pairs of the solver run on every group: groups of two rows or
    two columns solved by enumeration agree with it, ties included (left to the solver)."""
    rng = np.random.default_rng(seed)
    limit = 0.7
    cost = rng.random((n, m))
    cost[rng.random((n, m)) < sparsity] = 1.0  # not allowed
    if duplicates and m > 1:
        cost[:, 1] = cost[:, 0]  # a detection boxed twice: two equally good matchings
    rows, cols = linear_assignment(cost, limit)
    assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
    assert np.all(cost[rows, cols] < limit)
    assert _objective(cost, rows, cols, limit) == pytest.approx(_brute_force(cost, limit), abs=1e-9)
    assert (rows.tolist(), cols.tolist()) == _solver_per_group(cost, limit)


def test_large_dense_problem_is_a_valid_optimum_against_brute_force_on_permutations() -> None:
    # 7x7 fully allowed: the optimum is a full permutation; check against all 5040.
    rng = np.random.default_rng(7)
    cost = rng.random((7, 7)) * 0.5
    rows, cols = linear_assignment(cost, 0.7)
    best = min(sum(cost[i, p[i]] for i in range(7)) for p in itertools.permutations(range(7)))
    assert len(rows) == 7
    assert cost[rows, cols].sum() == pytest.approx(best)


def _scalar_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_iou_matrix_equals_the_scalar_formula_on_random_boxes() -> None:
    rng = np.random.default_rng(2024)
    for _ in range(50):
        n, m = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        xy = rng.uniform(0, 200, (n + m, 2))
        wh = rng.uniform(0, 60, (n + m, 2))
        wh[rng.random(n + m) < 0.1] = 0.0  # empty boxes: no overlap, never NaN
        boxes = np.hstack([xy, xy + wh])
        a, b = boxes[:n], boxes[n:]
        expected = np.array([[_scalar_iou(tuple(p), tuple(q)) for q in b.tolist()] for p in a.tolist()])
        np.testing.assert_array_equal(iou_matrix(a, b), expected)


def test_linear_assignment_pairs_come_sorted_by_row_in_every_path() -> None:
    # only lone pairs (the early return) and lone pairs mixed with a contested group
    lone = np.full((4, 4), 1.0)
    lone[3, 0], lone[0, 2], lone[2, 3] = 0.1, 0.2, 0.3
    rows, cols = linear_assignment(lone, 0.7)
    assert (rows.tolist(), cols.tolist()) == ([0, 2, 3], [2, 3, 0])
    mixed = lone.copy()
    mixed[1, 1], mixed[3, 1] = 0.25, 0.5  # rows 1 and 3 now both want column 1 (row 3 also column 0)
    rows, cols = linear_assignment(mixed, 0.7)
    assert (rows.tolist(), cols.tolist()) == ([0, 1, 2, 3], [2, 1, 3, 0])


def _solver_per_group(cost: np.ndarray, limit: float) -> tuple[list[int], list[int]]:
    """linear_assignment as it was before groups of two rows or two columns were enumerated: lone pairs,
    the cheapest partner of a one-sided group (first on a tie), the solver on every other group."""
    n, m = cost.shape
    rr, cc = (cost < limit).nonzero()
    per_row, per_col = np.bincount(rr, minlength=n), np.bincount(cc, minlength=m)
    alone = (per_row[rr] == 1) & (per_col[cc] == 1)
    pairs = list(zip(rr[alone].tolist(), cc[alone].tolist()))
    for sub_rows, sub_cols in components(rr[~alone].tolist(), cc[~alone].tolist(), n, m):
        if len(sub_rows) == 1:
            pairs.append((sub_rows[0], sub_cols[int(cost[sub_rows[0], sub_cols].argmin())]))
        elif len(sub_cols) == 1:
            pairs.append((sub_rows[int(cost[sub_rows, sub_cols[0]].argmin())], sub_cols[0]))
        else:
            i, j = solve_with_limit(cost[sub_rows][:, sub_cols], limit)
            pairs += [(sub_rows[a], sub_cols[b]) for a, b in zip(i.tolist(), j.tolist())]
    pairs.sort()
    return [i for i, _ in pairs], [j for _, j in pairs]


def _cost_of(pairs: dict[tuple[int, int], float], n: int, m: int) -> np.ndarray:
    cost = np.full((n, m), 1.0)
    for (i, j), v in pairs.items():
        cost[i, j] = v
    return cost


def test_two_sided_groups_by_enumeration_and_ties_left_to_the_solver() -> None:
    # two tracks, two detections: crossing pairs beat the straight ones
    cost = _cost_of({(0, 0): 0.4, (0, 1): 0.1, (1, 0): 0.1, (1, 1): 0.4}, 2, 2)
    col_of_row, pending, _ = kernels.sparse_assignment(cost, 0.7, _TIE)
    assert col_of_row.tolist() == [1, 0] and (pending < 0).all()
    # two tracks want one of two columns; the other column only the first: both matched
    cost = _cost_of({(3, 5): 0.2, (3, 8): 0.6, (7, 5): 0.1}, 9, 9)
    col_of_row, pending, _ = kernels.sparse_assignment(cost, 0.7, _TIE)
    assert (col_of_row[3], col_of_row[7]) == (8, 5) and (pending < 0).all()
    # two rows of three columns want two columns (the transposed case)
    cost = _cost_of({(0, 4): 0.3, (1, 4): 0.2, (2, 4): 0.5, (1, 9): 0.5}, 3, 10)
    col_of_row, pending, _ = kernels.sparse_assignment(cost, 0.7, _TIE)
    assert col_of_row.tolist() == [4, 9, -1] and (pending < 0).all()
    # a tie (the same detection twice): left to the solver, which still finds an optimum
    cost = _cost_of({(0, 0): 0.2, (0, 1): 0.2, (1, 0): 0.2, (1, 1): 0.2}, 2, 2)
    col_of_row, pending, _ = kernels.sparse_assignment(cost, 0.7, _TIE)
    assert pending.tolist() == [0, 0, 0, 0] and (col_of_row < 0).all()
    rows, cols = linear_assignment(cost, 0.7)
    assert len(rows) == 2 and sorted(cols.tolist()) == [0, 1]
    # a larger group (three rows and three columns) goes to the solver; the lone pair beside it does not
    cost = _cost_of({(0, 0): 0.2, (0, 1): 0.3, (1, 1): 0.2, (1, 2): 0.3, (2, 2): 0.2, (2, 0): 0.3, (3, 3): 0.1}, 4, 4)
    col_of_row, pending, _ = kernels.sparse_assignment(cost, 0.7, _TIE)
    assert pending.tolist() == [0, 0, 0, -1, 0, 0, 0, -1] and col_of_row.tolist() == [-1, -1, -1, 3]
    assert linear_assignment(cost, 0.7)[1].tolist() == [0, 1, 2, 3]


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 14),
    m=st.integers(0, 14),
    seed=st.integers(0, 2**31),
    sparsity=st.floats(0.3, 0.97),
    duplicates=st.booleans(),
    levels=st.sampled_from([0, 3, 10]),
)
def test_linear_assignment_equals_the_pure_python_reference(
    n: int, m: int, seed: int, sparsity: float, duplicates: bool, levels: int
) -> None:
    """The compiled grouping and enumeration give the very pairs of the Python code they replaced, on
    sparse matrices with groups of every shape, ties (few cost levels, boxes twice) included."""
    rng = np.random.default_rng(seed)
    cost = rng.random((n, m))
    if levels:
        cost = np.round(cost * levels) / levels  # many equal costs
    cost[rng.random((n, m)) < sparsity] = 1.0
    if duplicates and m > 1:
        cost[:, 1] = cost[:, 0]
    rows, cols = linear_assignment(cost, 0.7)
    want_rows, want_cols = reference_linear_assignment(cost, 0.7)
    assert (rows.tolist(), cols.tolist()) == (want_rows.tolist(), want_cols.tolist())
    assert rows.dtype == np.intp and cols.dtype == np.intp


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 9),
    extra=st.integers(0, 4),
    seed=st.integers(0, 2**31),
    levels=st.sampled_from([0, 2, 3, 10]),
    negative=st.booleans(),
)
def test_min_cost_matching_gives_scipys_answer(
    n: int, extra: int, seed: int, levels: int, negative: bool
) -> None:
    """The compiled solver returns scipy's matching, not only one of equal cost: on ties (few cost
    levels) too, and on costs whose sums round (negative tenths), where the order of operations decides."""
    rng = np.random.default_rng(seed)
    cost = rng.random((n, n + extra))
    if levels:
        cost = np.round(cost * levels) / levels
    if negative:
        cost = np.round(cost, 1) * 3 - 1
    _, want = linear_sum_assignment(cost)
    assert kernels.min_cost_matching(cost).tolist() == want.tolist()


def test_min_cost_matching_refuses_more_rows_than_columns() -> None:
    with pytest.raises(ValueError, match="no more rows than columns"):
        kernels.min_cost_matching(np.zeros((3, 2)))
