"""Static privacy-mask zones of a camera (windows, gardens, doorways of homes): polygons in
normalised image coordinates, filled solid in every picture that leaves the camera actor, and
the polygon filling the private mask shares (keypoint hulls)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from smartcity.core.privacy_config import MAX_ZONE_POINTS, MAX_ZONES

Point = tuple[float, float]
ZONE_RGB = (48, 48, 48)


def fill_polygon(mask: np.ndarray, points: Sequence[Point]) -> None:
    """Set the cells of `mask` (bool, H x W) whose centres lie inside the polygon (even-odd
    rule; `points` in the mask's pixel coordinates, x to the right, y down), in place."""
    if len(points) < 3:
        return
    h, w = mask.shape
    pts = np.asarray(points, dtype=np.float64)
    x0 = max(0, int(np.floor(pts[:, 0].min())))
    x1 = min(w, int(np.ceil(pts[:, 0].max())) + 1)
    y0 = max(0, int(np.floor(pts[:, 1].min())))
    y1 = min(h, int(np.ceil(pts[:, 1].max())) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    ys = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5
    xs = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5
    inside = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for (ax, ay), (bx, by) in zip(pts, np.roll(pts, -1, axis=0)):
        if ay == by:
            continue
        crosses = (ay > ys) != (by > ys)
        x_at = ax + (ys - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (xs < x_at)
    mask[y0:y1, x0:x1] |= inside


@dataclass(frozen=True, slots=True)
class PrivacyZones:
    """A camera's privacy zones: polygons of 3 to 64 points in normalised coordinates (0..1)."""

    polygons: tuple[tuple[Point, ...], ...] = ()

    def __post_init__(self) -> None:
        if len(self.polygons) > MAX_ZONES:
            raise ValueError(f"at most {MAX_ZONES} privacy zones per camera, got {len(self.polygons)}")
        for i, poly in enumerate(self.polygons):
            if not 3 <= len(poly) <= MAX_ZONE_POINTS:
                raise ValueError(
                    f"privacy zone {i}: a polygon needs 3 to {MAX_ZONE_POINTS} points, got {len(poly)}"
                )
            for x, y in poly:
                if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                    raise ValueError(f"privacy zone {i}: point ({x}, {y}) is outside the picture (0..1)")

    @classmethod
    def of(cls, polygons: Sequence[Sequence[Sequence[float]]]) -> PrivacyZones:
        """Zones from plain point lists ([[x, y], ...] per polygon); ValueError names a bad one."""
        return cls(tuple(tuple((float(p[0]), float(p[1])) for p in poly) for poly in polygons))

    def __bool__(self) -> bool:
        return bool(self.polygons)

    def mask(self, width: int, height: int) -> np.ndarray:
        """Bool H x W: the pixels the zones cover in a `width` x `height` picture."""
        out = np.zeros((height, width), dtype=bool)
        for poly in self.polygons:
            fill_polygon(out, [(x * width, y * height) for x, y in poly])
        return out


class ZonePainter:
    """Fills a camera's zones in its pictures; the pixel mask is computed once per picture size."""

    def __init__(self, zones: PrivacyZones = PrivacyZones()) -> None:
        self.zones = zones
        self._masks: dict[tuple[int, int], np.ndarray] = {}

    def paint(self, image: np.ndarray) -> np.ndarray:
        """`image` with the zones filled solid: the same array when there is no zone, else a copy."""
        if not self.zones:
            return image
        h, w = image.shape[:2]
        m = self._masks.get((w, h))
        if m is None:
            if len(self._masks) > 8:
                self._masks.clear()
            m = self._masks[(w, h)] = self.zones.mask(w, h)
        out = np.array(image, copy=True)
        out[m] = ZONE_RGB
        return out
