"""Geometry: polygon/line/direction validation, point-in-polygon, crossings (unit and property tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smartcity.analytics.geometry import (
    GeometryError,
    Line,
    Polygon,
    PolygonSet,
    crossing_param,
    direction_agreement,
    point_in_polygon,
    segment_crosses_line,
    segments_intersect,
    side_normal,
    signed_distance,
    validate_direction,
    validate_line,
    validate_polygon,
)

unit = st.floats(0.0, 1.0, allow_nan=False)
pts = st.tuples(unit, unit)


def test_polygon_errors_name_the_problem() -> None:
    with pytest.raises(GeometryError, match="at least 3 points, got 2"):
        validate_polygon([[0, 0], [1, 1]])
    with pytest.raises(GeometryError, match="self-intersects at edges 0 and 2"):
        validate_polygon([[0, 0], [1, 1], [1, 0], [0, 1]])  # a bow tie
    with pytest.raises(GeometryError, match=r"point 1 \(1.5, 0\) is outside the image"):
        validate_polygon([[0, 0], [1.5, 0], [1, 1]])
    with pytest.raises(GeometryError, match="edges 0 and 2 .folds back"):
        validate_polygon([[0, 0], [0.5, 0.5], [1, 1]])
    with pytest.raises(GeometryError, match="points 1 and 2 are the same"):
        validate_polygon([[0, 0], [0.5, 0.5], [0.5, 0.5], [0, 1]])
    # an explicitly closed ring is accepted and stored open
    assert validate_polygon([[0, 0], [1, 0], [1, 1], [0, 0]]) == ((0, 0), (1, 0), (1, 1))


def test_line_and_direction_errors() -> None:
    with pytest.raises(GeometryError, match="zero length"):
        validate_line([[0.2, 0.2], [0.2, 0.2]])
    with pytest.raises(GeometryError, match="exactly 2 points"):
        validate_line([[0.2, 0.2]])
    with pytest.raises(GeometryError, match="direction is zero"):
        validate_direction([0, 0])
    with pytest.raises(GeometryError, match="parallel"):
        Line.of([[0, 0.5], [1, 0.5]], [1, 0])
    assert validate_direction([3, 4]) == pytest.approx((0.6, 0.8))


def test_left_and_right_of_a_line_on_screen() -> None:
    # walking right along the screen, "left" is up (y decreases)
    assert side_normal(((0, 0.5), (1, 0.5)), "left") == pytest.approx((0.0, -1.0))
    assert side_normal(((0, 0.5), (1, 0.5)), "right") == pytest.approx((0.0, 1.0))
    line = Line.of([[0.5, 0], [0.5, 1]], [1, 0.2])  # vertical line, positive side to the right
    assert line.normal == pytest.approx((1.0, 0.0))
    assert line.distance(np.array([0.7, 0.4]), np.array([0.5, 0.5])) == pytest.approx([0.2, -0.1])


def test_crossing_of_a_segment() -> None:
    a, b = (0.5, 0.2), (0.5, 0.8)
    assert segment_crosses_line((0.4, 0.5), (0.6, 0.5), a, b)
    assert not segment_crosses_line((0.4, 0.9), (0.6, 0.9), a, b)  # passes beyond its end
    assert not segment_crosses_line((0.4, 0.5), (0.45, 0.5), a, b)
    assert crossing_param((0.4, 0.35), (0.6, 0.35), a, b) == pytest.approx(0.25)


def test_direction_agreement() -> None:
    assert direction_agreement((1, 0), (1, 0)) == pytest.approx(1.0)
    assert direction_agreement((-2, 0), (1, 0)) == pytest.approx(-1.0)
    assert direction_agreement((0, 0), (1, 0)) == 0.0


@st.composite
def convex_polygons(draw: st.DrawFn) -> list[tuple[float, float]]:
    cx, cy = draw(st.floats(0.3, 0.7)), draw(st.floats(0.3, 0.7))
    r = draw(st.floats(0.05, 0.25))
    n = draw(st.integers(3, 9))
    angles = sorted(draw(st.lists(st.floats(0, 2 * math.pi), min_size=n, max_size=n, unique=True)))
    assume(all(b - a > 0.2 for a, b in zip(angles, angles[1:])) and angles[0] + 2 * math.pi - angles[-1] > 0.2)
    return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles]


def _winding_inside(p: tuple[float, float], poly: list[tuple[float, float]]) -> bool:
    total = 0.0
    for i in range(len(poly)):
        a = math.atan2(poly[i][1] - p[1], poly[i][0] - p[0])
        b = math.atan2(poly[(i + 1) % len(poly)][1] - p[1], poly[(i + 1) % len(poly)][0] - p[0])
        d = b - a
        while d > math.pi:
            d -= 2 * math.pi
        while d < -math.pi:
            d += 2 * math.pi
        total += d
    return abs(total) > math.pi


def _edge_distance(p: tuple[float, float], poly: list[tuple[float, float]]) -> float:
    best = math.inf
    for i in range(len(poly)):
        (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % len(poly)]
        dx, dy = x2 - x1, y2 - y1
        u = max(0.0, min(1.0, ((p[0] - x1) * dx + (p[1] - y1) * dy) / (dx * dx + dy * dy)))
        best = min(best, math.hypot(p[0] - x1 - u * dx, p[1] - y1 - u * dy))
    return best


@settings(max_examples=150, deadline=None)
@given(convex_polygons(), st.lists(pts, min_size=1, max_size=40))
def test_point_in_polygon_agrees_with_winding_number_and_vector_form(
    poly: list[tuple[float, float]], points: list[tuple[float, float]]
) -> None:
    compiled = Polygon.of(poly)
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    vec = compiled.contains(xs, ys)
    for k, p in enumerate(points):
        if _edge_distance(p, poly) > 1e-9:  # on the boundary either answer is allowed
            assert bool(vec[k]) == point_in_polygon(p, compiled.points)
            assert point_in_polygon(p, compiled.points) == _winding_inside(p, poly)


@settings(max_examples=150, deadline=None)
@given(st.lists(pts, min_size=4, max_size=12), st.lists(pts, min_size=1, max_size=30))
def test_vector_form_matches_scalar_for_any_simple_polygon(
    points: list[tuple[float, float]], probes: list[tuple[float, float]]
) -> None:
    try:
        poly = Polygon.of(points)
    except GeometryError:
        return
    vec = poly.contains(np.array([p[0] for p in probes]), np.array([p[1] for p in probes]))
    for k, p in enumerate(probes):
        if _edge_distance(p, list(poly.points)) > 1e-9:
            assert bool(vec[k]) == point_in_polygon(p, poly.points) == _winding_inside(p, list(poly.points))


@settings(max_examples=150, deadline=None)
@given(st.lists(pts, min_size=3, max_size=8))
def test_accepted_polygons_never_self_intersect(points: list[tuple[float, float]]) -> None:
    try:
        poly = validate_polygon(points)
    except GeometryError:
        return
    n = len(poly)
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue
            assert not segments_intersect(poly[i], poly[(i + 1) % n], poly[j], poly[(j + 1) % n])


@settings(max_examples=200, deadline=None)
@given(pts, pts, pts, pts)
def test_crossing_means_sides_differ_and_point_on_line(
    p0: tuple[float, float], p1: tuple[float, float], a: tuple[float, float], b: tuple[float, float]
) -> None:
    assume(math.dist(a, b) > 1e-3)
    line = Line.of([a, b], "left")
    d0 = signed_distance(p0, line.a, line.normal)
    d1 = signed_distance(p1, line.a, line.normal)
    u = crossing_param(p0, p1, a, b)
    if u is None:
        assert not ((d0 > 1e-12 and d1 < -1e-12) or (d0 < -1e-12 and d1 > 1e-12))
    else:
        assert (d0 > 0 > d1) or (d0 < 0 < d1)  # signs, not the product: it may underflow to -0.0
        cx, cy = a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1])
        # the crossing point lies on the movement segment
        seg = math.dist(p0, p1)
        assert math.dist(p0, (cx, cy)) + math.dist((cx, cy), p1) == pytest.approx(seg, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(convex_polygons(), min_size=1, max_size=6), st.lists(pts, min_size=0, max_size=40))
def test_polygon_set_equals_each_polygon_and_the_scalar_test(
    polys: list[list[tuple[float, float]]], probes: list[tuple[float, float]]
) -> None:
    compiled = [Polygon.of(p) for p in polys]
    concave = Polygon.of([(0.1, 0.1), (0.9, 0.1), (0.5, 0.5), (0.9, 0.9), (0.1, 0.9)])  # left out of the set
    zs = PolygonSet([compiled[0], concave, *compiled[1:]])
    assert zs.polygons == tuple(compiled) and id(concave) not in zs.index
    xy = np.array(probes, dtype=np.float64).reshape(-1, 2).T
    rows = zs.contains_xy(xy)
    assert rows.shape == (len(compiled), len(probes))
    for k, poly in enumerate(compiled):
        assert zs.index[id(poly)] == k
        np.testing.assert_array_equal(rows[k], poly.contains_xy(xy))
        for j, p in enumerate(probes):
            if _edge_distance(p, list(poly.points)) > 1e-9:
                assert bool(rows[k, j]) == point_in_polygon(p, poly.points)
