"""The fail-closed private mask of a picture: everything that may be a person.

The union of person boxes (any score the detector reports), the tracker's predicted boxes,
what moves against the background model, and the hulls of pose keypoints, each grown by a
margin that widens with uncertainty (low score, seconds since the detector saw the object).
When the mask cannot be trusted (the background model still learning or relearning a changed
scene, no detector answer yet or none for `detector_timeout_s`) the masker answers None, and
every picture made from it is hidden whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from smartcity.core.privacy_config import BackgroundConfig, MaskConfig
from smartcity.core.privacy_mask import PrivacyMask, paint_box
from smartcity.core.vision import Box, Detection, Track
from smartcity.privacy.background import BackgroundModel, Foreground
from smartcity.privacy.boxes import PRIVATE_CLASSES
from smartcity.privacy.zones import fill_polygon

VEHICLE_CLASSES = frozenset({"car", "bus", "truck", "motorcycle", "van"})
_SURE_VEHICLE = 0.5


def _grow(box: Box, margin: float, width: int, height: int) -> Box:
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    return (max(0.0, x1 - mx), max(0.0, y1 - my), min(float(width), x2 + mx), min(float(height), y2 + my))


def _turn(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """z of the cross product (a - o) x (b - o): > 0 for a left turn."""
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain) of N x 2 points, counter-clockwise."""
    pts = np.unique(points, axis=0)
    if len(pts) < 3:
        return pts

    def half(seq: np.ndarray) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for p in seq:
            while len(out) >= 2 and _turn(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


class PrivacyMasker:
    """One camera's masker: feed it every analysed frame with what the detector and the tracker
    say; it keeps the background model and answers the frame's mask, or None (hide it all)."""

    def __init__(self, config: MaskConfig | None = None, background: BackgroundConfig | None = None) -> None:
        self.config = config or MaskConfig()
        self.background = BackgroundModel(background)
        self.last_detector_t: float | None = None  # frame time of the latest detector answer
        self.frames = 0
        self.untrusted = 0  # frames answered None

    def detector_answered(self, t: float) -> None:
        """The detector analysed the frame of time `t` (the masker trusts boxes until the timeout)."""
        self.last_detector_t = t

    def _margin(self, score: float, stale_s: float) -> float:
        c = self.config
        m = (
            c.box_margin
            + c.low_score_margin * (1.0 - min(1.0, max(0.0, score)))
            + c.stale_margin_per_s * stale_s
        )
        return min(c.max_margin, m)

    def update(
        self, image: np.ndarray, t: float, detections: Sequence[Detection], tracks: Sequence[Track] = ()
    ) -> PrivacyMask | None:
        """The mask of `image` (H x W x 3 uint8, time `t`): `detections` are what the frame shows
        (the detector's, or the tracker's predictions on a frame the detector did not see)."""
        self.frames += 1
        h, w = image.shape[:2]
        factor = max(1, round(w / self.background.config.grid_width))
        gh, gw = -(-h // factor), -(-w // factor)
        stale_s = max(0.0, t - self.last_detector_t) if self.last_detector_t is not None else 0.0
        boxes: list[Box] = []
        for d in detections:
            if d.cls in PRIVATE_CLASSES:
                boxes.append(_grow(d.box, self._margin(d.score, stale_s), w, h))
        for tr in tracks:
            if tr.cls in PRIVATE_CLASSES:
                boxes.append(_grow(tr.box, self._margin(tr.score, stale_s + max(0.0, t - tr.t)), w, h))
        people = np.zeros((gh, gw), dtype=bool)
        for b in boxes:
            paint_box(people, b, factor)
        located: list[Detection | Track] = [*detections, *tracks]
        for o in located:
            if o.cls in PRIVATE_CLASSES:
                self._paint_hull(people, o, factor, stale_s)
        model_cells = people[: h // factor, : w // factor] if factor > 1 else people[:h, :w]
        fg = self.background.update(image, private=model_cells)
        trusted = self.last_detector_t is not None and stale_s <= self.config.detector_timeout_s
        if fg is None or not trusted:
            self.untrusted += 1
            return None
        cells = people | self._foreground_cells(fg, (gh, gw), detections)
        return PrivacyMask(w, h, factor, cells, tuple(boxes))

    def _paint_hull(self, cells: np.ndarray, obj: Detection | Track, factor: int, stale_s: float) -> None:
        pts = np.array(
            [(k.x, k.y) for k in obj.keypoints if k.score >= self.config.keypoint_score], dtype=np.float64
        )
        if len(pts) < 3:
            return
        hull = _hull(pts)
        if len(hull) < 3:
            return
        centre = hull.mean(axis=0)
        grown = centre + (hull - centre) * (1.0 + 2.0 * self._margin(obj.score, stale_s))
        fill_polygon(cells, [(float(x) / factor, float(y) / factor) for x, y in grown])

    def _foreground_cells(
        self, fg: Foreground, shape: tuple[int, int], detections: Sequence[Detection]
    ) -> np.ndarray:
        # imported here: scipy.ndimage takes ~1.5 s to import, paid by every camera-group process
        # at its start (a node loss restarts many at once) even when it analyses nothing
        from scipy import ndimage

        c = self.config
        moving = fg.cells
        if c.spare_vehicles:
            moving = moving & ~self._sure_vehicles(moving.shape, fg.factor, detections)
        labels, n = ndimage.label(moving)
        out = np.zeros(shape, dtype=bool)
        if n == 0:
            return out
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        grow = int(np.ceil(c.foreground_margin_px / fg.factor))
        gh, gw = shape
        for i, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is None or sizes[i] < c.foreground_min_cells:
                continue
            ys, xs = sl
            y0, y1 = max(0, ys.start - grow), min(gh, ys.stop + grow)
            x0, x1 = max(0, xs.start - grow), min(gw, xs.stop + grow)
            if c.foreground_box:
                out[y0:y1, x0:x1] = True
            else:
                region = labels[y0:y1, x0:x1] == i
                out[y0:y1, x0:x1] |= ndimage.binary_dilation(region, iterations=max(1, grow))
        return out

    @staticmethod
    def _sure_vehicles(shape: tuple[int, ...], factor: int, detections: Sequence[Detection]) -> np.ndarray:
        """Cells inside a confident vehicle box and outside every person box."""
        vehicles = np.zeros(shape, dtype=bool)
        people = np.zeros(shape, dtype=bool)
        for d in detections:
            if d.cls in VEHICLE_CLASSES and d.score >= _SURE_VEHICLE:
                paint_box(vehicles, d.box, factor)
            elif d.cls in PRIVATE_CLASSES:
                paint_box(people, _grow(d.box, 0.25, shape[1] * factor, shape[0] * factor), factor)
        return vehicles & ~people
