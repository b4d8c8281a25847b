"""Crossing a line, shared by the rules that watch one (line_count, red_light).

Crossings use the box's ground point with a hysteresis band around the line: a track's side
only changes once it is clearly on the other side, so a box that flickers across the line is
counted once. A crossing by a track younger than `min_track_age` frames is held pending and
counted when the track matures (false positives never do).

With `hidden_s`, a crossing made behind a nearer object is counted too: a low camera looks along
the road, so a vehicle that has just entered the picture is covered by the one following it for a
second or two, and one leaving the junction passes behind the queue waiting on the other side.
It was seen moving towards the line, is lost as its predicted box goes behind objects detected
nearer the camera, and its prediction crosses the line within `hidden_s` of its last sighting. The
crossing is noted, not counted: if the object comes out on its own side (it stopped behind the
bus) the note is dropped; if it comes out across under the same slot, the crossing is counted as
any other; if it never comes out under that slot (it re-appears as a new track further on, or
leaves the picture hidden) the note is counted when the slot is released, at the time it crossed.
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

    def __init__(
        self, line: Line, hysteresis: float, margin: float, min_age: int, box_share: float = 0.0,
        hidden_s: float = 0.0, hidden_covered: float = 0.5,
    ) -> None:
        self.line = line
        self.hidden_s = hidden_s  # 0: crossings behind nearer objects are not counted (see the module docstring)
        self.hidden_covered = hidden_covered
        self.h = hysteresis
        self.box_share = box_share
        self.nx, self.ny = abs(line.normal[0]), abs(line.normal[1])
        self.margin = margin
        self.min_age = min_age
        # the line and its band for the kernel
        self._line = np.array([*line.a, *line.b, *line.normal, hysteresis, box_share, self.nx, self.ny],
                              dtype=np.float64)
        # per slot: the side, the last sighting, the crossing pending, the crossing behind nearer objects noted
        # (direction h_side; time, fraction along, track id and class code)
        self.st = SlotArrays(
            side=(0, np.int8), px=(np.nan, np.float64), py=(np.nan, np.float64), pt=(np.nan, np.float64),
            pend=(0, np.int8), pend_t=(np.nan, np.float64), pend_x=(np.nan, np.float64), h_side=(0, np.int8),
            h_t=(np.nan, np.float64), h_u=(np.nan, np.float64), h_tid=(-1.0, np.float64), h_code=(-1.0, np.float64),
        )
        k = kernels
        self.st.expect_rows("side", "px", px=k.PX, py=k.PY, pt=k.PT, pend_t=k.PEND_T, pend_x=k.PEND_X, h_t=k.H_T,
                            h_u=k.H_U, h_tid=k.H_TID, h_code=k.H_CODE, side=k.SIDE, pend=k.PEND, h_side=k.HIDDEN)
        self._no_classes = np.zeros(0, dtype=bool)
        self._out = ScratchRows(4)  # the kernel's crossings: track index, direction, time, fraction along
        # crossings behind nearer objects counted on the last step: direction, time, fraction along, track id,
        # class code
        self.released: list[tuple[int, float, float, int, int]] = []

    def step(self, view: FrameView, sel: BoolArray, table: BoolArray | None = None,
             min_conf: float = 0.0) -> list[tuple[int, int, float, float]]:
        """(track index, direction +1/-1, crossing time, along-line fraction) of crossings now confirmed.

        `table` (by class code) and `min_conf`: the tracks whose crossings behind nearer objects count
        (`hidden_s`); those counted now are in `released`."""
        st = self.st
        if st.capacity < view.capacity:
            st.ensure(view.capacity)
        if view.new_slots:
            st.reset(view.new_slots)
        out = self._out.fit(len(sel))
        sides, floats = st.matrices  # (side, pend, h_side), (px ... h_code)
        hidden = self.hidden_s if table is not None else 0.0
        self.released = []
        if hidden > 0 and view.freed_slots:  # a slot released now is not in the frame: its note is final
            for s in view.freed_slots:
                d = int(sides[kernels.HIDDEN, s])
                if d:
                    self.released.append((d, float(floats[kernels.H_T, s]), float(floats[kernels.H_U, s]),
                                          int(floats[kernels.H_TID, s]), int(floats[kernels.H_CODE, s])))
                    sides[kernels.HIDDEN, s] = 0
        k = kernels.crossings_step(sel, view.geo, view.ints, floats, sides, float(view.t), self.margin, self.min_age,
                                   self._line, out, self._no_classes if table is None else table, min_conf, view.conf,
                                   view.fresh, hidden, self.hidden_covered)
        if not k:
            return []
        hit, direction, t_cross, u = out[:, :k].tolist()
        return [(int(i), int(d), tc, uu) for i, d, tc, uu in zip(hit, direction, t_cross, u, strict=True)]

    def reset(self) -> None:
        self.st.reset(list(range(self.st.capacity)))
