"""fall: a person goes from upright to lying on the ground within a second or two and stays down.

Signals (see `_posture` for how a posture is read from keypoints and the box):
- the fall: an upright reading, then within `max_fall_s` a lying reading at the same place (the
  two boxes overlap horizontally) with the hips at least `min_drop` body heights lower. Lying
  down on purpose passes through seconds of sitting or kneeling between the two, which is what
  tells it apart (UP-Fall activity 11). The upright reading may belong to another track id: the
  detector often loses a person in mid-fall and the pose model finds them again on the floor
  under a new id, so upright readings are kept per camera for `max_fall_s`, not per track.
- staying down: lying readings for `down_s` seconds (gaps up to `grace_s` bridged); standing up
  ends it. The alert fires then, once per episode.
The NFD temporal classifier installed next to the pose model (trained on synthetic poses) is not
used: these three signals are explainable, need no 32-frame window, and reach the figures of
bench/emergency_falls.py; the classifier has not been compared on the same footage yet.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from smartcity.analytics.base import ClassVocab, FrameView, Rule, SlotArrays, track_payload
from smartcity.analytics.base import nonzero_index as _nz
from smartcity.analytics.geometry import Polygon
from smartcity.analytics.params import PolygonParam
from smartcity.analytics.registry import register_rule
from smartcity.analytics.rules._posture import (
    DownEpisodes,
    Posture,
    PostureParams,
    PostureReading,
    read_posture,
)
from smartcity.analytics.spec import RuleSpec
from smartcity.core.events import RuleEvent, Severity

MAX_UPRIGHT_READINGS = 2048  # per camera, within max_fall_s: ~100 people at 10 fps over 2 s


class FallParams(PostureParams):
    zone: PolygonParam | None = Field(
        None, description="Zone watched (normalised polygon); none = whole image."
    )
    down_s: float = Field(3.0, description="Seconds the person stays down before the alert.", gt=0, le=3600)
    max_fall_s: float = Field(
        1.5, description="Most seconds from the last upright reading to the first lying one.", gt=0, le=10
    )
    min_drop: float = Field(
        0.15, description="Least fall of the hips, in body heights (of the upright person).", ge=0, le=2
    )
    grace_s: float = Field(1.0, description="Seconds of other readings bridged while down.", ge=0, le=60)


@dataclass(frozen=True, slots=True)
class _Upright:
    t: float
    x1: float
    x2: float
    hip_y: float
    height: float


@dataclass(frozen=True, slots=True)
class _Lying:
    """A lying reading and the episode it belonged to (for a lying person found under a new id)."""

    t: float
    x1: float
    x2: float
    slot: int
    since: float
    fired: bool
    fall_s: float
    hip_y: float
    height: float


@register_rule("fall")
class FallRule(Rule):
    """A person upright, then on the ground within `max_fall_s`, still down `down_s` later."""

    Params = FallParams
    default_classes = ("person",)
    severity = Severity.CRITICAL
    alert_kinds = frozenset({"fall"})
    model_roles = frozenset({"pose"})
    colour = "#e11d48"

    def __init__(self, spec: RuleSpec, vocab: ClassVocab | None = None) -> None:
        super().__init__(spec, vocab)
        p: FallParams = self.params
        self.zone = Polygon.of(p.zone) if p.zone is not None else None
        self.down = DownEpisodes(p.grace_s)
        # per slot, the upright reading the current episode began after (nan: none within max_fall_s)
        self.fell = SlotArrays(
            fall_s=(np.nan, np.float64), hip_y=(np.nan, np.float64), height=(np.nan, np.float64)
        )
        self.uprights: deque[_Upright] = deque(maxlen=MAX_UPRIGHT_READINGS)
        self.lying: deque[_Lying] = deque(maxlen=MAX_UPRIGHT_READINGS)

    def step(self, view: FrameView) -> list[RuleEvent]:
        p: FallParams = self.params
        self.down.sync(view)
        self.fell.ensure(view.capacity)
        self.fell.reset(view.new_slots)
        while self.uprights and view.t - self.uprights[0].t > p.max_fall_s:
            self.uprights.popleft()
        while self.lying and view.t - self.lying[0].t > p.grace_s:
            self.lying.popleft()
        idx = _nz(self.selected(view))
        if self.zone is not None and len(idx):
            idx = idx[view.inside(self.zone)[idx]]
        out: list[RuleEvent] = []
        new_uprights: list[_Upright] = []
        new_lying: list[_Lying] = []
        present = set(view.slots[idx].tolist())
        for i in idx.tolist():
            tr, slot = view.tracks[i], int(view.slots[i])
            r = read_posture(tr, p)
            if r.posture is Posture.UPRIGHT:
                new_uprights.append(_Upright(view.t, tr.box[0], tr.box[2], r.hip_y, r.height))
            if self.down.observe(slot, r.posture, view.t) and not self._continues(
                slot, tr.box, view.t, present
            ):
                self._fell_from(slot, tr.box, view.t)
            if r.posture is Posture.LYING:
                self._maybe_alert(out, view, i, slot, r)
                st, fell = self.down.st, self.fell
                new_lying.append(_Lying(
                    view.t, tr.box[0], tr.box[2], slot, float(st.since[slot]), bool(st.fired[slot]),
                    float(fell.fall_s[slot]), float(fell.hip_y[slot]), float(fell.height[slot]),
                ))  # fmt: skip
        self.uprights.extend(new_uprights)
        self.lying.extend(new_lying)
        return out

    def _continues(
        self, slot: int, box: tuple[float, float, float, float], t: float, present: set[int]
    ) -> bool:
        """A lying person seen under a new id where another, no longer seen, lay within grace_s
        continues that episode (the tracker's id changes often while a person lies: the box of a
        lying person changes shape as the pose model and the detector take turns)."""
        for rec in reversed(self.lying):
            if rec.slot == slot or rec.slot in present or rec.t >= t:
                continue
            if min(box[2], rec.x2) > max(box[0], rec.x1):
                st, fell = self.down.st, self.fell
                st.since[slot], st.fired[slot] = rec.since, rec.fired
                fell.fall_s[slot], fell.hip_y[slot], fell.height[slot] = rec.fall_s, rec.hip_y, rec.height
                return True
        return False

    def _fell_from(self, slot: int, box: tuple[float, float, float, float], t: float) -> None:
        """Remember the latest upright reading, within max_fall_s and at the same place, that the
        lying person now seen in `box` may have fallen from (the hips' drop is judged when the
        alert is due: at the first lying reading the torso has tilted but the hips not yet fallen)."""
        p: FallParams = self.params
        fell = self.fell
        fell.fall_s[slot] = fell.hip_y[slot] = fell.height[slot] = math.nan
        for u in reversed(self.uprights):
            if t - u.t > p.max_fall_s or u.t >= t:
                continue
            if min(box[2], u.x2) > max(box[0], u.x1):
                fell.fall_s[slot], fell.hip_y[slot], fell.height[slot] = t - u.t, u.hip_y, u.height
                return

    def _maybe_alert(
        self, out: list[RuleEvent], view: FrameView, i: int, slot: int, r: PostureReading
    ) -> None:
        p: FallParams = self.params
        st = self.down.st
        fall_s = float(self.fell.fall_s[slot])
        down_for = self.down.down_for(slot, view.t)
        if st.fired[slot] or math.isnan(fall_s) or down_for < p.down_s:
            return
        drop = (r.hip_y - float(self.fell.hip_y[slot])) / max(float(self.fell.height[slot]), 1e-6)
        if drop < p.min_drop:
            return
        st.fired[slot] = True
        tr = view.tracks[i]
        self.emit(out, view, view.t, "fall", track_id=tr.track_id, object_class=tr.cls,
                  payload=track_payload(
                      view, i, down_s=round(down_for, 3), fall_s=round(fall_s, 3), hip_drop=round(drop, 3),
                      hip_speed=round(drop / max(fall_s, 1e-3), 3),
                      torso_angle=None if r.torso_angle is None else round(r.torso_angle, 1),
                      aspect=round(r.aspect, 3)))  # fmt: skip

    def reset(self) -> None:
        self.down.reset()
        self.fell.reset(list(range(self.fell.capacity)))
        self.uprights.clear()
        self.lying.clear()
