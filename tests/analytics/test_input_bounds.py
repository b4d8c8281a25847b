"""Rule inputs are bounded and finite: oversized polygons and lists, NaN and Infinity are refused
with the field and the limit named, and big valid shapes still validate the same way."""

from __future__ import annotations

import math

from analytics_helpers import CAM
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.analytics import rule_errors
from smartcity.analytics.geometry import (
    MAX_POLYGON_POINTS,
    GeometryError,
    segments_intersect,
    validate_polygon,
)


def circle(n: int, r: float = 0.4) -> list[list[float]]:
    return [[0.5 + r * math.cos(2 * math.pi * k / n), 0.5 + r * math.sin(2 * math.pi * k / n)] for k in range(n)]


def dwell(zone: list[list[float]], **extra: object) -> dict[str, object]:
    return {"id": "r1", "camera_id": CAM, "type": "dwell", "params": {"zone": zone}, **extra}


def test_a_huge_polygon_is_refused_by_its_size_naming_the_field_and_the_limit() -> None:
    assert MAX_POLYGON_POINTS == 256
    bow_tie_then_circle = [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9], *circle(9_996)]
    assert rule_errors(dwell(bow_tie_then_circle)) == ["params.zone: a polygon has at most 256 points, got 10000"]
    assert rule_errors(dwell(circle(300))) == ["params.zone: a polygon has at most 256 points, got 300"]
    # an explicitly closed ring may repeat its first point on top of the limit
    assert rule_errors(dwell([*circle(256), circle(256)[0]])) == []


def test_big_valid_polygons_are_accepted_and_self_intersections_still_found() -> None:
    assert rule_errors(dwell(circle(200))) == []
    assert len(validate_polygon(circle(256))) == 256
    twisted = circle(200)
    twisted[50], twisted[150] = twisted[150], twisted[50]
    errs = rule_errors(dwell(twisted))
    assert errs == ["params.zone: polygon self-intersects at edges 49 and 150"]


def _brute_force(poly: tuple[tuple[float, float], ...]) -> tuple[int, int] | None:
    n = len(poly)
    for i in range(n):
        for j in range(i + 2, n):
            if not (i == 0 and j == n - 1) and segments_intersect(poly[i], poly[(i + 1) % n], poly[j], poly[(j + 1) % n]):
                return i, j
    return None


grid = st.integers(0, 8).map(lambda k: k / 8)  # coarse: many collinear and touching edges


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(grid, grid), min_size=4, max_size=24))
def test_the_first_crossing_reported_is_the_first_pair_of_edges_that_meet(points: list[tuple[float, float]]) -> None:
    try:
        poly = validate_polygon(points)
    except GeometryError as exc:
        msg = str(exc)
        if "self-intersects" in msg and "folds back" not in msg:
            pts = tuple(points[:-1] if points[0] == points[-1] else points)
            found = _brute_force(tuple((float(x), float(y)) for x, y in pts))
            assert found is not None and f"edges {found[0]} and {found[1]}" in msg
        return
    assert _brute_force(poly) is None


def test_lists_in_params_are_bounded() -> None:
    errs = rule_errors({"id": "r1", "camera_id": CAM, "type": "abandoned_object",
                        "params": {"person_classes": ["person"] * 5000}})
    assert errs == ["params.person_classes: a list of classes has at most 100 names, got 5000"]
    errs = rule_errors({"id": "r1", "camera_id": CAM, "type": "line_count",
                        "params": {"line": circle(5000), "in_direction": "left"}})
    assert errs == ["params.line: a line has at most 2 points, got 5000"]
    errs = rule_errors({**dwell(circle(8)), "classes": ["car"] * 101})
    assert len(errs) == 1 and errs[0].startswith("classes: ") and "100" in errs[0]


def test_non_finite_numbers_are_refused_naming_the_field() -> None:
    inf, nan = float("inf"), float("nan")
    assert rule_errors(dwell(circle(8), schedule={"kind": "until", "until": inf})) == [
        "schedule.until: Input should be a finite number"
    ]
    errs = rule_errors({**dwell(circle(8)), "cooldown_s": nan,
                        "schedule": {"kind": "for_duration", "duration_s": 60, "starts_at": -inf}})
    assert sorted(errs) == ["cooldown_s: Input should be a finite number",
                            "schedule.starts_at: Input should be a finite number"]
    errs = rule_errors({"id": "r1", "camera_id": CAM, "type": "dwell", "params": {"zone": circle(8), "threshold_s": nan}})
    assert errs == ["params.threshold_s: Input should be a finite number"]
