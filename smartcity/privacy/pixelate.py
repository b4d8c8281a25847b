"""Pixelation of one box of a picture, vectorised: block means by two `reduceat` passes, so a
full-HD frame full of people costs a few milliseconds, not a Python loop per block."""

from __future__ import annotations

import numpy as np

from smartcity.core.vision import Box

_MIN_BLOCK = 8
# blocks of ~1/6 of the box's smaller side: a face spans at most a couple of blocks
_BLOCKS_PER_SIDE = 6


def pixelate(img: np.ndarray, box: Box, *, block: int = 0) -> None:
    """Replace the pixels of `box` (clipped to the H x W x C image) by block means, in place;
    `block` pixels a side (0: about a sixth of the box's smaller side, 8 at least)."""
    h, w = img.shape[:2]
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x2 <= x1 or y2 <= y1:
        return
    block = block or max(_MIN_BLOCK, min(x2 - x1, y2 - y1) // _BLOCKS_PER_SIDE)
    region = img[y1:y2, x1:x2].astype(np.float32)
    ys = np.arange(0, y2 - y1, block)
    xs = np.arange(0, x2 - x1, block)
    sums = np.add.reduceat(np.add.reduceat(region, ys, axis=0), xs, axis=1)
    ny = np.diff(np.append(ys, y2 - y1))
    nx = np.diff(np.append(xs, x2 - x1))
    means = sums / (ny[:, None, None] * nx[None, :, None])
    img[y1:y2, x1:x2] = np.repeat(np.repeat(means, ny, axis=0), nx, axis=1).astype(img.dtype)
