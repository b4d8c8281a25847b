"""Crossing a line, shared by the rules that watch one (line_count, red_light).

Crossings use the box's ground point with a hysteresis band around the line: a track's side
only changes once it is clearly on the other side, so a box that flickers across the line is
counted once. A crossing by a track younger than `min_track_age` frames is held pending and
counted when the track matures (false positives never do).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationInfo

from smartcity.analytics import kernels
from smartcity.analytics.base import FrameView, SlotArrays
from smartcity.analytics.geometry import BoolArray, FloatArray, GeometryError, Line


def check_across(v: Any, info: ValidationInfo, line_field: str) -> Any:
    """Validator body: the direction `v` must point across the line in `line_field`."""
    line = info.data.get(line_field)
    if line is not None:
        try:
            Line.of(line, v)
        except GeometryError as exc:
            raise ValueError(str(exc)) from None
    return v


def on_line(line: Line, u: float, **extra: Any) -> dict[str, Any]:
    """Payload of a crossing: where on the line it happened (normalised), plus rule fields."""
    x = line.a[0] + u * (line.b[0] - line.a[0])
    y = line.a[1] + u * (line.b[1] - line.a[1])
    return {"x": round(x, 4), "y": round(y, 4), **extra}


class Crossings:
    """Side-of-line state per slot with hysteresis; yields confirmed crossings.

    The band around the line is at least `hysteresis`, and at least `box_share` of the box's extent
    across the line: a detector's box edges jitter by a few percent of the box, so a vehicle waiting
    on the line would otherwise be counted in, out, in, out. A track first seen inside the band
    takes the side its ground point is on (it may have been born on the line).
    """

    def __init__(self, line: Line, hysteresis: float, margin: float, min_age: int, box_share: float = 0.0) -> None:
        self.line = line
        self.h = hysteresis
        self.box_share = box_share
        self.nx, self.ny = abs(line.normal[0]), abs(line.normal[1])
        self.margin = margin
        self.min_age = min_age
        # the line for the kernel: a, b and the unit normal
        self._line = np.array([*line.a, *line.b, *line.normal], dtype=np.float64)
        self.st = SlotArrays(
            side=(0, np.int8), px=(np.nan, np.float64), py=(np.nan, np.float64), pt=(np.nan, np.float64),
            pend=(0, np.int8), pend_t=(np.nan, np.float64), pend_x=(np.nan, np.float64),
        )

    def step(self, view: FrameView, sel: BoolArray) -> list[tuple[int, int, float, float]]:
        """(track index, direction +1/-1, crossing time, along-line fraction) of crossings now confirmed."""
        st = self.st
        st.ensure(view.capacity)
        st.reset(view.new_slots)
        idx, s, x, y = view.pick(sel)
        if not len(idx):
            return []
        d_all, new_all = view.batched(self)
        hit, direction, t_cross, u = kernels.crossings_step(
            idx, s, x, y, d_all, new_all, view.hits, st.side, st.px, st.py, st.pt, st.pend, st.pend_t, st.pend_x,
            float(view.t), self.margin, self.min_age, self._line,
        )
        if not len(hit):
            return []
        return list(zip(hit.tolist(), direction.tolist(), t_cross.tolist(), u.tolist(), strict=True))

    @classmethod
    def batch(cls, members: Sequence[Crossings]) -> CrossingSides:
        return CrossingSides(members)

    def reset(self) -> None:
        self.st.reset(list(range(self.st.capacity)))


class CrossingSides:
    """The lines of several Crossings tested together (a FrameBatch): per line, every track's signed
    distance and its side with the hysteresis band (+1, -1, or 0 inside the band), as (lines, tracks)
    arrays. The same operations in the same order as one line alone, so the results are identical."""

    def __init__(self, members: Sequence[Crossings]) -> None:
        self.members = tuple(members)

        def column(values: list[float]) -> FloatArray:
            return np.array(values, dtype=np.float64).reshape(-1, 1)

        lines = [c.line for c in self.members]
        self.ax, self.ay = column([ln.a[0] for ln in lines]), column([ln.a[1] for ln in lines])
        self.nx, self.ny = column([ln.normal[0] for ln in lines]), column([ln.normal[1] for ln in lines])
        self.h = column([c.h for c in self.members])
        # lines whose band spans a share of the box's extent across them; on the others it is `h`
        self.share = column([c.box_share for c in self.members])
        self.bx, self.by = column([c.nx for c in self.members]), column([c.ny for c in self.members])
        plain = [k for k, c in enumerate(self.members) if c.box_share <= 0]
        self.boxed = len(plain) < len(self.members)
        self.plain = np.array(plain, dtype=np.intp) if plain else None
        self.h_plain = self.h[plain]

    def evaluate(self, view: FrameView) -> list[tuple[FloatArray, npt.NDArray[np.int8]]]:
        d = (view.gx - self.ax) * self.nx + (view.gy - self.ay) * self.ny
        band = self.h  # (lines, 1): broadcast along the tracks
        if self.boxed:
            band = np.maximum(self.h, self.share * (self.bx * view.bw + self.by * view.bh))
            if self.plain is not None:
                band[self.plain] = self.h_plain
        new = (d > band).view(np.int8) - (d < -band).view(np.int8)
        return list(zip(d, new, strict=True))
