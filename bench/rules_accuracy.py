"""Accuracy and speed of the rule engine on synthetic scenes, through the real tracker.

The scenario generator renders noisy detections (10% missed, box jitter, false positives,
short occlusions, occlusions long enough to switch tracker ids); ByteTracker turns them into
tracks; the RuleEngine turns tracks into events, compared with the ground truth computed from
the true paths. Speed: frames per second of the engine with 20 rules and 50 tracks, against a
naive baseline measured in the same run (per-track, per-rule scalar geometry in pure Python,
with the same per-object side/inside bookkeeping but none of the rules' other logic).

Usage: python bench/rules_accuracy.py [--quick] [--seeds N] [--duration S]
The last line printed is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scenario import GtEvent, Scenario, generate  # noqa: E402  (bench/scenario.py)

from smartcity.analytics import RuleEngine, RuleSpec, validate_rule  # noqa: E402
from smartcity.analytics.geometry import Line, point_in_polygon, signed_distance  # noqa: E402
from smartcity.core.events import RuleEvent  # noqa: E402
from smartcity.core.vision import FrameTracks, Track  # noqa: E402
from smartcity.tracking import ByteTracker, TrackerConfig  # noqa: E402

TOLERANCE_S = {"wrong_way": (-3.0, 6.0), "red_light": (-1.5, 1.5), "dwell": (-4.0, 4.0),
               "abandoned": (-3.0, 8.0), "dumping": (-5.0, 15.0)}
MATCH_RADIUS = 0.12


def run_scenario(sc: Scenario) -> tuple[list[RuleEvent], dict[tuple[str, str], int], dict[str, Any]]:
    tracker = ByteTracker(TrackerConfig())
    engine = RuleEngine(sc.rules, sc.camera_id)
    events: list[RuleEvent] = []
    track_ids: set[int] = set()
    t_engine = 0.0
    for t, dets in sc.frames:
        tracks = tracker.update(dets, t)
        track_ids.update(tr.track_id for tr in tracks)
        ft = FrameTracks(sc.camera_id, t, sc.width, sc.height, tuple(tracks))
        image = sc.image_at(t)
        t0 = time.perf_counter()
        events.extend(engine.update(ft, image))
        t_engine += time.perf_counter() - t0
    counts: dict[tuple[str, str], int] = {}
    for b in engine.count_buckets():
        counts[(b.object_class, b.direction)] = counts.get((b.object_class, b.direction), 0) + b.n
    info = {"tracks": len(track_ids), "relinks": engine.slots.relinks,
            "engine_ms_per_frame": 1000 * t_engine / max(1, len(sc.frames))}
    return events, counts, info


def match(pred: list[RuleEvent], gt: list[GtEvent], kind: str, sc: Scenario) -> tuple[int, int, int, list[float]]:
    """Greedy one-to-one matching by time and place: (true positives, predicted, expected, time errors).

    An event matches a true one of the same kind if its time is within the kind's tolerance and
    the place it reports is within MATCH_RADIUS of where that true object was at the event's time.
    """
    objects = {o.oid: o for o in sc.objects}
    p = sorted((e for e in pred if e.kind == kind), key=lambda e: e.t)
    g = sorted((e for e in gt if e.kind == kind), key=lambda e: e.t)
    lo, hi = TOLERANCE_S[kind]
    used: set[int] = set()
    errors: list[float] = []
    for e in p:
        best, best_dt = None, math.inf
        for j, ge in enumerate(g):
            if j in used:
                continue
            dt = e.t - ge.t
            ox, oy = objects[ge.oid].at(e.t)
            near = math.hypot(e.payload["x"] - ox, e.payload["y"] - oy) <= MATCH_RADIUS
            if lo <= dt <= hi and near and abs(dt) < abs(best_dt):
                best, best_dt = j, dt
        if best is not None:
            used.add(best)
            errors.append(best_dt)
    return len(used), len(p), len(g), errors


def accuracy(seeds: list[int], duration: float) -> dict[str, Any]:
    tp: Counter[str] = Counter()
    npred: Counter[str] = Counter()
    ngt: Counter[str] = Counter()
    dwell_err: list[float] = []
    counts: Counter[tuple[str, str]] = Counter()
    gt_counts: Counter[tuple[str, str]] = Counter()
    infos = []
    for seed in seeds:
        sc = generate(seed, duration)
        events, c, info = run_scenario(sc)
        infos.append(info)
        counts.update(c)
        gt_counts.update(sc.gt_counts)
        for kind in TOLERANCE_S:
            a, b, d, errs = match(events, sc.gt_events, kind, sc)
            tp[kind] += a
            npred[kind] += b
            ngt[kind] += d
            if kind == "dwell":
                dwell_err.extend(abs(x) for x in errs)
    per_key = {f"{k[0]}/{k[1]}": {"gt": n, "counted": counts.get(k, 0),
                                  "error": round(abs(counts.get(k, 0) - n) / n, 4)}
               for k, n in sorted(gt_counts.items()) if n > 0}
    extra = {f"{k[0]}/{k[1]}": n for k, n in counts.items() if k not in gt_counts}

    def ratio(a: int, b: int) -> float:
        return round(a / b, 4) if b else 1.0

    out: dict[str, Any] = {
        "count_error": max((v["error"] for v in per_key.values()), default=0.0),
        "count_error_total": round(abs(sum(counts.values()) - sum(gt_counts.values()))
                                   / max(1, sum(gt_counts.values())), 4),
    }
    for kind, name in (("wrong_way", "wrong_way"), ("red_light", "red_light"), ("abandoned", "abandoned"),
                       ("dumping", "dumping"), ("dwell", "dwell")):
        out[f"{name}_precision"] = ratio(tp[kind], npred[kind])
        out[f"{name}_recall"] = ratio(tp[kind], ngt[kind])
    out["dwell_onset_error_s"] = round(float(np.mean(dwell_err)), 3) if dwell_err else None
    out["events_expected"] = dict(ngt)
    out["events_raised"] = dict(npred)
    out["counts"] = per_key
    if extra:
        out["counts_unexpected"] = extra
    out["tracks_created"] = sum(i["tracks"] for i in infos)
    out["objects_true"] = None
    out["engine_relinks"] = sum(i["relinks"] for i in infos)
    return out


# ------------------------------------------------------------------ speed


def speed_rules(camera: str) -> list[RuleSpec]:
    def zone(x: float, y: float, s: float = 0.25) -> list[list[float]]:
        return [[x, y], [x + s, y], [x + s, y + s], [x + 0.5 * s, y + 1.2 * s], [x, y + s]]

    def r(i: int, rtype: str, params: dict[str, Any]) -> RuleSpec:
        return validate_rule({"id": f"r{i}", "camera_id": camera, "type": rtype, "params": params,
                              "classes": [] if rtype != "occupancy" else ["person", "car"]})

    kinds: list[tuple[str, dict[str, Any]]] = []
    for k in range(4):
        kinds.append(("line_count", {"line": [[0.2 + 0.15 * k, 0.1], [0.25 + 0.15 * k, 0.9]], "in_direction": "left"}))
    for k in range(3):
        kinds.append(("wrong_way", {"zone": zone(0.1 + 0.25 * k, 0.1), "direction": [1, 0]}))
    for k in range(2):
        kinds.append(("red_light", {"stop_line": [[0.3 + 0.3 * k, 0.2], [0.3 + 0.3 * k, 0.8]], "direction": [1, 0],
                                    "signal": {"source": "external"}}))
    for k in range(3):
        kinds.append(("dwell", {"zone": zone(0.05 + 0.3 * k, 0.5), "threshold_s": 10}))
    for k in range(2):
        kinds.append(("dumping", {"zone": zone(0.2 + 0.4 * k, 0.3)}))
    for k in range(2):
        kinds.append(("abandoned_object", {"zone": zone(0.1 + 0.4 * k, 0.55, 0.35), "unattended_s": 10}))
    for k in range(2):
        kinds.append(("zone_passage", {"zone": zone(0.3 + 0.3 * k, 0.2)}))
    for k in range(2):
        kinds.append(("occupancy", {"zone": zone(0.2 + 0.4 * k, 0.4, 0.4), "thresholds": [5, 10]}))
    return [r(i, t, p) for i, (t, p) in enumerate(kinds)]


def speed_frames(n_frames: int, n_tracks: int, camera: str) -> list[FrameTracks]:
    rng = np.random.default_rng(7)
    w, h = 1280, 720
    classes = ["car", "person", "person", "truck", "backpack", "suitcase", "bus", "person"]
    pos = rng.uniform(0.05, 0.95, (n_tracks, 2))
    vel = rng.normal(0, 0.01, (n_tracks, 2))
    vel[::3] = 0.0  # a third stands still
    cls = [classes[i % len(classes)] for i in range(n_tracks)]
    ids = np.arange(1, n_tracks + 1)
    frames = []
    next_id = n_tracks + 1
    for k in range(n_frames):
        t = 1000.0 + 0.1 * k
        pos += vel + rng.normal(0, 0.002, pos.shape)
        out = (pos < 0.02) | (pos > 0.98)
        vel[out] *= -1
        np.clip(pos, 0.02, 0.98, out=pos)
        if rng.random() < 0.2:  # tracks end and new ones start now and then
            j = int(rng.integers(0, n_tracks))
            ids[j] = next_id
            next_id += 1
        tracks = tuple(
            Track(track_id=int(ids[i]), cls=cls[i], box=(pos[i, 0] * w - 20, pos[i, 1] * h - 50, pos[i, 0] * w + 20,
                                                          pos[i, 1] * h), score=0.8, t=t, hits=10)
            for i in range(n_tracks)
        )
        frames.append(FrameTracks(camera, t, w, h, tracks))
    return frames


class NaiveEngine:
    """Baseline: the same rules' geometry done per track and per rule with scalar Python."""

    def __init__(self, rules: list[RuleSpec]) -> None:
        self.rules: list[tuple[str, set[str], float, str, Any]] = []
        for spec in rules:
            p = spec.params
            classes = set(spec.effective_classes())
            if spec.type in ("line_count", "red_light"):
                key = "line" if spec.type == "line_count" else "stop_line"
                pos = p["in_direction"] if "in_direction" in p else p["direction"]
                line = Line.of(p[key], pos)
                self.rules.append((spec.id, classes, spec.min_confidence, "line", line))
            else:
                poly = [tuple(pt) for pt in (p.get("zone") or [[0, 0], [1, 0], [1, 1], [0, 1]])]
                self.rules.append((spec.id, classes, spec.min_confidence, "zone", poly))
        self.state: dict[tuple[str, int], Any] = {}

    def update(self, frame: FrameTracks) -> int:
        n_changes = 0
        for rid, classes, minc, kind, geom in self.rules:
            for tr in frame.tracks:
                if tr.cls not in classes or tr.score < minc:
                    continue
                x, y = tr.ground_point
                p = (x / frame.width, y / frame.height)
                if kind == "line":
                    d = signed_distance(p, geom.a, geom.normal)
                    val: Any = 1 if d > 0.01 else (-1 if d < -0.01 else 0)
                else:
                    val = point_in_polygon(p, geom)
                key = (rid, tr.track_id)
                if self.state.get(key) != val:
                    n_changes += 1
                    self.state[key] = val
        return n_changes


def speed(n_frames: int) -> dict[str, Any]:
    camera = "speed"
    rules = speed_rules(camera)
    frames = speed_frames(n_frames, 50, camera)
    engine = RuleEngine(rules, camera)
    for rid in ("r7", "r8"):
        engine.set_signal_state(rid, "red", 1000.0)
    for f in frames[:100]:
        engine.update(f)
    t0 = time.perf_counter()
    n_events = 0
    for f in frames:
        n_events += len(engine.update(f))
    engine_s = time.perf_counter() - t0
    naive = NaiveEngine(rules)
    t0 = time.perf_counter()
    for f in frames:
        naive.update(f)
    naive_s = time.perf_counter() - t0
    return {"frames_per_s": round(n_frames / engine_s), "baseline_naive_frames_per_s": round(n_frames / naive_s),
            "speedup_vs_naive": round(naive_s / engine_s, 2), "speed_rules": len(rules), "speed_tracks": 50,
            "speed_events": n_events}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one 20-minute scene, 3000 speed frames")
    ap.add_argument("--seeds", type=int, default=3, help="scenes (full run)")
    ap.add_argument("--duration", type=float, default=None, help="seconds per scene")
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency, but the bench needs none of it
        pass
    seeds = [1] if args.quick else list(range(1, args.seeds + 1))
    duration = args.duration or (1200.0 if args.quick else 3600.0)
    t0 = time.perf_counter()
    result: dict[str, Any] = {"bench": "rules_accuracy", "quick": args.quick, "seeds": seeds, "duration_s": duration}
    result.update(accuracy(seeds, duration))
    result.update(speed(3000 if args.quick else 10000))
    result.pop("objects_true")
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps({k: v for k, v in result.items() if k in ("counts", "events_expected", "events_raised")}))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
