"""Being somewhere: the enter/stay/leave state machine of a zone, and standing still.

`ZoneStay` is shared by the rules about time spent in a zone (dwell, zone_passage): a stay
starts when an object is seen in the zone and ends when it has been seen outside it for
`exit_grace_s`, or when its slot is freed (the object is gone). `Stillness` is shared by the
rules about objects that stop (dwell, abandoned_object, dumping): the place an object has stayed
within a radius of, and since when; moving further re-anchors it.

Distances between objects are measured in units of the frame width (y is scaled by
height/width) so that a radius means the same on both axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from smartcity.analytics import kernels
from smartcity.analytics.base import FrameView, IntArray, Scratch, SlotArrays
from smartcity.analytics.geometry import BoolArray, FloatArray, Polygon

_NO_KEEP: BoolArray = np.zeros(0, dtype=bool)  # Stillness.update's kernel: no track keeps its anchor

# ZoneStay fills for who an object in a stay is, as a rule last noted it: track id (-1: not noted),
# class code and ground point (kernels write them; `who` reads them back)
WHO = {"who_id": (-1, np.intp), "who_code": (-1, np.intp), "who_x": (np.nan, np.float64),
       "who_y": (np.nan, np.float64)}


def who(st: SlotArrays, view: FrameView, slot: int) -> tuple[int, str, float, float] | None:
    """Track id, class and ground point noted in `st`'s WHO arrays for a slot (None: nothing noted)."""
    tid = int(st.who_id[slot])
    if tid < 0:
        return None
    return tid, view.vocab.names[int(st.who_code[slot])], float(st.who_x[slot]), float(st.who_y[slot])


def aspect(view: FrameView) -> float:
    """Height over width of the frame: scales normalised y to units of the frame width."""
    return view.height / view.width if view.width else 1.0


@dataclass(slots=True)  # not frozen: made for every rule on every frame, where frozen costs
class StayFrame:
    """What one frame did to the stays of a zone.

    `ended`: slots whose stay ended (their object left or is gone; a freed slot is listed even if
    it had no stay); their per-slot state is readable until `ZoneStay.release`. `idx`: the
    selected tracks in the zone (indices into the view), `slots` theirs, `started` which of them
    entered now: views of the stay's output buffers, valid until its next step.
    """

    ended: list[int]
    idx: IntArray
    slots: IntArray
    started: BoolArray


class ZoneStay:
    """Per-slot enter/stay/leave of one zone; `st` holds `entered` and `last` (seen inside) per
    slot plus the arrays the rule asks for (`fills`, as for SlotArrays), all reset together."""

    def __init__(self, zone: Polygon, exit_grace_s: float, **fills: tuple[float | int | bool, Any]) -> None:
        self.zone = zone
        self.exit_grace_s = exit_grace_s
        self.st = SlotArrays(entered=(np.nan, np.float64), last=(np.nan, np.float64), **fills)
        self._out = Scratch(np.intp, np.intp, np.intp, np.bool_)  # the kernel's gone, idx, slots, started
        if set(WHO) <= set(fills):  # the rows the kernels that note who is in a stay read
            k = kernels
            self.st.expect_rows(entered=k.ENTERED, last=k.LAST, who_x=k.WHO_X, who_y=k.WHO_Y, who_id=k.WHO_ID,
                                who_code=k.WHO_CODE)

    def begin(self, view: FrameView) -> list[int]:
        """`step`'s start, for the rules whose kernel steps the stays itself (kernels.dwell_step,
        zone_passage_step): room for every slot, new slots in no stay. Returns the slots freed in this
        frame (their stays ended)."""
        st = self.st
        if st.capacity < view.capacity:
            st.ensure(view.capacity)
        # a slot freed this frame is never one allocated in it: the reset does not touch it
        ended = list(view.freed_slots)
        if view.new_slots:
            st.reset(view.new_slots)
        return ended

    def step(self, view: FrameView, sel: BoolArray) -> StayFrame:
        """Advance the stays with the tracks selected in this frame (tracks not selected, e.g.
        unseen, neither extend nor end a stay)."""
        st = self.st
        ended = self.begin(view)
        gone, idx, s, started = out = self._out.fit(len(sel))
        n_gone, k = kernels.zone_stay_step(
            sel, view.inside(self.zone), view.slots, st.entered, st.last, float(view.t), self.exit_grace_s, *out
        )
        if n_gone:
            ended.extend(gone[:n_gone].tolist())
        return StayFrame(ended, idx[:k], s[:k], started[:k])

    def release(self, slots: list[int]) -> None:
        """Forget the ended stays (after the rule has read what it needs of them)."""
        self.st.reset(slots)

    def reset(self) -> None:
        self.st.reset(list(range(self.st.capacity)))


class Stillness:
    """Per-slot anchor: the place an object has stayed within a radius of, and since when."""

    def __init__(self) -> None:
        self.st = SlotArrays(ax=(np.nan, np.float64), ay=(np.nan, np.float64), since=(np.nan, np.float64))
        self.st.expect_rows("ax", ax=kernels.AX, ay=kernels.AY, since=kernels.SINCE)

    def sync(self, view: FrameView) -> None:
        """Follow the slot table: room for every slot, new slots start unanchored."""
        st = self.st
        if st.capacity < view.capacity:
            st.ensure(view.capacity)
        if view.new_slots:
            st.reset(view.new_slots)

    def update(
        self, view: FrameView, idx: IntArray, radius: float | FloatArray, keep: BoolArray | None = None
    ) -> tuple[BoolArray, FloatArray]:
        """Update the anchors of tracks `idx`, which moved if further than `radius` (frame widths,
        one for all or one per track) from theirs; tracks in `keep` keep their anchor wherever
        they are. Returns which tracks were (re-)anchored now, and how long each has been still
        (seconds; 0 for those)."""
        st = self.st
        moved: BoolArray
        still: FloatArray
        moved, still = kernels.stillness_update(
            idx, view.slots, view.gx, view.gy, st.ax, st.ay, st.since, float(view.t), aspect(view),
            radius if isinstance(radius, np.ndarray) else np.array([radius], dtype=np.float64),
            _NO_KEEP if keep is None else keep,
        )
        return moved, still

    def release(self, slots: list[int]) -> None:
        self.st.reset(slots)

    def reset(self) -> None:
        self.st.reset(list(range(self.st.capacity)))
