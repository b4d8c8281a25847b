"""A stand-in for bench/roadsim: SceneRun objects built from bench/scenario.py.

Used by `bench/counting.py --fake` (and when roadsim's `build_runs` is missing), so the
counting bench can be run and tested without SUMO. One scene ("street"): the synthetic
two-way street with its counting line, wrong-way side street and parking dwell zone. Only
the totals of the true crossings are known there, so their times are the episode-free `0.0`;
wrong-way and dwell episodes span the true object's stay in the rule's zone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import scenario
from roadsim.types import NoiseLevel, SceneRun, TrueCrossing, TrueEpisode, Truth

from smartcity.analytics.geometry import point_in_polygon
from smartcity.sources.detlog import FrameRecord

NOISE: dict[str, dict[str, float]] = {
    "clean": {"miss_rate": 0.0, "jitter": 0.0, "false_positives_per_frame": 0.0, "occlusion_rate": 0.0,
              "long_occlusion_rate": 0.0},
    "realistic": {},  # scenario.generate's defaults
    "hard": {"miss_rate": 0.2, "jitter": 0.035, "false_positives_per_frame": 1.0, "occlusion_rate": 0.5,
             "long_occlusion_rate": 0.08},
}
_EPISODES = {"wrong_way": (scenario.WRONG_WAY_ZONE, "wrong_way"), "dwell": (scenario.PARKING_ZONE, "dwell")}


def _inside(p: tuple[float, float], zone: list[list[float]]) -> bool:
    return point_in_polygon(p, [(x, y) for x, y in zone])


def _stay(obj: scenario.SimObject, zone: list[list[float]], t: float) -> tuple[float, float]:
    """Start and end of the object's stay in `zone` around time `t` (0.1 s steps)."""
    start = end = t
    while start - 0.1 >= obj.t0 and _inside(obj.at(start - 0.1), zone):
        start -= 0.1
    while end + 0.1 <= obj.t1 and _inside(obj.at(end + 0.1), zone):
        end += 0.1
    return start, end


def scene_run(seed: int, fps: float, noise: NoiseLevel, duration_s: float) -> SceneRun:
    sc = scenario.generate(seed, duration_s, fps, **NOISE[noise])
    objects = {o.oid: o for o in sc.objects}
    truth = Truth(objects=len(sc.objects))
    for (cls, direction), n in sorted(sc.gt_counts.items()):
        truth.crossings += [TrueCrossing("count", f"{cls}-{direction}-{k}", cls, direction, 0.0) for k in range(n)]
    for ev in sc.gt_events:
        kind = {"wrong_way": "wrong_way", "dwell": "dwell"}.get(ev.kind)
        if kind is None:
            continue
        zone, _ = _EPISODES[kind]
        obj = objects[ev.oid]
        start, end = _stay(obj, zone, ev.t)
        episode = TrueEpisode(ev.rule_id, str(ev.oid), ev.cls, start, ev.t, end)
        (truth.wrong_way if kind == "wrong_way" else truth.dwell).append(episode)
    rules: list[dict[str, Any]] = [
        s.model_dump(mode="json", exclude_defaults=True) | {"id": s.id, "camera_id": s.camera_id, "type": s.type}
        for s in sc.rules
        if s.type in ("line_count", "wrong_way", "dwell")
    ]
    frames = [FrameRecord(sc.camera_id, t, sc.width, sc.height, tuple(dets)) for t, dets in sc.frames]
    return SceneRun("street", sc.camera_id, sc.width, sc.height, fps, noise, seed, duration_s, rules, frames, truth,
                    meta={"source": "bench/scenario.py"})


def build_runs(*, quick: bool, seeds: Sequence[int], fps_list: Sequence[float],
               noise_levels: Sequence[NoiseLevel], duration_s: float) -> Iterator[SceneRun]:
    """Same call as roadsim's build_runs: every seed x fps x noise of the one scene."""
    del quick  # one scene either way
    for seed in seeds:
        for fps in fps_list:
            for noise in noise_levels:
                yield scene_run(seed, fps, noise, duration_s)
