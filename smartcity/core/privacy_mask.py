"""The private part of one frame as it crosses from the camera actor to the live views: a coarse
grid of cells and the person boxes among it (made by `smartcity.privacy.mask`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from smartcity.core.vision import Box


@dataclass(frozen=True, slots=True, eq=False)
class PrivacyMask:
    """The private part of a `width` x `height` frame: `cells` (bool, one cell per `factor` x
    `factor` pixels; a box covers every cell it touches) and the person `boxes` (pixels) among it,
    which are pixelated with blocks scaled to their size."""

    width: int
    height: int
    factor: int
    cells: np.ndarray
    boxes: tuple[Box, ...] = ()

    @classmethod
    def from_boxes(cls, boxes: Iterable[Box], width: int, height: int, factor: int = 4) -> PrivacyMask:
        """A mask of boxes only (pixels of the frame)."""
        gh, gw = -(-height // factor), -(-width // factor)
        cells = np.zeros((gh, gw), dtype=bool)
        kept = tuple(boxes)
        for b in kept:
            paint_box(cells, b, factor)
        return cls(width, height, factor, cells, kept)

    def pixels(self, width: int | None = None, height: int | None = None) -> np.ndarray:
        """Bool H x W for a picture of this frame scaled to `width` x `height` (default: its own size)."""
        w, h = width or self.width, height or self.height
        gh, gw = self.cells.shape
        if (w, h) == (self.width, self.height) and gh * self.factor >= h and gw * self.factor >= w:
            # the frame's own size: cells repeated (a gather over every pixel costs more)
            full: np.ndarray = self.cells.repeat(self.factor, axis=0).repeat(self.factor, axis=1)[:h, :w]
            return full
        rows = np.minimum(((np.arange(h) + 0.5) * (self.height / h) // self.factor).astype(np.intp), gh - 1)
        cols = np.minimum(((np.arange(w) + 0.5) * (self.width / w) // self.factor).astype(np.intp), gw - 1)
        out: np.ndarray = self.cells[rows[:, None], cols[None, :]]
        return out

    @property
    def fraction(self) -> float:
        """Share of the frame masked."""
        return float(self.pixels().mean())


def paint_box(cells: np.ndarray, box: Box, factor: int) -> None:
    gh, gw = cells.shape
    x1, y1 = max(0, int(np.floor(box[0] / factor))), max(0, int(np.floor(box[1] / factor)))
    x2, y2 = min(gw, int(np.ceil(box[2] / factor))), min(gh, int(np.ceil(box[3] / factor)))
    if x2 > x1 and y2 > y1:
        cells[y1:y2, x1:x2] = True
