"""Geometry of rules in normalised image coordinates: validation, point-in-polygon, line sides, directions.

Coordinates are `(x, y)` with x to the right and y DOWN, both in [0, 1] of the frame.
Every test exists twice: a scalar form (plain floats, the reference and the readable one)
and a vectorised form over many points at once (what the engine uses per frame).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from smartcity.analytics import kernels

Point = tuple[float, float]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_EPS = 1e-12


class GeometryError(ValueError):
    """Invalid geometry; the message says what is wrong (the caller adds the field path)."""


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    return min(a[0], b[0]) - 1e-12 <= p[0] <= max(a[0], b[0]) + 1e-12 and (
        min(a[1], b[1]) - 1e-12 <= p[1] <= max(a[1], b[1]) + 1e-12
    )


def segments_intersect(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether closed segments ab and cd share at least one point (touching counts)."""
    d1, d2 = _cross(c, d, a), _cross(c, d, b)
    d3, d4 = _cross(a, b, c), _cross(a, b, d)
    if ((d1 > _EPS and d2 < -_EPS) or (d1 < -_EPS and d2 > _EPS)) and (
        (d3 > _EPS and d4 < -_EPS) or (d3 < -_EPS and d4 > _EPS)
    ):
        return True
    return (
        (abs(d1) <= _EPS and _on_segment(a, c, d))
        or (abs(d2) <= _EPS and _on_segment(b, c, d))
        or (abs(d3) <= _EPS and _on_segment(c, a, b))
        or (abs(d4) <= _EPS and _on_segment(d, a, b))
    )


def polygon_area(poly: Sequence[Point]) -> float:
    """Signed area (shoelace); positive when the vertices turn clockwise on screen (y down)."""
    s = 0.0
    n = len(poly)
    for i in range(n):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % n]
        s += x1 * y2 - x2 * y1
    return s / 2.0


def _check_unit(points: Sequence[Point]) -> None:
    for i, (x, y) in enumerate(points):
        if not (math.isfinite(x) and math.isfinite(y)):
            raise GeometryError(f"point {i} is not a finite number")
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise GeometryError(
                f"point {i} ({x:g}, {y:g}) is outside the image: coordinates are normalised to [0, 1]"
            )


MAX_POLYGON_POINTS = 256
"""Most points in one polygon: validation compares every pair of edges (vectorised), so the bound
keeps it to about a millisecond; a zone drawn by hand needs far fewer."""


def validate_polygon(points: Sequence[Sequence[float]]) -> tuple[Point, ...]:
    """Return the polygon as a tuple of points, or raise GeometryError saying why it is invalid."""
    # the bound comes first: nothing proportional to an oversized input runs (+1: a closed ring)
    if len(points) > MAX_POLYGON_POINTS + 1:
        raise GeometryError(f"a polygon has at most {MAX_POLYGON_POINTS} points, got {len(points)}")
    poly = tuple(_as_point(p, i) for i, p in enumerate(points))
    if len(poly) >= 2 and poly[0] == poly[-1]:
        poly = poly[:-1]  # an explicitly closed ring
    if len(poly) > MAX_POLYGON_POINTS:
        raise GeometryError(f"a polygon has at most {MAX_POLYGON_POINTS} points, got {len(poly)}")
    if len(poly) < 3:
        raise GeometryError(f"a polygon needs at least 3 points, got {len(poly)}")
    _check_unit(poly)
    n = len(poly)
    for i in range(n):
        if poly[i] == poly[(i + 1) % n]:
            raise GeometryError(f"points {i} and {(i + 1) % n} are the same")
    found = _first_self_intersection(poly)
    if found is not None:
        i, j, folds = found
        raise GeometryError(f"polygon self-intersects at edges {i} and {j}" + (" (folds back)" if folds else ""))
    if abs(polygon_area(poly)) < 1e-9:
        raise GeometryError("polygon has no area")
    return poly


def _cross_v(o: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
    # the same operations in the same order as `_cross`, so both give bit-identical results
    out: FloatArray = (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (
        b[..., 0] - o[..., 0]
    )
    return out


def _on_segment_v(p: FloatArray, a: FloatArray, b: FloatArray) -> BoolArray:
    out: BoolArray = (
        (np.minimum(a[..., 0], b[..., 0]) - 1e-12 <= p[..., 0])
        & (p[..., 0] <= np.maximum(a[..., 0], b[..., 0]) + 1e-12)
        & (np.minimum(a[..., 1], b[..., 1]) - 1e-12 <= p[..., 1])
        & (p[..., 1] <= np.maximum(a[..., 1], b[..., 1]) + 1e-12)
    )
    return out


def _first_self_intersection(poly: Sequence[Point]) -> tuple[int, int, bool] | None:
    """The first pair of edges (i < j, in row order) that meet, and whether they are neighbours that
    fold back on each other; None for a simple polygon.

    `segments_intersect` for every pair of non-neighbour edges at once (n <= MAX_POLYGON_POINTS,
    so the n x n arrays stay small); neighbours share a vertex and only count when collinear and
    pointing the same way from it.
    """
    n = len(poly)
    a = np.asarray(poly, dtype=np.float64)
    b = np.roll(a, -1, axis=0)
    ai, bi = a[:, None, :], b[:, None, :]  # edge i along rows
    cj, dj = a[None, :, :], b[None, :, :]  # edge j along columns
    d1, d2 = _cross_v(cj, dj, ai), _cross_v(cj, dj, bi)
    d3, d4 = _cross_v(ai, bi, cj), _cross_v(ai, bi, dj)
    proper = (((d1 > _EPS) & (d2 < -_EPS)) | ((d1 < -_EPS) & (d2 > _EPS))) & (
        ((d3 > _EPS) & (d4 < -_EPS)) | ((d3 < -_EPS) & (d4 > _EPS))
    )
    touch = (
        ((np.abs(d1) <= _EPS) & _on_segment_v(ai, cj, dj))
        | ((np.abs(d2) <= _EPS) & _on_segment_v(bi, cj, dj))
        | ((np.abs(d3) <= _EPS) & _on_segment_v(cj, ai, bi))
        | ((np.abs(d4) <= _EPS) & _on_segment_v(dj, ai, bi))
    )
    idx = np.arange(n)
    neighbours = (idx[None, :] == idx[:, None] + 1) | ((idx[:, None] == 0) & (idx[None, :] == n - 1))
    hits = (proper | touch) & np.triu(np.ones((n, n), dtype=bool), 1) & ~neighbours
    # neighbours: edge k ends where edge k+1 starts; edge n-1 ends where edge 0 starts
    shared = np.vstack((b[:-1], a[:1]))
    before = np.vstack((a[:-1], b[:1]))
    after = np.vstack((b[1:], a[-1:]))
    fold = (np.abs(_cross_v(shared, before, after)) <= _EPS) & (
        (before[:, 0] - shared[:, 0]) * (after[:, 0] - shared[:, 0])
        + (before[:, 1] - shared[:, 1]) * (after[:, 1] - shared[:, 1])
        > 0
    )
    rows = np.concatenate((idx[:-1], [0]))
    cols = np.concatenate((idx[1:], [n - 1]))
    hits[rows[fold], cols[fold]] = True
    first = np.argwhere(hits)
    if not len(first):
        return None
    i, j = int(first[0][0]), int(first[0][1])
    return i, j, bool(neighbours[i, j])


def validate_line(points: Sequence[Sequence[float]]) -> tuple[Point, Point]:
    """Return a line (segment) of two points, or raise GeometryError."""
    if len(points) != 2:
        raise GeometryError(f"a line needs exactly 2 points, got {len(points)}")
    a, b = _as_point(points[0], 0), _as_point(points[1], 1)
    _check_unit((a, b))
    if math.hypot(b[0] - a[0], b[1] - a[1]) < 1e-6:
        raise GeometryError("line has zero length")
    return a, b


def validate_direction(v: Sequence[float]) -> Point:
    """Return a unit direction vector, or raise GeometryError for a zero or malformed vector."""
    d = _as_point(v, 0)
    if not (math.isfinite(d[0]) and math.isfinite(d[1])):
        raise GeometryError("direction is not a finite vector")
    norm = math.hypot(*d)
    if norm < 1e-9:
        raise GeometryError("direction is zero")
    return d[0] / norm, d[1] / norm


def _as_point(p: Sequence[float], i: int) -> Point:
    try:
        if len(p) != 2:
            raise GeometryError(f"point {i} must have 2 coordinates [x, y], got {len(p)}")
        return float(p[0]), float(p[1])
    except TypeError as exc:
        raise GeometryError(f"point {i} must be a pair [x, y]") from exc


def side_normal(line: tuple[Point, Point], side: str) -> Point:
    """Unit normal of a line pointing to its `left` or `right` as seen walking from a to b on screen."""
    (ax, ay), (bx, by) = line
    dx, dy = bx - ax, by - ay
    n = math.hypot(dx, dy)
    if side == "left":
        return dy / n, -dx / n  # y is down: the screen's left of a rightward walk is up
    if side == "right":
        return -dy / n, dx / n
    raise GeometryError(f"side must be 'left' or 'right', got {side!r}")


# ---------------------------------------------------------------- scalar reference forms


def point_in_polygon(p: Point, poly: Sequence[Point]) -> bool:
    """Even-odd ray casting (points exactly on an edge may fall either way)."""
    x, y = p
    inside = False
    n = len(poly)
    for i in range(n):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % n]
        if (y1 > y) != (y2 > y):
            xint = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < xint:
                inside = not inside
    return inside


def signed_distance(p: Point, a: Point, normal: Point) -> float:
    """Distance of p from the infinite line through a, positive on the side `normal` points to."""
    return (p[0] - a[0]) * normal[0] + (p[1] - a[1]) * normal[1]


def crossing_param(p0: Point, p1: Point, a: Point, b: Point) -> float | None:
    """Where segment p0->p1 crosses the infinite line ab, as a fraction along ab (0 at a, 1 at b).

    None when p0 and p1 are on the same side (or on the line).
    """
    d0, d1 = _cross(a, b, p0), _cross(a, b, p1)
    if (d0 > 0) == (d1 > 0) or d0 == 0 or d1 == 0:
        return None
    f = d0 / (d0 - d1)
    cx, cy = p0[0] + f * (p1[0] - p0[0]), p0[1] + f * (p1[1] - p0[1])
    dx, dy = b[0] - a[0], b[1] - a[1]
    return ((cx - a[0]) * dx + (cy - a[1]) * dy) / (dx * dx + dy * dy)


def segment_crosses_line(p0: Point, p1: Point, a: Point, b: Point) -> bool:
    """Whether the movement p0->p1 crosses the segment ab (strictly from one side to the other)."""
    u = crossing_param(p0, p1, a, b)
    return u is not None and 0.0 <= u <= 1.0


def direction_agreement(motion: Point, direction: Point) -> float:
    """Cosine between a motion vector and a direction (0 for no motion)."""
    m = math.hypot(*motion)
    d = math.hypot(*direction)
    if m < _EPS or d < _EPS:
        return 0.0
    return (motion[0] * direction[0] + motion[1] * direction[1]) / (m * d)


# ---------------------------------------------------------------- vectorised forms


@dataclass(frozen=True, slots=True)
class Polygon:
    """A validated polygon with its edges pre-arranged for vectorised point-in-polygon tests."""

    points: tuple[Point, ...]
    x1: FloatArray
    y1: FloatArray
    y2: FloatArray
    slope: FloatArray
    bbox: tuple[float, float, float, float]
    # convex polygons: inside = every half-plane test holds (fewer array operations per call)
    halfplanes: tuple[FloatArray, FloatArray, FloatArray] | None = None
    normals: FloatArray | None = None  # (k, 2) the same half-plane normals, for contains_xy

    @classmethod
    def of(cls, points: Sequence[Sequence[float]]) -> Polygon:
        pts = validate_polygon(points)
        a = np.asarray(pts, dtype=np.float64)
        b = np.roll(a, -1, axis=0)
        dy = b[:, 1] - a[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(dy != 0, (b[:, 0] - a[:, 0]) / np.where(dy != 0, dy, 1.0), 0.0)
        xs, ys = a[:, 0], a[:, 1]
        edge = b - a
        cross = edge[:, 0] * np.roll(edge[:, 1], -1) - edge[:, 1] * np.roll(edge[:, 0], -1)
        halfplanes = None
        if (cross > 0).all() or (cross < 0).all():
            sign = 1.0 if (cross > 0).all() else -1.0
            # inside (for clockwise-on-screen order, cross > 0): edge x (p - a) >= 0 for every edge
            nx, ny = -edge[:, 1] * sign, edge[:, 0] * sign
            c = nx * a[:, 0] + ny * a[:, 1]
            halfplanes = (nx[:, None].copy(), ny[:, None].copy(), c[:, None].copy())
        return cls(
            points=pts,
            x1=a[:, 0, None].copy(),
            y1=a[:, 1, None].copy(),
            y2=b[:, 1, None].copy(),
            slope=slope[:, None].copy(),
            bbox=(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())),
            halfplanes=halfplanes,
            normals=None if halfplanes is None else np.hstack((halfplanes[0], halfplanes[1])),
        )

    def contains(self, x: FloatArray, y: FloatArray) -> BoolArray:
        """Test many points at once (same answers as `point_in_polygon` off the boundary)."""
        if self.halfplanes is not None:
            nx, ny, c = self.halfplanes
            out: BoolArray = np.logical_and.reduce(nx * x + ny * y >= c, axis=0)
            return out
        cond = (self.y1 > y) != (self.y2 > y)
        hits = cond & (x < self.x1 + (y - self.y1) * self.slope)
        odd: BoolArray = np.logical_xor.reduce(hits, axis=0)
        return odd

    def contains_xy(self, xy: FloatArray) -> BoolArray:
        """Same as `contains` for points stacked as a (2, n) array (one matrix product if convex)."""
        if self.halfplanes is not None and self.normals is not None:
            out: BoolArray = np.logical_and.reduce(self.normals @ xy >= self.halfplanes[2], axis=0)
            return out
        return self.contains(xy[0], xy[1])


@dataclass(frozen=True, slots=True)
class Line:
    """A validated counting / stop line with the unit normal that points to its positive side."""

    a: Point
    b: Point
    normal: Point

    @classmethod
    def of(cls, points: Sequence[Sequence[float]], positive: Sequence[float] | str) -> Line:
        """`positive` is a direction vector (or "left"/"right" of a->b) that points to the positive side."""
        a, b = validate_line(points)
        if isinstance(positive, str):
            return cls(a, b, side_normal((a, b), positive))
        d = validate_direction(positive)
        n = side_normal((a, b), "left")
        dot = d[0] * n[0] + d[1] * n[1]
        if abs(dot) < 0.17:  # within ~80 degrees of the line itself: no side to speak of
            raise GeometryError("direction is (almost) parallel to the line: it must point across it")
        return cls(a, b, n if dot > 0 else (-n[0], -n[1]))

    def distance(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Signed distances of many points (positive on the side the normal points to)."""
        return (x - self.a[0]) * self.normal[0] + (y - self.a[1]) * self.normal[1]

    def along(self, x: FloatArray | float, y: FloatArray | float) -> FloatArray | float:
        """Projection of points onto the line as a fraction of its length (0 at a, 1 at b)."""
        dx, dy = self.b[0] - self.a[0], self.b[1] - self.a[1]
        return ((x - self.a[0]) * dx + (y - self.a[1]) * dy) / (dx * dx + dy * dy)


class PolygonSet:
    """Several convex polygons tested together: one matrix product and one reduction for all of
    them instead of one of each per polygon (a camera's zone rules all test the same points)."""

    def __init__(self, polygons: Sequence[Polygon]) -> None:
        planes = [(p, p.normals, p.halfplanes[2]) for p in polygons if p.normals is not None and p.halfplanes]
        self.polygons: tuple[Polygon, ...] = tuple(p for p, _, _ in planes)
        self.index: dict[int, int] = {id(p): k for k, p in enumerate(self.polygons)}  # row of each polygon
        self.normals: FloatArray = np.vstack([n for _, n, _ in planes]) if planes else np.zeros((0, 2))
        self.offsets: FloatArray = np.vstack([c for _, _, c in planes]) if planes else np.zeros((0, 1))
        # first half-plane of each polygon (one per edge)
        self.starts = np.cumsum([0] + [len(p.points) for p in self.polygons[:-1]], dtype=np.intp)

    def contains_xy(self, xy: FloatArray) -> BoolArray:
        """(polygons, n): which of the points stacked as a (2, n) array each polygon contains; row k
        equals `polygons[k].contains_xy(xy)`."""
        if not self.polygons:
            return np.zeros((0, xy.shape[1]), dtype=bool)
        # the product stays numpy's (BLAS may fuse its multiply-adds: a kernel's own sums could differ in
        # the last bit); the comparisons and the reduction per polygon are one kernel call
        out: BoolArray = np.empty((len(self.polygons), xy.shape[1]), dtype=bool)
        kernels.all_halfplanes(self.normals @ xy, self.offsets, self.starts, out)
        return out
