"""Record what the `fire` rule's pixel detector is fed on the fire bench, then replay it in seconds.

A full fire bench (bench/emergency_fire.py) takes 15 minutes or more: it decodes, composites, runs
the camera's detector and the tracker. The pixel detector itself sees only the working copy of
each frame (every k-th pixel, about 200 wide) and the boxes the rule masks. `record` runs the
bench's negatives and flame positives once and keeps exactly that, per stream, under DIR (a
scratch directory outside the project: frames derived from ../shared/data are never written into
it); `replay` runs `FireSmokeDetector` over it with any `DetectorTuning` overrides and scores the
alerts as the bench does (one alert per episode, 120 s rearm; found when it touches the truth of
the last 3 s; any other alert false), next to the defaults in the same run:

    python bench/fire_replay.py record /tmp/fire-rec [--quick]
    python bench/fire_replay.py replay /tmp/fire-rec '{"fire_body": 0.3}'
    python bench/fire_replay.py episodes /tmp/fire-rec ['{"rigid_max": 0}']  # where the regions are

The last line is JSON: recall and false alerts per camera-hour of the overrides and of the
defaults, and the streams where they differ. Recording the full set takes about 15 minutes and
2.5 GB; a replay of it about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import emergency_fire as ef  # noqa: E402

from smartcity.analytics import fire as fire_mod  # noqa: E402
from smartcity.analytics.fire import DetectorTuning, FireSmokeDetector, Region  # noqa: E402

REARM_S = 120.0  # the rule's default


def record(out: Path, quick: bool, cache: Path | None) -> None:
    """Run the fire bench's streams (no smoke positives), keeping each fire detector's input."""
    out.mkdir(parents=True, exist_ok=True)
    inputs: dict[str, list[Any]] = {"frames": [], "boxes": [], "t": []}
    update = FireSmokeDetector.update

    def recording(self: FireSmokeDetector, image: Any, t: float, exclude: Any = ()) -> Any:
        if self.fire_on and not self.smoke_on and self.tuning.fire_body > 0:  # the rule's, not the peer's
            k = max(1, image.shape[1] // self.tuning.work_width)
            inputs["frames"].append(np.ascontiguousarray(image[::k, ::k, :3]))
            inputs["boxes"].append(list(exclude))
            inputs["t"].append(float(t))
        return update(self, image, t, exclude)

    run_stream = ef.run_stream

    def recorded(name: str, kind: str, held_out: bool, items: Any, detections: Any, **kw: Any) -> ef.Stream:
        for v in inputs.values():
            v.clear()
        s = run_stream(name, kind, held_out, items, detections, **{**kw, "peer": False})
        if kind != "smoke":
            np.save(out / f"{name}.npy", np.stack(inputs["frames"]))
            meta = {
                "name": name,
                "kind": kind,
                "held_out": held_out,
                "t": list(inputs["t"]),
                "boxes": list(inputs["boxes"]),
                "truths": s.truths,
                "seconds": s.seconds,
            }
            with (out / f"{name}.pkl").open("wb") as fh:
                pickle.dump(meta, fh)
        return s

    fire_mod.FireSmokeDetector.update = recording  # type: ignore[method-assign]  # this run only
    ef.run_stream = recorded
    try:
        path = cache / "detections-nanodet.pkl" if cache else None
        detections = ef.Detections(ef.make_detector("nanodet"), "nanodet", path)
        result, _ = ef.run_fire(quick, detections)
    finally:
        fire_mod.FireSmokeDetector.update = update  # type: ignore[method-assign]
        ef.run_stream = run_stream
    print(
        json.dumps(
            {
                "recorded": str(out),
                "fire_recall": result["fire_recall"],
                "fire_false_alerts": result["fire_false_alerts"],
            }
        )
    )


def _frames(path: Path, meta: dict[str, Any]) -> Iterator[tuple[float, Any, list[Any]]]:
    """The recorded stream `path` (its `meta`, as `record` wrote it): (t, working frame, masked boxes)."""
    frames = np.load(path.with_suffix(".npy"), mmap_mode="r")
    for i, t in enumerate(meta["t"]):
        yield t, np.asarray(frames[i]), meta["boxes"][i]


def _regions(
    path: Path, overrides: dict[str, Any]
) -> tuple[dict[str, Any], Iterator[tuple[float, Region | None]]]:
    """The recorded stream `path`'s meta (as `record` wrote it), and the fire region of each of its
    frames under `overrides`, lazily."""
    with path.open("rb") as fh:
        meta = pickle.load(fh)
    det = FireSmokeDetector(fps=ef.FPS, tuning=replace(DetectorTuning(), **overrides), smoke=False)
    return meta, ((t, det.update(img, t, boxes).fire) for t, img, boxes in _frames(path, meta))


def _per_stream(
    directory: Path, overrides: dict[str, Any], work: Any, workers: int, *extra: Any
) -> list[Any]:
    """`work((path, overrides, *extra))` for every stream recorded under `directory`, in `workers`
    processes."""
    DetectorTuning(**overrides)  # a misspelt name fails here, naming it
    paths = sorted(directory.glob("*.pkl"))
    if not paths:
        raise SystemExit(f"{directory}: nothing recorded (run `record` first)")
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(work, [(p, overrides, *extra) for p in paths]))


def replay_stream(args: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    """One stream's alerts under `overrides`, scored as the bench scores them."""
    meta, regions = _regions(*args)
    active, last_seen, alerts = False, -np.inf, []
    for t, region in regions:
        if region is None:
            active = active and t - last_seen < REARM_S
            continue
        last_seen = t
        if not active:
            active = True
            alerts.append((t, (region.x1, region.y1, region.x2, region.y2)))
    found, false = ef.judge(meta["kind"], meta["truths"], [("fire", t, box) for t, box in alerts])
    return {
        "name": meta["name"],
        "kind": meta["kind"],
        "seconds": meta["seconds"],
        "found": found is not None,
        "false": false,
        "alerts": [round(t, 1) for t, _ in alerts],
    }


def episodes_stream(args: tuple[Path, dict[str, Any], float]) -> dict[str, Any]:
    """One stream's fire regions under `overrides`, grouped into episodes (region frames less than
    `gap` seconds apart): where every alert of the stream comes from, and how much evidence it had."""
    path, overrides, gap = args
    meta, regions = _regions(path, overrides)
    out: list[dict[str, Any]] = []
    for t, r in regions:
        if r is None:
            continue
        box = (round(r.x1, 3), round(r.y1, 3), round(r.x2, 3), round(r.y2, 3))
        if out and t - out[-1]["end"] < gap:
            ep = out[-1]
            ep["end"], ep["frames"], ep["max_cells"] = (
                round(t, 2),
                ep["frames"] + 1,
                max(ep["max_cells"], r.cells),
            )
        else:
            out.append(
                {"start": round(t, 2), "end": round(t, 2), "frames": 1, "max_cells": r.cells, "box": box}
            )
        if meta["kind"] == "fire":
            out[-1]["on_truth"] = out[-1].get("on_truth", False) or ef._hits(meta["truths"], t, box)
    return {"name": meta["name"], "kind": meta["kind"], "held_out": meta["held_out"], "episodes": out}


def episodes(directory: Path, overrides: dict[str, Any], workers: int, gap: float = 10.0) -> dict[str, Any]:
    """Every stream's episodes of fire regions under `overrides`, and the region frames of the
    negatives and of the positives (a cue that thins the first and keeps the second is worth a look
    even when no alert changes: one passing frame is one alert)."""
    rows = _per_stream(directory, overrides, episodes_stream, workers, gap)

    def frames(kind: str) -> int:
        return sum(e["frames"] for r in rows if r["kind"] == kind for e in r["episodes"])

    return {
        "overrides": overrides,
        "negative_region_frames": frames("none"),
        "positive_region_frames": frames("fire"),
        "streams": {r["name"]: r["episodes"] for r in rows if r["episodes"]},
    }


def score(rows: list[dict[str, Any]]) -> dict[str, Any]:
    pos = [r for r in rows if r["kind"] == "fire"]
    neg = [r for r in rows if r["kind"] == "none"]
    hours = sum(r["seconds"] for r in neg) / 3600.0
    fa = sum(r["false"] for r in neg)
    return {
        "fire_recall": round(sum(r["found"] for r in pos) / len(pos), 3) if pos else None,
        "fire_positives": len(pos),
        "fire_false_alerts": fa,
        "fire_false_alerts_per_hour": round(fa / hours, 2) if hours else None,
        "negative_hours": round(hours, 3),
    }


def replay(directory: Path, overrides: dict[str, Any], workers: int) -> dict[str, Any]:
    ours = _per_stream(directory, overrides, replay_stream, workers)
    base = _per_stream(directory, {}, replay_stream, workers)
    differ = {
        a["name"]: {"overrides": a["alerts"], "defaults": b["alerts"]}
        for a, b in zip(ours, base, strict=True)
        if a["alerts"] != b["alerts"]
    }
    return {"overrides": overrides, **score(ours), "defaults": score(base), "streams_that_differ": differ}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="run the fire bench once, keeping the detector's input under DIR")
    rec.add_argument("dir", type=Path)
    rec.add_argument("--quick", action="store_true")
    rec.add_argument("--cache", type=Path, default=None, help="the camera detector's cache, as the bench's")
    rep = sub.add_parser("replay", help="replay DIR with DetectorTuning overrides (JSON)")
    rep.add_argument("dir", type=Path)
    rep.add_argument("overrides", nargs="?", default="{}")
    rep.add_argument("--workers", type=int, default=2)
    epi = sub.add_parser(
        "episodes", help="every stream's episodes of fire regions under DetectorTuning overrides"
    )
    epi.add_argument("dir", type=Path)
    epi.add_argument("overrides", nargs="?", default="{}")
    epi.add_argument("--gap", type=float, default=10.0, help="seconds without a region that end an episode")
    epi.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    if args.cmd == "record":
        if not ef.data_available():
            raise SystemExit(f"{ef.FIRE} or {ef.VTEST} absent: nothing to record")
        record(args.dir, args.quick, args.cache)
    elif args.cmd == "episodes":
        print(json.dumps(episodes(args.dir, json.loads(args.overrides), args.workers, args.gap)))
    else:
        print(json.dumps(replay(args.dir, json.loads(args.overrides), args.workers)))


if __name__ == "__main__":
    main()
