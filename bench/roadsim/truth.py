"""Filming the true trajectories (3D boxes -> 2D boxes per 0.1 s step) and the ground truth of the
rules, computed from those TRUE boxes with the rules' own geometry (never from noisy boxes).

The point a rule follows is the bottom-centre of an object's 2D box (x = (x1 + x2) / 2 / width,
y = y2 / height): truth uses the same point of the true, clipped box, at SUMO's 0.1 s steps,
with crossing times interpolated between steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from smartcity.analytics.geometry import Line, Polygon
from smartcity.analytics.spec import RuleSpec

from .camera import Boxes2D, Camera, box_corners, project_boxes
from .scenes import dims_of, true_class
from .sumo import STEP_S, Trajectories
from .types import TrueCrossing, TrueEpisode

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
STOPPED_MS = 0.2  # below this speed (m/s) a vehicle is stopped
# A crossing is true only if the object is in the picture this long before and after it (one
# analysed frame on each side at 5 fps): one
# that crosses a line at the picture's edge as it leaves (or enters) cannot be seen to cross.
VISIBLE_AROUND_S = 0.2


@dataclass(frozen=True, slots=True)
class Footage:
    """Every row of the trajectories filmed by the camera, rows sorted by (object, step)."""

    traj: Trajectories
    order: I64  # row order by (object, step)
    classes: tuple[str, ...]  # true class per object
    boxes: Boxes2D  # per row (in `order`)
    gx: F64
    gy: F64

    @property
    def obj(self) -> I64:
        return self.traj.obj[self.order]

    @property
    def step(self) -> I64:
        return self.traj.step[self.order]

    @property
    def speed(self) -> F64:
        return self.traj.speed[self.order]


def film(cam: Camera, traj: Trajectories) -> Footage:
    order = np.lexsort((traj.step, traj.obj)).astype(np.int64)
    classes = tuple(true_class(t) for t in traj.types)
    dims = np.array([dims_of(t) for t in traj.types]).reshape(-1, 3)
    obj = traj.obj[order]
    length, width, height = dims[obj, 0], dims[obj, 1], dims[obj, 2]
    ang = traj.angle[order]
    a = np.radians(ang)
    is_person = np.array([c == "person" for c in classes])[obj]
    # SUMO places a vehicle at the middle of its front bumper; a person at its centre
    back = np.where(is_person, 0.0, 0.5 * length)
    cx = traj.x[order] - back * np.sin(a)
    cy = traj.y[order] - back * np.cos(a)
    boxes = project_boxes(cam, box_corners(cx, cy, ang, length, width, height))
    gx, gy = boxes.ground_points(cam.width, cam.height_px)
    return Footage(traj=traj, order=order, classes=classes, boxes=boxes, gx=gx, gy=gy)


def _runs(mask: npt.NDArray[np.bool_], obj: I64, step: I64) -> list[tuple[int, int]]:
    """[start, end) row ranges where `mask` holds on consecutive steps of the same object."""
    out: list[tuple[int, int]] = []
    n = len(mask)
    if n == 0:
        return out
    brk = np.ones(n, dtype=bool)
    brk[1:] = (obj[1:] != obj[:-1]) | (step[1:] != step[:-1] + 1) | ~mask[:-1]
    starts = np.nonzero(mask & brk)[0]
    for s in starts:
        e = s + 1
        while e < n and mask[e] and obj[e] == obj[e - 1] and step[e] == step[e - 1] + 1:
            e += 1
        out.append((int(s), int(e)))
    return out


def crossings(fo: Footage, spec: RuleSpec, t_from: float, t_to: float, t0: float) -> list[TrueCrossing]:
    """True crossings of a line_count rule's line (within its extent) by visible objects of its classes.

    Times are sim seconds shifted to the frames' clock: t = t0 + (sim_t - t_from).
    """
    p = spec.parsed_params()
    line = Line.of(p.line, p.in_direction)
    classes = set(spec.effective_classes())
    obj, step = fo.obj, fo.step
    wanted = np.array([c in classes for c in fo.classes])[obj]
    d = line.distance(fo.gx, fo.gy)
    pair = (obj[1:] == obj[:-1]) & (step[1:] == step[:-1] + 1) & fo.boxes.visible[1:] & fo.boxes.visible[:-1]
    pair &= wanted[1:]
    d0, d1 = d[:-1], d[1:]
    flip = pair & (((d0 < 0) & (d1 >= 0)) | ((d0 > 0) & (d1 <= 0)))
    # in the picture on every step from VISIBLE_AROUND_S before to VISIBLE_AROUND_S after the crossing
    w = max(1, round(VISIBLE_AROUND_S / STEP_S))
    around = np.zeros(len(flip), dtype=bool)
    for s, e in _runs(fo.boxes.visible, obj, step):
        around[s + w - 1:e - w] = True  # pair (k, k + 1) with k - s + 1 >= w and e - 1 - k >= w
    flip &= around
    out: list[TrueCrossing] = []
    for k in np.nonzero(flip)[0]:
        f = float(d0[k] / (d0[k] - d1[k]))
        x = fo.gx[k] + f * (fo.gx[k + 1] - fo.gx[k])
        y = fo.gy[k] + f * (fo.gy[k + 1] - fo.gy[k])
        u = float(line.along(x, y))
        t = (float(step[k]) + f) * STEP_S
        if not (0.0 <= u <= 1.0 and t_from <= t < t_to):
            continue
        o = int(obj[k])
        out.append(TrueCrossing(
            rule_id=spec.id, object_id=fo.traj.ids[o], object_class=fo.classes[o],
            direction=p.in_name if d1[k] > d0[k] else p.out_name, t=t0 + (t - t_from),
            speed_kmh=round(float(fo.speed[k]) * 3.6, 1),
            box_height_px=round(float(fo.boxes.box[k, 3] - fo.boxes.box[k, 1]), 1),
        ))
    return out


def wrong_way(fo: Footage, spec: RuleSpec, t_from: float, t_to: float, t0: float) -> list[TrueEpisode]:
    """Passages through the zone against the direction, alerting where the rule's geometry would:
    after `min_distance` (normalised image units) travelled backwards from the furthest-forward
    point seen inside the zone, within `max_angle_deg` of straight back."""
    p = spec.parsed_params()
    zone = Polygon.of(p.zone)
    n = math.hypot(*p.direction)
    ux, uy = p.direction[0] / n, p.direction[1] / n
    cos_max = math.cos(math.radians(p.max_angle_deg))
    classes = set(spec.effective_classes())
    obj, step = fo.obj, fo.step
    inside = fo.boxes.visible & zone.contains(fo.gx, fo.gy) & np.array([c in classes for c in fo.classes])[obj]
    out: list[TrueEpisode] = []
    for s, e in _runs(inside, obj, step):
        ax, ay = fo.gx[s], fo.gy[s]
        t_alert = None
        for k in range(s, e):
            x, y = fo.gx[k], fo.gy[k]
            if (x - ax) * ux + (y - ay) * uy > 0:
                ax, ay = x, y
            back = -((x - ax) * ux + (y - ay) * uy)
            if back >= p.min_distance and back >= cos_max * math.hypot(x - ax, y - ay):
                t_alert = float(step[k]) * STEP_S
                break
        episode = _episode(fo, spec.id, s, e, float(step[s]) * STEP_S, t_alert, t_from, t_to, t0)
        if episode is not None:
            out.append(episode)
    return out


def dwell(fo: Footage, spec: RuleSpec, t_from: float, t_to: float, t0: float) -> list[TrueEpisode]:
    """Stops inside the zone of at least `threshold_s`: t_start = stop start, t_alert = + threshold,
    t_end = when the object leaves the zone (or the picture)."""
    p = spec.parsed_params()
    zone = Polygon.of(p.zone)
    classes = set(spec.effective_classes())
    obj, step = fo.obj, fo.step
    inside = fo.boxes.visible & zone.contains(fo.gx, fo.gy) & np.array([c in classes for c in fo.classes])[obj]
    stopped = fo.speed < STOPPED_MS
    out: list[TrueEpisode] = []
    need = round(p.threshold_s / STEP_S)
    for s, e in _runs(inside, obj, step):
        k = s
        while k < e:
            if not stopped[k]:
                k += 1
                continue
            j = k
            while j < e and stopped[j]:
                j += 1
            if j - k >= need:
                start = float(step[k]) * STEP_S
                episode = _episode(fo, spec.id, s, e, start, start + p.threshold_s, t_from, t_to, t0)
                if episode is not None:
                    out.append(episode)
                break
            k = j
    return out


def _episode(fo: Footage, rule_id: str, s: int, e: int, t_start: float, t_alert: float | None,
             t_from: float, t_to: float, t0: float) -> TrueEpisode | None:
    if t_alert is None or not t_from <= t_alert < t_to:
        return None
    o = int(fo.obj[s])
    t_end = float(fo.step[e - 1]) * STEP_S
    return TrueEpisode(rule_id=rule_id, object_id=fo.traj.ids[o], object_class=fo.classes[o],
                       t_start=t0 + (t_start - t_from), t_alert=t0 + (t_alert - t_from),
                       t_end=t0 + (min(t_end, t_to) - t_from))
