"""What a live viewer sees, as pure numpy: people pixelated, rule geometry drawn, size limited.

No I/O and no codec here: the encoder module turns these pictures into packets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from smartcity.webrtc.types import RGB, Box, OverlayShape

_MIN_BLOCK = 8
# blocks of ~1/6 of the box's smaller side: a face spans at most a couple of blocks
_BLOCKS_PER_SIDE = 6


def fit_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The largest even size within the limits that keeps the aspect ratio (never upscales)."""
    scale = min(1.0, max_width / width, max_height / height)
    w = max(2, int(width * scale) // 2 * 2)
    h = max(2, int(height * scale) // 2 * 2)
    return w, h


def pixelate(img: np.ndarray, box: Box) -> None:
    """Replace the pixels of `box` (clipped to the image) by block means, in place."""
    h, w = img.shape[:2]
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x2 <= x1 or y2 <= y1:
        return
    block = max(_MIN_BLOCK, min(x2 - x1, y2 - y1) // _BLOCKS_PER_SIDE)
    region = img[y1:y2, x1:x2].astype(np.float32)
    ys = np.arange(0, y2 - y1, block)
    xs = np.arange(0, x2 - x1, block)
    sums = np.add.reduceat(np.add.reduceat(region, ys, axis=0), xs, axis=1)
    ny = np.diff(np.append(ys, y2 - y1))
    nx = np.diff(np.append(xs, x2 - x1))
    means = sums / (ny[:, None, None] * nx[None, :, None])
    img[y1:y2, x1:x2] = np.repeat(np.repeat(means, ny, axis=0), nx, axis=1).astype(np.uint8)


@dataclass(frozen=True, slots=True, eq=False)
class OverlayRaster:
    """Overlay shapes rasterised once for one picture size: flat pixel indices and a colour each."""

    width: int
    height: int
    layers: tuple[tuple[np.ndarray, RGB], ...]

    def draw(self, img: np.ndarray) -> None:
        flat = img.reshape(-1, 3)
        for idx, rgb in self.layers:
            flat[idx] = rgb


def _segment_pixels(p0: tuple[float, float], p1: tuple[float, float], thickness: int, w: int, h: int) -> np.ndarray:
    steps = int(max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]))) + 1
    cx = np.rint(np.linspace(p0[0], p1[0], steps)).astype(np.int64)
    cy = np.rint(np.linspace(p0[1], p1[1], steps)).astype(np.int64)
    half = thickness // 2
    d = np.arange(-half, thickness - half)
    px = (cx[:, None, None] + d[None, :, None]).repeat(thickness, axis=2)
    py = (cy[:, None, None] + d[None, None, :]).repeat(thickness, axis=1)
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    return np.unique(py[inside] * w + px[inside])


def rasterise(shapes: Sequence[OverlayShape], width: int, height: int) -> OverlayRaster:
    """Rasterise normalised shapes for a `width` x `height` picture (lines ~1/120 of the short side, 4 px at least)."""
    # at least 4 pixels: 4:2:0 video shares colour across 2x2 pixels, a thinner line loses its hue
    thickness = max(4, min(width, height) // 120)
    layers = []
    for shape in shapes:
        pts = [(x * (width - 1), y * (height - 1)) for x, y in shape.points]
        if len(pts) < 2:
            continue
        pairs = list(zip(pts, pts[1:]))
        if shape.closed and len(pts) >= 3:
            pairs.append((pts[-1], pts[0]))
        idx = np.unique(np.concatenate([_segment_pixels(a, b, thickness, width, height) for a, b in pairs]))
        layers.append((idx, shape.rgb))
    return OverlayRaster(width, height, tuple(layers))


def compose(
    image: np.ndarray,
    person_boxes: Sequence[Box] | None,
    *,
    pixelate_people: bool,
    overlay: OverlayRaster | None,
) -> np.ndarray:
    """The picture a viewer sees: a new array (the input is not modified).

    With `pixelate_people`, each person box is pixelated; `person_boxes` None (nobody can be
    located) pixelates the whole picture. The overlay is drawn last, so it is never blurred.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H x W x 3 uint8 RGB, got {image.shape} {image.dtype}")
    img = np.array(image, copy=True, order="C")
    h, w = img.shape[:2]
    if pixelate_people:
        for box in person_boxes if person_boxes is not None else [(0.0, 0.0, float(w), float(h))]:
            pixelate(img, box)
    if overlay is not None:
        if (overlay.width, overlay.height) != (w, h):
            raise ValueError(f"overlay rasterised for {overlay.width}x{overlay.height}, picture is {w}x{h}")
        overlay.draw(img)
    return img
