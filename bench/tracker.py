"""Benchmark of the ByteTracker: updates per second at 20 and 50 objects, against baselines.

Synthetic 1920x1080 scene: objects in straight lines entering and leaving by the borders, box jitter,
10% of detections dropped, 15% with a low score, plus a few low-score clutter boxes.
Detections are generated before timing; only `tracker.update` is timed.

Baselines measured in the same run:
- `naive_iou`: the same tracker with a pure-Python pairwise IoU loop (no numpy broadcast);
- `greedy`: the same tracker with cheapest-pair-first matching instead of the exact solver,
  to show what the exact assignment costs and what it buys (identity switches).

Usage: `python bench/tracker.py [--quick]`; the last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter

import numpy as np

from smartcity.core.vision import Detection, Track
from smartcity.tracking import ByteTracker
from smartcity.tracking.assignment import FloatArray, IntArray, greedy_assignment

WIDTH, HEIGHT, FPS = 1920.0, 1080.0, 10.0


class GreedyTracker(ByteTracker):
    def _assign(self, cost: FloatArray, cost_limit: float) -> tuple[IntArray, IntArray]:
        return greedy_assignment(cost, cost_limit)


class NaiveIouTracker(ByteTracker):
    def _iou(self, a: FloatArray, b: FloatArray) -> FloatArray:
        out = np.zeros((len(a), len(b)))
        for i, (ax1, ay1, ax2, ay2) in enumerate(a.tolist()):
            for j, (bx1, by1, bx2, by2) in enumerate(b.tolist()):
                iw = min(ax2, bx2) - max(ax1, bx1)
                ih = min(ay2, by2) - max(ay1, by1)
                if iw > 0 and ih > 0:
                    inter = iw * ih
                    out[i, j] = inter / ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter)
        return out


def _spawn(rng: np.random.Generator, anywhere: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position, velocity (px/frame) and size of a new object: anywhere, or entering from a border."""
    size = rng.uniform(40, 120, 2)
    speed = rng.uniform(2, 12)
    if anywhere:
        pos = rng.uniform([100, 100], [WIDTH - 100, HEIGHT - 100])
        angle = rng.uniform(0, 2 * np.pi)
    else:
        side = int(rng.integers(4))
        along = rng.uniform(0.1, 0.9)
        pos, angle = [
            (np.array([0.0, along * HEIGHT]), rng.uniform(-1, 1)),
            (np.array([WIDTH, along * HEIGHT]), np.pi + rng.uniform(-1, 1)),
            (np.array([along * WIDTH, 0.0]), np.pi / 2 + rng.uniform(-1, 1)),
            (np.array([along * WIDTH, HEIGHT]), -np.pi / 2 + rng.uniform(-1, 1)),
        ][side]
    return pos, speed * np.array([np.cos(angle), np.sin(angle)]), size


def make_scene(
    n_objects: int, frames: int, seed: int
) -> tuple[list[list[Detection]], list[list[tuple[int, tuple[float, float, float, float]]]]]:
    """Per frame: the detections (shuffled) and the ground truth (object number, true box) shown.

    Objects move in straight lines; one that leaves the frame is replaced by a new one
    entering from a border, so `n_objects` are in view at every frame.
    """
    rng = np.random.default_rng(seed)
    objects = {k: _spawn(rng, anywhere=True) for k in range(n_objects)}
    next_k = n_objects
    all_dets: list[list[Detection]] = []
    all_truth: list[list[tuple[int, tuple[float, float, float, float]]]] = []
    for _ in range(frames):
        for k in list(objects):
            pos, vel, size = objects[k]
            pos = pos + vel
            if not (0 <= pos[0] <= WIDTH and 0 <= pos[1] <= HEIGHT):
                del objects[k]
                objects[next_k] = _spawn(rng, anywhere=False)
                next_k += 1
            else:
                objects[k] = (pos, vel, size)
        dets: list[Detection] = []
        truth: list[tuple[int, tuple[float, float, float, float]]] = []
        for k, (pos, _, size) in objects.items():
            if rng.random() < 0.10:
                continue
            (cx, cy), (w, h) = pos, size
            x1, y1, x2, y2 = (
                np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) + rng.normal(0, 1.5, 4)
            ).tolist()
            score = float(rng.uniform(0.15, 0.45) if rng.random() < 0.15 else rng.uniform(0.6, 0.95))
            dets.append(Detection((x1, y1, x2, y2), "car", score))
            truth.append((k, (x1, y1, x2, y2)))
        for _ in range(int(rng.integers(0, 4))):  # clutter: weak boxes on nothing
            x, y = rng.uniform(0, WIDTH - 60), rng.uniform(0, HEIGHT - 60)
            dets.append(Detection((x, y, x + 50, y + 50), "car", float(rng.uniform(0.1, 0.3))))
        order = rng.permutation(len(dets))
        all_dets.append([dets[i] for i in order])
        all_truth.append(truth)
    return all_dets, all_truth


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def identity_quality(
    outputs: list[list[Track]], truth: list[list[tuple[int, tuple[float, float, float, float]]]]
) -> dict[str, float]:
    """ID switches (owner of an object changes between consecutive owned frames) and the share
    of each object's detected frames owned by its main id."""
    owners: dict[int, list[int]] = {}
    for tracks, shown in zip(outputs, truth):
        pairs = sorted(
            (
                (_iou(tr.box, box), k, n)
                for k, box in shown
                for n, tr in enumerate(tracks)
                if tr.time_since_update == 0
            ),
            reverse=True,
        )
        got: set[int] = set()
        used: set[int] = set()
        for v, k, n in pairs:
            if v >= 0.5 and k not in got and n not in used:
                got.add(k)
                used.add(n)
                owners.setdefault(k, []).append(tracks[n].track_id)
    switches = sum(sum(1 for a, b in zip(ids, ids[1:]) if a != b) for ids in owners.values())
    main_share = [Counter(ids).most_common(1)[0][1] / len(ids) for ids in owners.values() if ids]
    return {"id_switches": switches, "main_id_share": round(float(np.mean(main_share)), 4)}


def run(
    variants: list[type[ByteTracker]], dets: list[list[Detection]], repeats: int
) -> list[tuple[float, list[list[Track]]]]:
    """Best rate (updates/s) and outputs of each tracker class. Repeats are interleaved so that
    load from other processes on a shared machine hits every variant alike."""
    best = [float("inf")] * len(variants)
    outputs: list[list[list[Track]]] = [[] for _ in variants]
    for _ in range(repeats):
        for v, tracker_cls in enumerate(variants):
            tracker = tracker_cls()
            out: list[list[Track]] = []
            start = time.perf_counter()
            for f, frame in enumerate(dets):
                out.append(tracker.update(frame, f / FPS))
            best[v] = min(best[v], time.perf_counter() - start)
            outputs[v] = out
    return [(len(dets) / b, o) for b, o in zip(best, outputs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames (a few seconds in all)")
    args = parser.parse_args()
    frames, repeats = (300, 5) if args.quick else (2000, 7)
    result: dict[str, object] = {"bench": "tracker", "quick": args.quick, "frames": frames}
    ups: dict[str, float] = {}
    baselines: dict[str, dict[str, float]] = {"naive_iou": {}, "greedy": {}}
    quality: dict[str, dict[str, object]] = {}
    for n in (20, 50):
        dets, truth = make_scene(n, frames, seed=n)
        (rate, outputs), (naive_rate, _), (greedy_rate, greedy_outputs) = run(
            [ByteTracker, NaiveIouTracker, GreedyTracker], dets, repeats
        )
        ups[str(n)] = round(rate, 1)
        baselines["naive_iou"][str(n)] = round(naive_rate, 1)
        baselines["greedy"][str(n)] = round(greedy_rate, 1)
        quality[str(n)] = {
            "exact": identity_quality(outputs, truth),
            "greedy": identity_quality(greedy_outputs, truth),
        }
        print(
            f"{n} objects: {rate:,.0f} updates/s ({1e6 / rate:.0f} us/update); naive IoU {naive_rate:,.0f}/s; "
            f"greedy {greedy_rate:,.0f}/s; quality {quality[str(n)]}"
        )
    result.update(
        {
            "updates_per_s": ups,
            "us_per_update": {k: round(1e6 / v, 1) for k, v in ups.items()},
            "baseline_updates_per_s": baselines,
            "speedup_vs_naive_iou": {k: round(ups[k] / baselines["naive_iou"][k], 2) for k in ups},
            "ratio_vs_greedy": {k: round(ups[k] / baselines["greedy"][k], 2) for k in ups},
            "identity": quality,
            "python": platform.python_version(),
            "machine": platform.machine(),
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
