"""Body posture of a person from its keypoints and box: upright, lying, or neither (for fall rules).

Signals, and why each:
- torso angle: the line from the shoulders' midpoint to the hips' midpoint, in degrees from the
  vertical of the picture. Upright people are near 0, people lying across the view near 90. It
  needs both a shoulder and a hip seen with some confidence; it does not see a person lying
  along the camera's axis (the torso is foreshortened, not tilted).
- box aspect (width / height): a person lying across the view has a wide box. It needs no
  keypoint, so it decides when the keypoints are too weak, with a stricter threshold; a person
  bending over to pick something up has a square box and a tilted torso, and is neither.
- legs angle: hips to ankles (or knees), in degrees from straight down the picture: 0 with the
  feet under the hips, 90 with them level, up to 180 with them above the hips. A person bending
  over stands on the feet under a horizontal torso; lying needs the legs away from straight down
  when they are seen, and legs raised above the hips (someone fallen on the back, legs in the
  air) are not legs one stands on. Upright needs them near straight down.
- hip height: the fall rules compare it before and after (vertical drop, in body heights).

When the legs are not seen, a vertical torso is shared by a person standing and one sitting on the
floor (the hips then low in a squat box): only the box tells them apart, so upright then asks the
same narrow box as when no keypoint is seen at all.

Keypoints are COCO's 17 (`smartcity.models.movenet.COCO_KEYPOINTS`): shoulders 5-6, hips 11-12,
knees 13-14, ankles 15-16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from pydantic import Field

from smartcity.analytics.base import FrameView, SlotArrays
from smartcity.analytics.params import Params
from smartcity.core.vision import Track

L_SHOULDER, R_SHOULDER, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 5, 6, 11, 12, 13, 14, 15, 16


class Posture(StrEnum):
    UPRIGHT = "upright"
    LYING = "lying"
    OTHER = "other"  # sitting, crouching, bending, in between, or not enough seen to tell


class PostureParams(Params):
    """How a person's posture is read (shared by the fall and person_down rules)."""

    keypoint_score: float = Field(0.2, description="Least score of a keypoint that counts.", ge=0, le=1)
    lying_angle: float = Field(
        60.0, description="Torso at least this many degrees from vertical reads as lying.", ge=30, le=90
    )
    upright_angle: float = Field(
        30.0,
        description="Torso (and legs, when seen) at most this many degrees from vertical (the legs: from "
        "straight down) reads as upright: a person sitting on the floor has a vertical torso on horizontal legs.",
        ge=0,
        le=60,
    )
    lying_aspect: float = Field(
        1.0, description="Least box width/height of a person lying (with a lying torso).", gt=0, le=10
    )
    lying_aspect_alone: float = Field(
        1.6,
        description="Least box width/height that reads as lying when the torso is not seen (no keypoints).",
        gt=0,
        le=10,
    )
    upright_aspect: float = Field(
        0.75,
        description="Most box width/height of an upright person whose legs are seen; 0.8 times this when they "
        "are not (the box alone then tells standing from sitting on the floor).",
        gt=0,
        le=10,
    )
    lying_legs_angle: float = Field(
        45.0,
        description="When the legs are seen (hips to ankles, else knees), at least this many degrees from "
        "straight down for lying: a person bending over stands on the legs under a horizontal torso "
        "(legs raised above the hips, as after a fall on the back, are over 90).",
        ge=0,
        le=90,
    )


@dataclass(frozen=True, slots=True)
class PostureReading:
    posture: Posture
    torso_angle: float | None  # degrees from vertical; None when the torso is not seen
    legs_angle: float | None  # degrees from straight down (0-180); None when the legs are not seen
    aspect: float  # box width / height
    hip_y: float  # pixels: hips' midpoint, else the box's vertical centre
    height: float  # box height in pixels


def _mid(track: Track, a: int, b: int, min_score: float) -> tuple[float, float] | None:
    kps = track.keypoints
    pts = [kps[i] for i in (a, b) if i < len(kps) and kps[i].score >= min_score]
    if not pts:
        return None
    return (sum(p.x for p in pts) / len(pts), sum(p.y for p in pts) / len(pts))


def _down_angle(a: tuple[float, float] | None, b: tuple[float, float] | None) -> float | None:
    """Degrees between the line from a to b and straight down the picture: 0 with b under a, 90
    level, 180 with b above a (None when either is unseen)."""
    if a is None or b is None:
        return None
    dx, dy = b[0] - a[0], b[1] - a[1]
    if math.hypot(dx, dy) <= 1e-6:
        return None
    return math.degrees(math.atan2(abs(dx), dy))


def _angle(a: tuple[float, float] | None, b: tuple[float, float] | None) -> float | None:
    """Degrees from the vertical of the line from a to b, either way up (None when either is unseen)."""
    down = _down_angle(a, b)
    return None if down is None else min(down, 180.0 - down)


def read_posture(track: Track, p: PostureParams) -> PostureReading:
    x1, y1, x2, y2 = track.box
    w, h = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
    aspect = w / h
    shoulders = _mid(track, L_SHOULDER, R_SHOULDER, p.keypoint_score)
    hips = _mid(track, L_HIP, R_HIP, p.keypoint_score)
    angle = _angle(shoulders, hips)
    feet = _mid(track, L_ANKLE, R_ANKLE, p.keypoint_score) or _mid(track, L_KNEE, R_KNEE, p.keypoint_score)
    legs = _down_angle(hips, feet)
    hip_y = hips[1] if hips is not None else (y1 + y2) / 2.0
    narrow = aspect <= p.upright_aspect * 0.8  # standing, by the box alone
    if angle is None:
        posture = (
            Posture.LYING if aspect >= p.lying_aspect_alone
            else Posture.UPRIGHT if narrow
            else Posture.OTHER
        )  # fmt: skip
    elif angle >= p.lying_angle and aspect >= p.lying_aspect and (legs is None or legs >= p.lying_legs_angle):
        posture = Posture.LYING
    elif angle <= p.upright_angle and (
        narrow if legs is None else aspect <= p.upright_aspect and legs <= p.upright_angle
    ):
        posture = Posture.UPRIGHT
    else:
        posture = Posture.OTHER
    return PostureReading(posture, angle, legs, aspect, hip_y, h)


class DownEpisodes:
    """Per slot: since when the person has been lying, with readings of other postures shorter
    than `grace_s` bridged (a pose misread for a frame does not end it); standing up ends it."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.st = SlotArrays(since=(np.nan, np.float64), last=(np.nan, np.float64), fired=(False, bool))

    def sync(self, view: FrameView) -> None:
        self.st.ensure(view.capacity)
        self.st.reset(view.new_slots)
        self.st.reset(view.freed_slots)

    def observe(self, slot: int, posture: Posture, t: float) -> bool:
        """Record one reading; True when it starts a new episode of lying."""
        st = self.st
        if posture is Posture.UPRIGHT:
            st.since[slot] = st.last[slot] = np.nan
            st.fired[slot] = False
            return False
        if posture is not Posture.LYING:
            if not np.isnan(st.last[slot]) and t - st.last[slot] > self.grace_s:
                st.since[slot] = st.last[slot] = np.nan
                st.fired[slot] = False
            return False
        started = bool(np.isnan(st.since[slot]) or t - st.last[slot] > self.grace_s)
        if started:
            st.since[slot] = t
            st.fired[slot] = False
        st.last[slot] = t
        return started

    def down_for(self, slot: int, t: float) -> float:
        """Seconds lying, as of a lying reading at `t` (0 when not lying)."""
        since = self.st.since[slot]
        return 0.0 if np.isnan(since) else float(t - since)

    def reset(self) -> None:
        self.st.reset(list(range(self.st.capacity)))
