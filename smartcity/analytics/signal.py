"""Traffic-signal state from the pixels over a signal head: which lamp is lit (red, amber, green)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

SignalColour = Literal["red", "amber", "green"]


def classify_signal(image: npt.NDArray[np.uint8], roi: Sequence[float]) -> SignalColour | None:
    """Colour of the lit lamp inside `roi` (normalised x1, y1, x2, y2), or None if no lamp is lit.

    A lit lamp is a set of bright, saturated pixels; its hue decides the colour. Dark or grey
    regions (lamp off, night glare, a truck in front) give None, so the caller keeps the last state.
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = roi
    c1, c2 = int(x1 * w), max(int(x1 * w) + 1, int(np.ceil(x2 * w)))
    r1, r2 = int(y1 * h), max(int(y1 * h) + 1, int(np.ceil(y2 * h)))
    crop = image[r1:r2, c1:c2, :3].astype(np.int16)
    if crop.size == 0:
        return None
    r, g, b = crop[..., 0], crop[..., 1], crop[..., 2]
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    lit = (mx >= 140) & ((mx - mn) * 10 >= mx * 4)
    n_lit = int(np.count_nonzero(lit))
    if n_lit < max(3, crop.shape[0] * crop.shape[1] // 100):
        return None
    r, g, b, mx, mn = r[lit], g[lit], b[lit], mx[lit], mn[lit]
    span = (mx - mn).astype(np.float32)
    hue = np.where(
        mx == r,
        ((g - b) / span) % 6.0,
        np.where(mx == g, (b - r) / span + 2.0, (r - g) / span + 4.0),
    ) * 60.0
    red = int(np.count_nonzero((hue < 18) | (hue >= 330)))
    amber = int(np.count_nonzero((hue >= 18) & (hue < 70)))
    green = int(np.count_nonzero((hue >= 80) & (hue < 200)))
    best = max(red, amber, green)
    if best * 2 < n_lit:
        return None
    if best == red:
        return "red"
    if best == amber:
        return "amber"
    return "green"
