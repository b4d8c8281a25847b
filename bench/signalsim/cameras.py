"""Virtual cameras on the approaches of a SUMO junction, in the loop: each simulation frame the
vehicles near the junction are filmed as 3D boxes (roadsim's pinhole camera), turned into noisy
detections (roadsim's detector noise model), tracked and run through the rules by our pipeline
(smartcity.replay.CameraReplay: ByteTracker + RuleEngine), and the rule events become the lane
measures the controllers read: queue (occupancy rule over a queue zone per lane), arrivals and
flow (line_count rule across the lane upstream of the stop line): `film` returns the rule events,
which the extension's JunctionRuntime turns into lane measures as in the server."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from roadsim.build import clip_polygon, clip_segment, convex_hull
from roadsim.camera import Camera, box_corners, occluded_share, project_boxes
from roadsim.noise import NOISE, Detector

from smartcity.analytics import RuleSpec, validate_rule
from smartcity.core.events import RuleEvent
from smartcity.extensions.signals.junction import RuleRef
from smartcity.replay import CameraReplay
from smartcity.sources.detlog import FrameRecord

QUEUE_M = 60.0  # queue zone: this far upstream of the stop line
LINE_M = 30.0  # counting line: this far upstream of the stop line
VCLASS = {
    "passenger": "car",
    "taxi": "car",
    "private": "car",
    "evehicle": "car",
    "truck": "truck",
    "trailer": "truck",
    "delivery": "truck",
    "bus": "bus",
    "coach": "bus",
    "motorcycle": "motorcycle",
    "moped": "motorcycle",
    "bicycle": "bicycle",
}


def _along(shape: list[tuple[float, float]], back_m: float) -> list[tuple[float, float, float]]:
    """Points (x, y, heading) every 2 m along the last `back_m` of a lane shape, stop line first."""
    pts = [np.array(p, dtype=float) for p in reversed(shape)]
    out: list[tuple[float, float, float]] = []
    done = 0.0
    for a, b in zip(pts, pts[1:], strict=False):
        seg = float(np.linalg.norm(b - a))
        if seg < 1e-6:
            continue
        head = math.degrees(math.atan2(a[0] - b[0], a[1] - b[1]))  # travel direction b -> a
        s = 0.0
        while s <= seg and done + s <= back_m:
            p = a + (b - a) * (s / seg)
            out.append((float(p[0]), float(p[1]), head))
            s += 2.0
        done += seg
        if done >= back_m:
            break
    return out


def _zone(
    cam: Camera, pts: list[tuple[float, float, float]], dims: tuple[float, float, float]
) -> list[list[float]]:
    """Image zone of the bottom-centre points of cars standing along `pts` (centre 2.5 m behind)."""
    h = np.radians([p[2] for p in pts])
    cx = np.array([p[0] for p in pts]) - 2.5 * np.sin(h)
    cy = np.array([p[1] for p in pts]) - 2.5 * np.cos(h)
    n = len(pts)
    boxes = project_boxes(
        cam, box_corners(cx, cy, np.degrees(h), np.full(n, dims[0]), np.full(n, dims[1]), np.full(n, dims[2]))
    )
    gx, gy = boxes.ground_points(cam.width, cam.height_px)
    ok = boxes.visible
    hull = convex_hull(list(zip(gx[ok].tolist(), gy[ok].tolist(), strict=True)))
    return [[round(min(1.0, max(0.0, x)), 4), round(min(1.0, max(0.0, y)), 4)] for x, y in clip_polygon(hull)]


@dataclass(frozen=True, slots=True)
class LaneRules:
    """The rules a camera draws for one lane group."""

    lane_group: str
    queue: RuleRef
    count: RuleRef


class ApproachCamera:
    """One camera filming one approach (its incoming lanes), with our tracker and rules."""

    def __init__(
        self, cid: str, traci: Any, lanes: dict[str, str], fps: float, noise: str, seed: int
    ) -> None:
        first = next(iter(lanes.values()))
        shape = traci.lane.getShape(first)
        stop, prev = np.array(shape[-1]), np.array(shape[-2])
        d = (stop - prev) / max(float(np.linalg.norm(stop - prev)), 1e-6)
        right = np.array([d[1], -d[0]])
        pos = stop + 6.0 * d + 6.0 * right
        target = stop - 30.0 * d
        self.cam = Camera.looking_at(
            float(pos[0]), float(pos[1]), (float(target[0]), float(target[1])), height=10.0
        )
        self.id = cid
        rules: list[dict[str, Any]] = []
        self.lanes: list[LaneRules] = []
        for lg, lane in lanes.items():
            lshape = traci.lane.getShape(lane)
            pts = _along(lshape, min(QUEUE_M, traci.lane.getLength(lane) - 1.0))
            if len(pts) < 3:
                continue
            qid, lid = f"q-{lg}"[:64], f"c-{lg}"[:64]
            try:  # a lane this camera cannot see (behind a bend, too short) gets no rules: no measures
                zone = _zone(self.cam, pts, (4.5, 1.8, 1.5))
                k = min(len(pts) - 1, int(LINE_M / 2.0))
                x, y, head = pts[k]
                w = traci.lane.getWidth(lane) / 2.0
                hx, hy = math.sin(math.radians(head)), math.cos(math.radians(head))
                a = self.cam.ground_to_norm(x + hy * w, y - hx * w)
                b = self.cam.ground_to_norm(x - hy * w, y + hx * w)
                a, b = clip_segment(a, b)
                m0, m1 = self.cam.ground_to_norm(x, y), self.cam.ground_to_norm(x + hx, y + hy)
            except ValueError:
                continue
            rules.append(
                {
                    "id": qid,
                    "camera_id": cid,
                    "type": "occupancy",
                    "classes": ["car", "truck", "bus", "motorcycle"],
                    "params": {"zone": zone, "sample_interval_s": 1.0},
                }
            )
            rules.append(
                {
                    "id": lid,
                    "camera_id": cid,
                    "type": "line_count",
                    "params": {
                        "line": [list(a), list(b)],
                        "in_direction": [m1[0] - m0[0], m1[1] - m0[1]],
                        "emit_events": True,
                        "in_name": "in",
                        "out_name": "out",
                    },
                }
            )
            self.lanes.append(
                LaneRules(lg, RuleRef(camera_id=cid, rule_id=qid), RuleRef(camera_id=cid, rule_id=lid))
            )
        self.specs: list[RuleSpec] = [validate_rule(r) for r in rules]
        self.replay = CameraReplay(cid, self.specs)
        self.detector = Detector(
            NOISE[noise], np.random.default_rng(seed), fps, self.cam.width, self.cam.height_px
        )
        self.frames = 0

    def film(
        self, t: float, veh: dict[str, tuple[float, float, float, str, float, float, float]]
    ) -> list[RuleEvent]:
        """One analysed frame of the vehicles id -> (x, y, angle, class, length, width, height): its rule events."""
        ids = list(veh)
        if ids:
            arr = np.array([veh[i][:3] for i in ids], dtype=float)
            dims = np.array([veh[i][4:] for i in ids], dtype=float)
            a = np.radians(arr[:, 2])
            cx = arr[:, 0] - 0.5 * dims[:, 0] * np.sin(a)
            cy = arr[:, 1] - 0.5 * dims[:, 0] * np.cos(a)
            boxes = project_boxes(
                self.cam, box_corners(cx, cy, arr[:, 2], dims[:, 0], dims[:, 1], dims[:, 2])
            )
            vis = np.nonzero(boxes.visible)[0]
            box, depth = boxes.box[vis], boxes.depth[vis]
            hidden = occluded_share(box, depth)
            dets = self.detector.frame(vis.astype(np.int64), [veh[ids[i]][3] for i in vis], box, hidden)
        else:
            dets = self.detector.frame(np.zeros(0, np.int64), [], np.zeros((0, 4)), np.zeros(0))
        _tracks, events = self.replay.step(FrameRecord(self.id, t, self.cam.width, self.cam.height_px, dets))
        self.frames += 1
        self.replay.count_buckets(flush_before=t)  # keep the aggregator small, as the camera actors do
        return events
