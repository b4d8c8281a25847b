"""Crossing a line, shared by the rules that watch one (line_count, red_light).

Crossings use the box's ground point with a hysteresis band around the line: a track's side
only changes once it is clearly on the other side, so a box that flickers across the line is
counted once. A crossing by a track younger than `min_track_age` frames is held pending and
counted when the track matures (false positives never do).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import ValidationInfo

from smartcity.analytics import kernels
from smartcity.analytics.base import FrameView, ScratchRows, SlotArrays
from smartcity.analytics.geometry import BoolArray, GeometryError, Line


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
        # the line and its band for the kernel
        self._line = np.array([*line.a, *line.b, *line.normal, hysteresis, box_share, self.nx, self.ny],
                              dtype=np.float64)
        self.st = SlotArrays(
            side=(0, np.int8), px=(np.nan, np.float64), py=(np.nan, np.float64), pt=(np.nan, np.float64),
            pend=(0, np.int8), pend_t=(np.nan, np.float64), pend_x=(np.nan, np.float64),
        )
        k = kernels
        self.st.expect_rows("side", "px", px=k.PX, py=k.PY, pt=k.PT, pend_t=k.PEND_T, pend_x=k.PEND_X, side=k.SIDE,
                            pend=k.PEND)
        self._out = ScratchRows(4)  # the kernel's crossings: track index, direction, time, fraction along

    def step(self, view: FrameView, sel: BoolArray) -> list[tuple[int, int, float, float]]:
        """(track index, direction +1/-1, crossing time, along-line fraction) of crossings now confirmed."""
        st = self.st
        if st.capacity < view.capacity:
            st.ensure(view.capacity)
        if view.new_slots:
            st.reset(view.new_slots)
        out = self._out.fit(len(sel))
        sides, floats = st.matrices  # (side, pend), (px ... pend_x)
        k = kernels.crossings_step(sel, view.geo, view.ints, floats, sides, float(view.t), self.margin, self.min_age,
                                   self._line, out)
        if not k:
            return []
        hit, direction, t_cross, u = out[:, :k].tolist()
        return [(int(i), int(d), tc, uu) for i, d, tc, uu in zip(hit, direction, t_cross, u, strict=True)]

    def reset(self) -> None:
        self.st.reset(list(range(self.st.capacity)))
