"""From a scene and a seed to SceneRuns: simulate (cached), film, compute truth, add detector noise."""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from smartcity.analytics.spec import RuleSpec, validate_rule
from smartcity.sources.detlog import FrameRecord

from . import truth as tr
from .camera import Camera, box_corners, occluded_share, project_boxes
from .noise import NOISE, Detector
from .scenes import DIMS, SCENES, Scene
from .sumo import STEP_S, simulate
from .types import NoiseLevel, SceneRun, Truth

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: frame time of the first analysed frame
WARMUP_S = 60.0  # simulated before the first analysed frame, so the streets are full
QUICK_S = 180.0
FULL_S = 900.0


def scene_names() -> list[str]:
    return list(SCENES)


def camera_id(scene: str) -> str:
    return f"roadsim-{scene}"


def rules_of(scene: Scene) -> list[dict[str, Any]]:
    """The scene's rules as RuleSpec dicts, its world geometry projected by its camera."""
    cam = scene.camera
    out: list[dict[str, Any]] = []
    for ln in scene.lines:
        a, b = clip_segment(cam.ground_to_norm(*ln.a), cam.ground_to_norm(*ln.b))
        mx, my = (ln.a[0] + ln.b[0]) / 2, (ln.a[1] + ln.b[1]) / 2
        m0 = cam.ground_to_norm(mx, my)
        m1 = cam.ground_to_norm(mx + ln.in_vec[0], my + ln.in_vec[1])
        out.append(_rule(scene, ln.id, "line_count", ln.classes, {
            "line": [_pt(a), _pt(b)], "in_direction": [round(m1[0] - m0[0], 4), round(m1[1] - m0[1], 4)],
            "in_name": ln.in_name, "out_name": ln.out_name}))
    for z in scene.zones:
        poly = [_pt(p) for p in footprint_zone(cam, z.polygon, z.heading_deg)]
        if z.type == "wrong_way":
            cx = sum(x for x, _ in z.polygon) / len(z.polygon)
            cy = sum(y for _, y in z.polygon) / len(z.polygon)
            p0 = cam.ground_to_norm(cx, cy)
            p1 = cam.ground_to_norm(cx + z.direction[0], cy + z.direction[1])
            params: dict[str, Any] = {"zone": poly, "direction": [round(p1[0] - p0[0], 4), round(p1[1] - p0[1], 4)]}
        else:
            params = {"zone": poly, "threshold_s": z.threshold_s}
        out.append(_rule(scene, z.id, z.type, z.classes, params))
    return out


def clip_segment(a: tuple[float, float], b: tuple[float, float], lo: float = 0.002,
                 hi: float = 0.998) -> tuple[tuple[float, float], tuple[float, float]]:
    """The part of segment ab inside the picture (Liang-Barsky): a line drawn on a camera stays on it."""
    t0, t1 = 0.0, 1.0
    dx, dy = b[0] - a[0], b[1] - a[1]
    for p, q in ((-dx, a[0] - lo), (dx, hi - a[0]), (-dy, a[1] - lo), (dy, hi - a[1])):
        if p == 0:
            if q < 0:
                raise ValueError(f"line {a} -> {b} is outside the picture")
            continue
        r = q / p
        if p < 0:
            t0 = max(t0, r)
        else:
            t1 = min(t1, r)
    if t0 >= t1:
        raise ValueError(f"line {a} -> {b} is outside the picture")
    return (a[0] + t0 * dx, a[1] + t0 * dy), (a[0] + t1 * dx, a[1] + t1 * dy)


def footprint_zone(cam: Camera, quad: tuple[tuple[float, float], ...], heading_deg: float,
                   dims: tuple[float, float, float] = DIMS["car"]) -> list[tuple[float, float]]:
    """The zone an operator would draw for a place on the ground: the convex hull of the points the
    rules follow (bottom-centre of the 2D box) of cars standing anywhere on the quad `quad`, clipped
    to the picture. On an oblique view that point lies well in front of the car's footprint, so the
    ground quad itself would miss the cars standing on it."""
    (a, b, c, d) = (np.array(p) for p in quad)
    s, t = np.meshgrid(np.linspace(0.0, 1.0, 9), np.linspace(0.0, 1.0, 5))
    s, t = s.ravel()[:, None], t.ravel()[:, None]
    pts = (1 - s) * (1 - t) * a + s * (1 - t) * b + s * t * c + (1 - s) * t * d
    n = len(pts)
    corners = box_corners(pts[:, 0], pts[:, 1], np.full(n, heading_deg), np.full(n, dims[0]), np.full(n, dims[1]),
                          np.full(n, dims[2]))
    boxes = project_boxes(cam, corners)
    gx, gy = boxes.ground_points(cam.width, cam.height_px)
    hull = convex_hull(list(zip(gx.tolist(), gy.tolist())))
    return clip_polygon(hull)


def convex_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Andrew's monotone chain; counter-clockwise in (x, y) maths orientation."""
    pts = sorted(set(points))
    if len(pts) < 3:
        raise ValueError("a zone needs at least 3 distinct points")

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def clip_polygon(poly: list[tuple[float, float]], lo: float = 0.002, hi: float = 0.998) -> list[tuple[float, float]]:
    """Sutherland-Hodgman clip of a polygon to the picture."""
    edges = ((0, lo, True), (0, hi, False), (1, lo, True), (1, hi, False))
    out = poly
    for axis, bound, keep_above in edges:
        src, out = out, []
        for i, cur in enumerate(src):
            prev = src[i - 1]
            cin = (cur[axis] >= bound) if keep_above else (cur[axis] <= bound)
            pin = (prev[axis] >= bound) if keep_above else (prev[axis] <= bound)
            if cin != pin:
                f = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + f * (cur[0] - prev[0]), prev[1] + f * (cur[1] - prev[1])))
            if cin:
                out.append(cur)
    if len(out) < 3:
        raise ValueError("zone is outside the picture")
    return out


def _pt(p: tuple[float, float]) -> list[float]:
    # zones are drawn inside the picture by design; rounding must not push a corner out of [0, 1]
    return [round(min(1.0, max(0.0, p[0])), 4), round(min(1.0, max(0.0, p[1])), 4)]


def _rule(scene: Scene, rid: str, rtype: str, classes: tuple[str, ...], params: dict[str, Any]) -> dict[str, Any]:
    d: dict[str, Any] = {"id": rid, "camera_id": camera_id(scene.name), "type": rtype, "name": f"{scene.name} {rid}",
                         "params": params}
    if classes:
        d["classes"] = list(classes)
    return d


def _seed_of(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "little")


def _truth(fo: tr.Footage, specs: list[RuleSpec], t_from: float, t_to: float) -> Truth:
    t = Truth()
    for spec in specs:
        if spec.type == "line_count":
            t.crossings.extend(tr.crossings(fo, spec, t_from, t_to, T0))
        elif spec.type == "wrong_way":
            t.wrong_way.extend(tr.wrong_way(fo, spec, t_from, t_to, T0))
        elif spec.type == "dwell":
            t.dwell.extend(tr.dwell(fo, spec, t_from, t_to, T0))
    t.crossings.sort(key=lambda c: c.t)
    return t


def iter_runs(
    *,
    quick: bool,
    seeds: Iterable[int],
    fps_list: Iterable[float] = (5.0, 10.0),
    noise_levels: Iterable[NoiseLevel] = ("clean", "realistic", "hard"),
    duration_s: float | None = None,
    scenes: Iterable[str] | None = None,
    cache: Path | None = None,
) -> Iterator[SceneRun]:
    """SceneRuns for every scene x seed x fps x noise level, one SUMO run per scene and seed.

    quick: 180 s analysed per scene (after 60 s of warm-up), full: 900 s; `duration_s` overrides.
    A generator: a full run holds millions of detections, so a bench should score each run
    and drop it.
    """
    dur = duration_s if duration_s is not None else (QUICK_S if quick else FULL_S)
    fps_list, noise_levels = list(fps_list), list(noise_levels)
    for name in (list(scenes) if scenes is not None else scene_names()):
        scene = SCENES[name]()
        rules = rules_of(scene)
        specs = [validate_rule(r) for r in rules]
        for seed in seeds:
            t_start = time.perf_counter()
            end = WARMUP_S + dur
            traj = simulate(name, scene.network, scene.routes(np.random.default_rng(_seed_of(name, seed)), end),
                            seed=seed, end_s=end, cache=cache)
            sumo_s = time.perf_counter() - t_start
            fo = tr.film(scene.camera, traj)
            base_truth = _truth(fo, specs, WARMUP_S, end)
            for fps in fps_list:
                frames = _true_frames(fo, fps, WARMUP_S, end)
                seen = {o for _, objs, _, _ in frames for o in objs.tolist()}
                for noise in noise_levels:
                    yield _run(scene, rules, fo, frames, base_truth, len(seen), fps, noise, seed, dur, sumo_s)


def build_runs(
    *,
    quick: bool,
    seeds: list[int],
    fps_list: Iterable[float] = (5.0, 10.0),
    noise_levels: Iterable[NoiseLevel] = ("clean", "realistic", "hard"),
    duration_s: float | None = None,
) -> list[SceneRun]:
    """All runs as a list (quick mode: 4 scenes x 2 fps x 3 noise levels per seed); see iter_runs."""
    return list(iter_runs(quick=quick, seeds=seeds, fps_list=fps_list, noise_levels=noise_levels,
                          duration_s=duration_s))


_Frame = tuple[float, np.ndarray, np.ndarray, np.ndarray]  # sim time, objects, boxes, hidden share


def _true_frames(fo: tr.Footage, fps: float, t_from: float, t_to: float) -> list[_Frame]:
    stride = round(1.0 / (fps * STEP_S))
    if not math.isclose(stride * fps * STEP_S, 1.0):
        raise ValueError(f"fps {fps} is not a whole number of {STEP_S} s steps")
    step = fo.step
    s0, s1 = round(t_from / STEP_S), round(t_to / STEP_S)
    keep = fo.boxes.visible & (step >= s0) & (step < s1) & ((step - s0) % stride == 0)
    rows = np.nonzero(keep)[0]
    rows = rows[np.argsort(step[rows], kind="stable")]
    steps = step[rows]
    out: list[_Frame] = []
    bounds = np.searchsorted(steps, np.arange(s0, s1, stride), side="left")
    ends = np.searchsorted(steps, np.arange(s0, s1, stride), side="right")
    for k, (a, b) in enumerate(zip(bounds, ends)):
        r = rows[a:b]
        box = fo.boxes.box[r]
        out.append(((s0 + k * stride) * STEP_S, fo.obj[r], box, occluded_share(box, fo.boxes.depth[r])))
    return out


def _run(scene: Scene, rules: list[dict[str, Any]], fo: tr.Footage, frames: list[_Frame], base: Truth,
         objects: int, fps: float, noise: NoiseLevel, seed: int, dur: float, sumo_s: float) -> SceneRun:
    cam: Camera = scene.camera
    det = Detector(NOISE[noise], np.random.default_rng(_seed_of(scene.name, seed, fps, noise)), fps,
                   cam.width, cam.height_px)
    records: list[FrameRecord] = []
    cid = camera_id(scene.name)
    for t, objs, box, hidden in frames:
        dets = det.frame(objs, [fo.classes[o] for o in objs.tolist()], box, hidden)
        records.append(FrameRecord(camera=cid, t=T0 + (t - WARMUP_S), width=cam.width, height=cam.height_px,
                                   detections=dets))
    truth = Truth(crossings=list(base.crossings), wrong_way=list(base.wrong_way), dwell=list(base.dwell),
                  objects=objects)
    classes = Counter(fo.classes)
    return SceneRun(
        scene=scene.name, camera_id=cid, width=cam.width, height=cam.height_px, fps=fps, noise=noise, seed=seed,
        duration_s=dur, rules=rules, frames=records, truth=truth,
        meta={"camera": cam.to_dict(), "notes": scene.notes, "sumo_objects": dict(classes),
              "warmup_s": WARMUP_S, "t0": T0, "noise": det.stats.to_dict(), "sumo_s": round(sumo_s, 3)},
    )
