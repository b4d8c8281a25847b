"""Rule geometry drawn over a picture: shapes in normalised coordinates, rasterised once per
picture size into flat pixel indices, then painted on every picture of that size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Point = tuple[float, float]
RGB = tuple[int, int, int]

GEOMETRY_RGB: RGB = (255, 200, 0)


@dataclass(frozen=True, slots=True)
class OverlayShape:
    """A rule's geometry in normalised image coordinates (0..1): a polyline, or a polygon if `closed`."""

    points: tuple[Point, ...]
    closed: bool = False
    rgb: RGB = GEOMETRY_RGB

    @classmethod
    def coerce(cls, shape: OverlayShape | Sequence[Sequence[float]]) -> OverlayShape:
        """A shape from a plain point list: two points make a line, three or more a closed zone."""
        if isinstance(shape, OverlayShape):
            return shape
        pts = tuple((float(p[0]), float(p[1])) for p in shape)
        return cls(pts, closed=len(pts) >= 3)


@dataclass(frozen=True, slots=True, eq=False)
class OverlayRaster:
    """Overlay shapes rasterised once for one picture size: flat pixel indices and a colour each."""

    width: int
    height: int
    layers: tuple[tuple[np.ndarray, RGB], ...]

    def draw(self, img: np.ndarray) -> None:
        """Paint the shapes on `img` (H x W x 3, the raster's size, C-contiguous) in place."""
        flat = img.reshape(-1, 3)
        for idx, rgb in self.layers:
            flat[idx] = rgb


def _segment_pixels(p0: Point, p1: Point, thickness: int, w: int, h: int) -> np.ndarray:
    steps = int(max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]))) + 1
    cx = np.rint(np.linspace(p0[0], p1[0], steps)).astype(np.int64)
    cy = np.rint(np.linspace(p0[1], p1[1], steps)).astype(np.int64)
    half = thickness // 2
    d = np.arange(-half, thickness - half)
    px = (cx[:, None, None] + d[None, :, None]).repeat(thickness, axis=2)
    py = (cy[:, None, None] + d[None, None, :]).repeat(thickness, axis=1)
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    return np.unique(py[inside] * w + px[inside])


def rasterise(shapes: Sequence[OverlayShape | Sequence[Sequence[float]]], width: int, height: int) -> OverlayRaster:
    """Rasterise normalised shapes for a `width` x `height` picture (lines ~1/120 of the short
    side, 4 px at least). Plain point lists are taken as `OverlayShape.coerce` reads them."""
    # at least 4 pixels: 4:2:0 video and JPEG share colour across 2x2 pixels, a thinner line loses its hue
    thickness = max(4, min(width, height) // 120)
    layers = []
    for shape in map(OverlayShape.coerce, shapes):
        pts = [(x * (width - 1), y * (height - 1)) for x, y in shape.points]
        if len(pts) < 2:
            continue
        pairs = list(zip(pts, pts[1:]))
        if shape.closed and len(pts) >= 3:
            pairs.append((pts[-1], pts[0]))
        idx = np.unique(np.concatenate([_segment_pixels(a, b, thickness, width, height) for a, b in pairs]))
        layers.append((idx, shape.rgb))
    return OverlayRaster(width, height, tuple(layers))
