"""Synthetic street scenes for tests and benchmarks: noisy detections plus ground-truth events.

A bench module (imported with bench/ on sys.path: the bench scripts and tests/bench), not part
of the smartcity package.

One camera (1280x720) looks at a two-way street with a signalised crossing, a sidewalk, a
one-way side street, a parking strip and a kerbside spot. Vehicles and pedestrians move along
lanes and paths; some drive the wrong way up the side street, run the red light, park, stop
to dump an object, and some people leave a bag. Every object's true path is known, and the
ground truth of each rule (`gt_events`, `gt_counts`) is computed from those true paths with
the rules' own definitions; only the detections are noisy, as a detector's would be: missed
detections, box jitter, false positives, short occlusions and occlusions long enough to make
a tracker switch ids. The signal head is drawn into a small image per frame (`image_at`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from smartcity.analytics.geometry import Line, Polygon
from smartcity.analytics.spec import RuleSpec, validate_rule
from smartcity.core.vision import Detection

W, H = 1280, 720
ASPECT = H / W
CAMERA = "sim"
# the scene, in normalised coordinates (ground points)
Y_EAST, Y_WEST, Y_WALK = 0.70, 0.56, (0.88, 0.93)
COUNT_LINE = [[0.45, 0.45], [0.45, 0.97]]
STOP_X = 0.75
STOP_LINE = [[STOP_X, 0.62], [STOP_X, 0.78]]
SIDE_X = 0.08
WRONG_WAY_ZONE = [[0.03, 0.20], [0.13, 0.20], [0.13, 0.50], [0.03, 0.50]]
PARKING_ZONE = [[0.14, 0.40], [0.38, 0.40], [0.38, 0.50], [0.14, 0.50]]
PARK_SPOTS = (0.18, 0.26, 0.34)
DUMP_ZONE = [[0.54, 0.36], [0.78, 0.36], [0.78, 0.50], [0.54, 0.50]]
PLAZA_ZONE = [[0.15, 0.14], [0.98, 0.14], [0.98, 0.34], [0.15, 0.34]]
Y_PLAZA = 0.27
SIGNAL_ROI = [0.90, 0.04, 0.96, 0.28]
GREEN_S, AMBER_S, RED_S = 15.0, 3.0, 12.0
CYCLE_S = GREEN_S + AMBER_S + RED_S
V_LANE = 0.11  # one speed per traffic lane: vehicles in a lane never drive through each other
DWELL_S, ABANDON_S, PERSON_RADIUS, WRONG_WAY_MIN = 30.0, 20.0, 0.08, 0.08
SIZES = {"car": (0.07, 0.08), "truck": (0.10, 0.12), "bus": (0.14, 0.13), "person": (0.02, 0.10),
         "suitcase": (0.018, 0.035), "backpack": (0.015, 0.025), "handbag": (0.014, 0.02), "box": (0.03, 0.03)}


@dataclass
class SimObject:
    """One true object: keyframes (t, x, y) of its ground point, linearly interpolated."""

    oid: int
    cls: str
    keys: list[tuple[float, float, float]]
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (start, end) of occlusions
    role: str = ""

    @property
    def t0(self) -> float:
        return self.keys[0][0]

    @property
    def t1(self) -> float:
        return self.keys[-1][0]

    def at(self, t: float) -> tuple[float, float]:
        ks = self.keys
        for (ta, xa, ya), (tb, xb, yb) in zip(ks, ks[1:]):
            if ta <= t <= tb:
                f = 0.0 if tb == ta else (t - ta) / (tb - ta)
                return xa + f * (xb - xa), ya + f * (yb - ya)
        return ks[-1][1], ks[-1][2]


@dataclass(frozen=True, slots=True)
class GtEvent:
    rule_id: str
    kind: str
    t: float
    x: float
    y: float
    cls: str
    oid: int


@dataclass
class Scenario:
    seed: int
    duration_s: float
    fps: float
    width: int
    height: int
    camera_id: str
    frames: list[tuple[float, tuple[Detection, ...]]]
    rules: list[RuleSpec]
    objects: list[SimObject]
    gt_events: list[GtEvent]
    gt_counts: dict[tuple[str, str], int]
    signal_changes: list[tuple[float, str]]

    def signal_at(self, t: float) -> str:
        return signal_at(t)

    def image_at(self, t: float) -> npt.NDArray[np.uint8]:
        """A small frame (72x128) with the signal head lit in its colour at time t."""
        img = np.full((72, 128, 3), 60, dtype=np.uint8)
        x1, y1, x2, y2 = SIGNAL_ROI
        c1, c2, r1, r2 = int(x1 * 128), int(x2 * 128), int(y1 * 72), int(y2 * 72)
        img[r1:r2, c1:c2] = 25
        state = signal_at(t)
        lamp = {"red": 0, "amber": 1, "green": 2}[state]
        colour = {"red": (235, 35, 25), "amber": (245, 175, 20), "green": (30, 225, 80)}[state]
        h = (r2 - r1) // 3
        img[r1 + lamp * h + 1: r1 + (lamp + 1) * h - 1, c1 + 1: c2 - 1] = colour
        return img


def signal_at(t: float) -> str:
    p = t % CYCLE_S
    return "green" if p < GREEN_S else ("amber" if p < GREEN_S + AMBER_S else "red")


def scenario_rules(camera_id: str = CAMERA) -> list[RuleSpec]:
    def r(rid: str, rtype: str, params: dict[str, object], **kw: object) -> RuleSpec:
        return validate_rule({"id": rid, "camera_id": camera_id, "type": rtype, "params": params, **kw})

    return [
        r("count", "line_count", {"line": COUNT_LINE, "in_direction": [1, 0]}),
        r("wrongway", "wrong_way", {"zone": WRONG_WAY_ZONE, "direction": [0, 1], "min_distance": WRONG_WAY_MIN}),
        r("redlight", "red_light", {"stop_line": STOP_LINE, "direction": [1, 0],
                                    "signal": {"source": "image", "roi": SIGNAL_ROI}}),
        r("parking", "dwell", {"zone": PARKING_ZONE, "threshold_s": DWELL_S}),
        r("dumping", "dumping", {"zone": DUMP_ZONE, "object_classes": ["box"], "stop_s": 5.0,
                                 "object_static_s": 5.0}),
        r("abandoned", "abandoned_object", {"unattended_s": ABANDON_S, "person_radius": PERSON_RADIUS,
                                            "zone": PLAZA_ZONE}),
    ]


class _Builder:
    def __init__(self, rng: np.random.Generator, duration: float) -> None:
        self.rng = rng
        self.duration = duration
        self.objects: list[SimObject] = []

    def add(self, cls: str, keys: list[tuple[float, float, float]], role: str = "") -> SimObject:
        o = SimObject(len(self.objects) + 1, cls, keys, role=role)
        self.objects.append(o)
        return o

    def drive(self, t0: float, pts: list[tuple[float, float]], v: float, cls: str = "car",
              role: str = "") -> SimObject:
        keys = [(t0, *pts[0])]
        for p in pts[1:]:
            t_last, x, y = keys[-1]
            keys.append((t_last + math.hypot(p[0] - x, p[1] - y) / v, *p))
        return self.add(cls, keys, role)


def _eastbound(b: _Builder, rng: np.random.Generator, duration: float) -> None:
    """Cars through the signal: on green, queued at red, and red-light runners."""
    stop_pos = STOP_X - 0.045
    for c0 in np.arange(0.0, duration, CYCLE_S):
        amber, red, green_next = c0 + GREEN_S, c0 + GREEN_S + AMBER_S, c0 + CYCLE_S
        v = V_LANE
        # cars crossing on green, at least 3 s apart, after the queue of the last red has gone
        arrivals = sorted(rng.uniform(c0 + 6.0, amber - 1.5, size=int(rng.integers(1, 4))))
        last = -math.inf
        for ta in arrivals:
            if ta - last < 3.0:
                continue
            last = ta
            vv = V_LANE
            t_start = ta - (STOP_X + 0.06) / vv
            b.drive(t_start, [(-0.06, Y_EAST), (1.06, Y_EAST)], vv, str(rng.choice(["car", "car", "truck"])))
        # a red-light runner reaches the line early in the red
        if rng.random() < 0.9:
            ta = red + float(rng.uniform(1.5, 5.0))
            b.drive(ta - (STOP_X + 0.06) / v, [(-0.06, Y_EAST), (1.06, Y_EAST)], v, "car", role="runner")
        # queued cars stop at the line and go on green
        for i in range(int(rng.integers(0, 3))):
            ta = red + 7.0 + 2.5 * i
            pos = stop_pos - 0.08 * i
            t_start = ta - (pos + 0.06) / v
            leave = green_next + 0.8 + 1.2 * i
            keys = [(t_start, -0.06, Y_EAST), (ta, pos, Y_EAST), (leave, pos, Y_EAST),
                    (leave + (1.06 - pos) / v, 1.06, Y_EAST)]
            b.add("car", keys, role="queued")


def generate(seed: int, duration_s: float = 600.0, fps: float = 10.0, *, miss_rate: float = 0.10,
             jitter: float = 0.02, false_positives_per_frame: float = 0.3, occlusion_rate: float = 0.3,
             long_occlusion_rate: float = 0.04) -> Scenario:
    """Build a scene of `duration_s` seconds and render it as noisy detections at `fps`."""
    rng = np.random.default_rng(seed)
    b = _Builder(rng, duration_s)
    _eastbound(b, rng, duration_s)
    t = 0.0
    while t < duration_s:  # westbound traffic
        v = V_LANE
        b.drive(t, [(1.06, Y_WEST), (-0.06, Y_WEST)], v, str(rng.choice(["car", "car", "car", "bus", "truck"])))
        t += float(rng.uniform(4.0, 10.0))
    t = 3.0
    while t < duration_s:  # side street: down one way, and now and then up it the wrong way
        v = float(rng.uniform(0.07, 0.10))
        if rng.random() < 0.45:
            b.drive(t, [(-0.06, Y_EAST), (SIDE_X, Y_EAST - 0.02), (SIDE_X, 0.12)], v, "car", role="wrong_way")
        else:
            b.drive(t, [(SIDE_X, 0.12), (SIDE_X, Y_WEST), (-0.06, Y_WEST)], v, "car")
        t += float(rng.uniform(14.0, 26.0))
    # parking: cars leave the westbound lane, park in a free spot, leave again
    busy = dict.fromkeys(PARK_SPOTS, 0.0)
    t = 5.0
    while t < duration_s:
        free = [x for x, until in busy.items() if until < t - 5]
        if free:
            x = float(rng.choice(free))
            v = V_LANE
            stay = float(rng.uniform(40, 80)) if rng.random() < 0.75 else float(rng.uniform(8, 20))
            o = b.drive(t, [(1.06, Y_WEST), (x + 0.08, Y_WEST), (x, 0.45)], v, "car", role="parking")
            ta = o.t1
            o.keys += [(ta + stay, x, 0.45), (ta + stay + 1.2, x - 0.1, Y_WEST),
                       (ta + stay + 1.2 + (x + 0.16) / v, -0.06, Y_WEST)]
            busy[x] = o.t1
        t += float(rng.uniform(18.0, 35.0))
    # kerbside spot: trucks stop; some leave a box behind; a box already lies there some of the time
    t = 20.0
    while t < duration_s - 60:
        v = V_LANE
        stop = float(rng.uniform(12, 25))
        spot = float(rng.uniform(0.60, 0.70))
        o = b.drive(t, [(1.06, Y_WEST), (spot + 0.1, Y_WEST), (spot, 0.46)], v, "truck", role="dump_truck")
        ta = o.t1
        o.keys += [(ta + stop, spot, 0.46), (ta + stop + 1.5, spot - 0.12, Y_WEST),
                   (ta + stop + 1.5 + (spot + 0.06) / v, -0.06, Y_WEST)]
        kind = rng.random()
        if kind < 0.6:  # dumped: visible once the truck has pulled away
            appear = ta + stop + 1.5
            b.add("box", [(appear, spot + 0.02, 0.47), (min(duration_s, appear + 90.0), spot + 0.02, 0.47)],
                  role="dumped")
        elif kind < 0.8:  # a box that was there before the truck came
            b.add("box", [(t - 30.0, spot + 0.03, 0.45), (min(duration_s, ta + stop + 60.0), spot + 0.03, 0.45)],
                  role="old_box")
        t += float(rng.uniform(110.0, 140.0))
    _pedestrians(b, rng, duration_s)
    objects = b.objects
    for o in objects:  # short occlusions; a few long enough for the tracker to lose the id
        if rng.random() < occlusion_rate:
            s = float(rng.uniform(o.t0, max(o.t0, o.t1 - 1.0)))
            o.gaps.append((s, s + float(rng.uniform(0.3, 1.5))))
        if o.cls in ("car", "truck", "bus", "person") and rng.random() < long_occlusion_rate:
            s = float(rng.uniform(o.t0, max(o.t0, o.t1 - 4.0)))
            o.gaps.append((s, s + float(rng.uniform(3.5, 5.0))))
    frames = _render(objects, rng, duration_s, fps, miss_rate, jitter, false_positives_per_frame)
    rules = scenario_rules()
    gt_events, gt_counts = ground_truth(objects, duration_s, fps)
    changes = [(float(c), s) for c0 in np.arange(0.0, duration_s, CYCLE_S)
               for c, s in ((c0, "green"), (c0 + GREEN_S, "amber"), (c0 + GREEN_S + AMBER_S, "red"))]
    return Scenario(seed, duration_s, fps, W, H, CAMERA, frames, rules, objects, gt_events, gt_counts, changes)


def _pedestrians(b: _Builder, rng: np.random.Generator, duration: float) -> None:
    t = 0.0
    while t < duration:
        lane = int(rng.integers(0, 2))
        y = Y_WALK[lane]
        v = float(rng.uniform(0.035, 0.06))
        xs = (-0.03, 1.03) if lane == 0 else (1.03, -0.03)
        p = b.drive(t, [(xs[0], y), (xs[1], y)], v, "person")
        if rng.random() < 0.25:  # carries a bag all the way
            bag = str(rng.choice(["backpack", "handbag", "suitcase"]))
            b.add(bag, [(k[0], k[1] + 0.012, k[2] - 0.004) for k in p.keys], role="carried")
        t += float(rng.uniform(2.0, 6.0))
    t = 15.0
    while t < duration - 80:  # bag scenes on the plaza, away from the sidewalk's walkers
        y = Y_PLAZA
        x = float(rng.uniform(0.15, 0.85))
        v = 0.05
        bag = str(rng.choice(["suitcase", "backpack", "handbag"]))
        kind = rng.random()
        arrive = t + (x + 0.03) / v
        if kind < 0.6:  # drops the bag and walks away; the bag stays 60 s
            drop = arrive + 3.0
            b.add("person", [(t, -0.03, y), (arrive, x, y), (drop, x, y), (drop + (1.06 - x) / v, 1.03, y)])
            b.add(bag, [(drop, x + 0.015, y - 0.003), (drop + ABANDON_S + 40.0, x + 0.015, y - 0.003)],
                  role="abandoned")
        elif kind < 0.8:  # waits next to the bag for 40 s, then leaves with it
            wait = arrive + 40.0
            p_keys = [(t, -0.03, y), (arrive, x, y), (wait, x, y), (wait + (1.06 - x) / v, 1.03, y)]
            b.add("person", p_keys)
            b.add(bag, [(arrive + 1.0, x + 0.015, y - 0.003), (wait, x + 0.015, y - 0.003)] +
                  [(k[0], k[1] + 0.015, k[2] - 0.003) for k in p_keys[3:]], role="attended")
        else:  # drops it, goes away for a few seconds, comes back for it
            drop = arrive + 2.0
            back = drop + 2 * 0.12 / v + 6.0
            b.add("person", [(t, -0.03, y), (arrive, x, y), (drop, x, y), (drop + 0.12 / v, x + 0.12, y),
                             (drop + 0.12 / v + 6.0, x + 0.12, y), (back, x, y), (back + 2.0, x, y),
                             (back + 2.0 + (1.06 - x) / v, 1.03, y)])
            b.add(bag, [(drop, x + 0.015, y - 0.003), (back + 2.0, x + 0.015, y - 0.003),
                        (back + 2.0 + (1.06 - x) / v, 1.045, y - 0.003)], role="returned")
        t += float(rng.uniform(30.0, 45.0))


def _render(objects: list[SimObject], rng: np.random.Generator, duration: float, fps: float, miss: float,
            jitter: float, fp_rate: float) -> list[tuple[float, tuple[Detection, ...]]]:
    frames: list[tuple[float, tuple[Detection, ...]]] = []
    fps_live: list[list[float | str | int]] = []  # x, y, cls, frames left
    n = int(duration * fps)
    by_start = sorted(objects, key=lambda o: o.t0)
    live: list[SimObject] = []
    k_obj = 0
    for k in range(n):
        t = round(k / fps, 6)
        while k_obj < len(by_start) and by_start[k_obj].t0 <= t:
            live.append(by_start[k_obj])
            k_obj += 1
        live = [o for o in live if o.t1 >= t]
        dets: list[Detection] = []
        for o in live:
            if any(a <= t < e for a, e in o.gaps) or rng.random() < miss:
                continue
            x, y = o.at(t)
            if not (-0.02 <= x <= 1.02 and 0.0 <= y <= 1.0):
                continue
            w, h = SIZES.get(o.cls, (0.03, 0.03))
            w *= 1 + rng.normal(0, jitter * 1.5)
            h *= 1 + rng.normal(0, jitter * 1.5)
            cx = x + rng.normal(0, jitter * w)
            by = y + rng.normal(0, jitter * h)
            score = float(rng.uniform(0.6, 0.95)) if rng.random() > 0.1 else float(rng.uniform(0.3, 0.6))
            dets.append(Detection(((cx - w / 2) * W, (by - h) * H, (cx + w / 2) * W, by * H), o.cls, score))
        for _ in range(rng.poisson(fp_rate)):
            cls = str(rng.choice(["person", "car", "backpack", "suitcase", "box"]))
            fps_live.append([float(rng.uniform(0.05, 0.95)), float(rng.uniform(0.3, 1.0)), cls,
                             int(rng.integers(1, 4))])
        for fp in fps_live:
            fx, fy, fcls, _ = fp
            w, h = SIZES[str(fcls)]
            x, y = float(fx) + rng.normal(0, 0.003), float(fy) + rng.normal(0, 0.003)
            dets.append(Detection(((x - w / 2) * W, (y - h) * H, (x + w / 2) * W, y * H), str(fcls),
                                  float(rng.uniform(0.3, 0.75))))
            fp[3] = int(fp[3]) - 1
        fps_live = [fp for fp in fps_live if int(fp[3]) > 0]
        rng.shuffle(dets)  # type: ignore[arg-type,unused-ignore]
        frames.append((t, tuple(dets)))
    return frames


# one pass over every object's true path, one branch per rule of the scene: the truth is easier
# to check against the rules' definitions when it reads as one list
def ground_truth(objects: list[SimObject], duration: float, fps: float,  # noqa: C901
                 ) -> tuple[list[GtEvent], dict[tuple[str, str], int]]:
    """Events and counts that the scene's rules should produce, from the true paths."""
    dt = 1.0 / fps
    count_line = Line.of(COUNT_LINE, [1, 0])
    stop_line = Line.of(STOP_LINE, [1, 0])
    ww_zone, park_zone = Polygon.of(WRONG_WAY_ZONE), Polygon.of(PARKING_ZONE)
    counts: dict[tuple[str, str], int] = {}
    events: list[GtEvent] = []
    persons = [o for o in objects if o.cls == "person" and o.keys[0][2] < 0.5]  # the plaza's walkers
    for o in objects:
        ts = np.arange(math.ceil(max(0.0, o.t0) * fps) / fps, min(duration, o.t1) + 1e-9, dt)
        if len(ts) < 2:
            continue
        xy = np.array([o.at(float(t)) for t in ts])
        x, y = xy[:, 0], xy[:, 1]
        if o.cls in ("car", "truck", "bus", "person", "bicycle", "motorcycle"):
            d = count_line.distance(x, y)
            for i in np.flatnonzero(np.sign(d[1:]) * np.sign(d[:-1]) < 0).tolist():
                f = d[i] / (d[i] - d[i + 1])
                u = count_line.along(x[i] + f * (x[i + 1] - x[i]), y[i] + f * (y[i + 1] - y[i]))
                if 0.0 <= float(u) <= 1.0:
                    key = (o.cls, "in" if d[i + 1] > 0 else "out")
                    counts[key] = counts.get(key, 0) + 1
        if o.cls in ("car", "truck", "bus"):
            d = stop_line.distance(x, y)
            for i in np.flatnonzero((d[:-1] < 0) & (d[1:] >= 0)).tolist():
                f = d[i] / (d[i] - d[i + 1])
                tc = float(ts[i] + f * dt)
                u = float(stop_line.along(x[i], y[i]))
                if 0.0 <= u <= 1.0 and signal_at(tc) == "red":
                    events.append(GtEvent("redlight", "red_light", tc, float(x[i + 1]), float(y[i + 1]), o.cls,
                                          o.oid))
            inside = ww_zone.contains(x, y)
            anchor = None
            for i in range(len(ts)):
                if not inside[i]:
                    anchor = None
                    continue
                if anchor is None or y[i] > anchor:
                    anchor = float(y[i])
                if anchor - y[i] >= WRONG_WAY_MIN:
                    events.append(GtEvent("wrongway", "wrong_way", float(ts[i]), float(x[i]), float(y[i]), o.cls,
                                          o.oid))
                    break
            inside = park_zone.contains(x, y)
            enter = None
            for i in range(len(ts)):
                if inside[i] and enter is None:
                    enter = float(ts[i])
                elif not inside[i]:
                    enter = None
                if enter is not None and ts[i] - enter >= DWELL_S - 1e-9:
                    events.append(GtEvent("parking", "dwell", enter + DWELL_S, float(x[i]), float(y[i]), o.cls,
                                          o.oid))
                    break
        if o.role == "dumped":
            events.append(GtEvent("dumping", "dumping", o.t0 + 5.0, float(x[0]), float(y[0]), o.cls, o.oid))
        if o.cls in ("backpack", "handbag", "suitcase") and o.role != "carried":
            alone = None
            near_by = [p for p in persons if p.t1 >= o.t0 and p.t0 <= o.t1]
            for i in range(1, len(ts)):
                moving = math.hypot(x[i] - x[i - 1], (y[i] - y[i - 1]) * ASPECT) > 1e-6
                near = False
                for p in near_by if not moving else ():
                    if p.t0 <= ts[i] <= p.t1:
                        px, py = p.at(float(ts[i]))
                        if math.hypot(px - x[i], (py - y[i]) * ASPECT) <= PERSON_RADIUS:
                            near = True
                            break
                if moving or near:
                    alone = None
                elif alone is None:
                    alone = float(ts[i])
                if alone is not None and ts[i] - alone >= ABANDON_S:
                    events.append(GtEvent("abandoned", "abandoned", float(ts[i]), float(x[i]), float(y[i]), o.cls,
                                          o.oid))
                    break
    return events, counts
