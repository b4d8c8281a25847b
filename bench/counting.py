"""Road counting accuracy of our pipeline on simulated traffic, against supervision's ByteTrack + LineZone.

Data: bench/roadsim's SceneRuns (SUMO traffic filmed by a virtual camera, noisy detections,
truth from the true trajectories), or with `--fake` the synthetic street of
bench/scenario.py (no SUMO needed). Conditions: every scene at 5 fps with
clean, realistic and hard noise, and at 10 fps with realistic noise.

Ours: ByteTracker (TrackerConfig defaults) + RuleEngine over the frames, driven as
smartcity/replay.py drives them; line_count rules run with `emit_events` so every crossing
they decide is seen. The count buckets are taken after every analysed frame with
`flush_before` = the frame's time (as replay does; the most demanding cadence for a crossing
confirmed after its minute was handed out; `--flush-s 10` takes them at the camera actors'
cadence instead), go through the server's writer (EventWriter -> bulk upsert) into a
temporary SQLite database, one transaction per flush, and are read back with the `counts`
query's count_series: `crossings_lost` = crossings emitted and not stored (per run, rule,
direction and class).

Peer: supervision ByteTrack (frame_rate = the run's fps) + one LineZone per counting line,
bottom-centre anchor, on the same detections (bench/counting_peer.py).

Usage: python bench/counting.py [--quick] [--seeds N] [--duration S] [--fake] [--scenes A,B] [--first-seed K] [--dump DIR] [--no-peer]
       [--peer-crossing-threshold N] [--flush-s S] [--no-speed]
The last line printed is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
for _p in (str(BENCH_DIR.parent), str(BENCH_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import sqlalchemy as sa  # noqa: E402
from roadsim.types import NoiseLevel, SceneRun, TrueEpisode  # noqa: E402

from smartcity.analytics import RuleEngine, RuleSpec, validate_rule  # noqa: E402
from smartcity.core.events import CountBucket, RuleEvent  # noqa: E402
from smartcity.core.vision import FrameTracks  # noqa: E402
from smartcity.replay import CameraReplay  # noqa: E402
from smartcity.sources.detlog import DetectionLogWriter  # noqa: E402
from smartcity.storage.db import Database, migrate  # noqa: E402
from smartcity.storage.register import count_series  # noqa: E402
from smartcity.storage.tables import counts as counts_table  # noqa: E402
from smartcity.storage.writer import EventWriter  # noqa: E402
from smartcity.tracking import ByteTracker  # noqa: E402

CountKey = tuple[str, str, str]  # (rule id, direction name, class)
EPISODE_WINDOW_S = (1.0, 3.0)  # an event matches an episode within [t_start - 1 s, t_end + 3 s]
CONDITIONS: dict[str, tuple[float, NoiseLevel]] = {  # column suffix -> (fps, noise)
    "": (5.0, "realistic"),
    "_hard": (5.0, "hard"),
    "_clean": (5.0, "clean"),
    "_10fps": (10.0, "realistic"),
}
GOALS: dict[str, tuple[str, float]] = {
    "count_error": ("<=", 0.05),
    "count_error_hard": ("<=", 0.10),
    "wrong_way_precision": (">=", 0.95),
    "wrong_way_recall": (">=", 0.95),
    "crossings_lost": ("==", 0),
    "tracker_frames_per_s": (">=", 2000),
}
PEER_COLUMNS = ("count_error", "count_error_hard", "count_error_clean", "count_error_merged", "count_error_10fps")


# ------------------------------------------------------------------ scoring (pure)


def count_error(pred: Mapping[Any, int], true: Mapping[Any, int]) -> float | None:
    """Sum over keys of |predicted - true| / sum of true; None when nothing was to be counted."""
    total = sum(true.values())
    if total == 0:
        return None
    return sum(abs(pred.get(k, 0) - true.get(k, 0)) for k in set(pred) | set(true)) / total


def merge_classes(c: Mapping[tuple[Any, ...], int]) -> Counter[tuple[Any, ...]]:
    """The same counts with the class (last element of each key) merged away."""
    out: Counter[tuple[Any, ...]] = Counter()
    for k, n in c.items():
        out[k[:-1]] += n
    return out


def per_class(pred: Mapping[tuple[Any, ...], int], true: Mapping[tuple[Any, ...], int]) -> dict[str, Any]:
    """Count error per class (last element of each key): true, predicted and error per class.

    A predicted class that was never true shows with true 0 and error None (nothing to divide by).
    """
    classes = sorted({k[-1] for k in pred} | {k[-1] for k in true})
    out: dict[str, Any] = {}
    for cls in classes:
        p = {k: n for k, n in pred.items() if k[-1] == cls}
        t = {k: n for k, n in true.items() if k[-1] == cls}
        err = count_error(p, t)
        out[cls] = {"true": sum(t.values()), "pred": sum(p.values()),
                    "error": None if err is None else round(err, 4)}
    return out


@dataclass(frozen=True, slots=True)
class EpisodeScore:
    matched: int = 0
    events: int = 0
    episodes: int = 0

    def __add__(self, other: EpisodeScore) -> EpisodeScore:
        return EpisodeScore(self.matched + other.matched, self.events + other.events,
                            self.episodes + other.episodes)

    @property
    def precision(self) -> float | None:
        return round(self.matched / self.events, 4) if self.events else None

    @property
    def recall(self) -> float | None:
        return round(self.matched / self.episodes, 4) if self.episodes else None


def match_episodes(events: Iterable[tuple[str, float]], episodes: Sequence[TrueEpisode],
                   window: tuple[float, float] = EPISODE_WINDOW_S) -> EpisodeScore:
    """Match alert events (rule id, t) to true episodes of the same rule, greedily in time order.

    An event matches an episode not yet matched when t_start - window[0] <= t <= t_end + window[1];
    among several, the one whose t_alert is nearest. One event per episode: a second event for
    a matched episode (e.g. after the tracker lost and found the object again) is a false positive.
    """
    before, after = window
    used: set[int] = set()
    n_events = 0
    for rule_id, t in sorted(events, key=lambda e: e[1]):
        n_events += 1
        best, best_dt = None, math.inf
        for j, ep in enumerate(episodes):
            if j in used or ep.rule_id != rule_id or not ep.t_start - before <= t <= ep.t_end + after:
                continue
            if abs(t - ep.t_alert) < best_dt:
                best, best_dt = j, abs(t - ep.t_alert)
        if best is not None:
            used.add(best)
    return EpisodeScore(len(used), n_events, len(episodes))


def true_counts(run: SceneRun, specs: Sequence[RuleSpec]) -> tuple[Counter[CountKey], int]:
    """True crossings per (rule, direction, class), only of the classes each rule counts; and how
    many true crossings were left out because their rule does not count their class."""
    classes = {s.id: set(s.effective_classes()) for s in specs if s.type == "line_count"}
    out: Counter[CountKey] = Counter()
    excluded = 0
    for c in run.truth.crossings:
        if c.object_class in classes.get(c.rule_id, ()):
            out[(c.rule_id, c.direction, c.object_class)] += 1
        else:
            excluded += 1
    return out, excluded


def alert_events(events: Iterable[RuleEvent], specs: Sequence[RuleSpec], rule_type: str) -> list[tuple[str, float]]:
    """(rule id, t) of the alerts of the rules of `rule_type` (their alert kinds, e.g. not dwell_ended)."""
    kinds = {s.id: s.rule_class.alert_kinds for s in specs if s.type == rule_type}
    return [(e.rule_id, e.t) for e in events if e.rule_id in kinds and e.kind in kinds[e.rule_id]]


# ------------------------------------------------------------------ our pipeline


def prepare_rules(rules: Sequence[Mapping[str, Any]]) -> list[RuleSpec]:
    """Validate the run's rule dicts; line_count rules also emit one event per crossing."""
    specs = []
    for r in rules:
        spec = validate_rule(r)
        if spec.type == "line_count" and not spec.params.get("emit_events"):
            spec = validate_rule({**r, "params": {**spec.params, "emit_events": True}})
        specs.append(spec)
    return specs


@dataclass(slots=True)
class PipelineRun:
    events: list[RuleEvent] = field(default_factory=list)
    flushes: list[list[CountBucket]] = field(default_factory=list)
    seconds: float = 0.0

    def crossings(self, specs: Sequence[RuleSpec]) -> Counter[CountKey]:
        lines = {s.id for s in specs if s.type == "line_count"}
        out: Counter[CountKey] = Counter()
        for e in self.events:
            if e.rule_id in lines and e.kind == "crossing":
                out[(e.rule_id, str(e.payload["direction"]), e.object_class or "")] += 1
        return out


def run_pipeline(run: SceneRun, specs: Sequence[RuleSpec], flush_s: float) -> PipelineRun:
    """ByteTracker + RuleEngine over the run's frames through replay's CameraReplay; the count buckets
    are taken every `flush_s` of frame time (flush_before = that frame's time) and at the end."""
    out = PipelineRun()
    camera = CameraReplay(run.camera_id, specs)
    last_flush: float | None = None
    t0 = time.perf_counter()
    for record in run.frames:
        out.events.extend(camera.step(record)[1])
        if last_flush is None:
            last_flush = record.t
        elif record.t - last_flush >= flush_s:
            out.flushes.append(camera.count_buckets(flush_before=record.t))
            last_flush = record.t
    out.flushes.append(camera.count_buckets(flush_before=None))
    out.seconds = time.perf_counter() - t0
    return out


async def stored_counts(db: Database, camera_id: str, flushes: Sequence[Sequence[CountBucket]]) -> Counter[CountKey]:
    """Write each flush through the server's writer (one transaction each, as the bridge would
    hand them over), then read the totals back with the `counts` query's count_series."""
    async with db.engine.begin() as conn:
        await conn.execute(sa.delete(counts_table))
    writer = EventWriter(db)
    for batch in flushes:
        if batch:
            await writer.write(list(batch))
    starts = [b.bucket_start for batch in flushes for b in batch]
    out: Counter[CountKey] = Counter()
    if not starts:
        return out
    rows = await count_series(db, camera_id=camera_id, rule_id=None, object_class=None, direction=None,
                              bucket_s=3600, since=min(starts) - 3600, until=max(starts) + 3600)
    for r in rows:
        out[(r["rule_id"], r["direction"], r["object_class"])] += int(r["n"])
    return out


# ------------------------------------------------------------------ one run


@dataclass(slots=True)
class RunScore:
    scene: str
    seed: int
    fps: float
    noise: str
    frames: int
    duration_s: float
    truth: Counter[CountKey]
    ours: Counter[CountKey]
    stored: Counter[CountKey]
    peer: Counter[CountKey] | None
    wrong_way: EpisodeScore
    dwell: EpisodeScore
    truth_excluded: int
    ours_s: float
    peer_s: float

    @property
    def label(self) -> str:
        return f"{self.scene}/s{self.seed}"


def score_run(run: SceneRun, db: Database, loop: asyncio.AbstractEventLoop, flush_s: float,
              peer_threshold: int | None, dump: Path | None) -> RunScore:
    """Ours (events, stored counts) and, unless `peer_threshold` is None, the peer's counts."""
    specs = prepare_rules(run.rules)
    if dump is not None:
        dump_run(run, specs, dump)
    ours = run_pipeline(run, specs, flush_s)
    stored = loop.run_until_complete(stored_counts(db, run.camera_id, ours.flushes))
    truth, excluded = true_counts(run, specs)
    peer: Counter[CountKey] | None = None
    peer_s = 0.0
    if peer_threshold is not None:
        from counting_peer import peer_counts

        t0 = time.perf_counter()
        peer = peer_counts(specs, run.frames, run.width, run.height, run.fps, peer_threshold)
        peer_s = time.perf_counter() - t0
    return RunScore(
        scene=run.scene, seed=run.seed, fps=run.fps, noise=run.noise, frames=len(run.frames),
        duration_s=run.duration_s, truth=truth,
        ours=ours.crossings(specs), stored=stored, peer=peer,
        wrong_way=match_episodes(alert_events(ours.events, specs, "wrong_way"), run.truth.wrong_way),
        dwell=match_episodes(alert_events(ours.events, specs, "dwell"), run.truth.dwell),
        truth_excluded=excluded, ours_s=ours.seconds, peer_s=peer_s,
    )


def dump_run(run: SceneRun, specs: Sequence[RuleSpec], directory: Path) -> None:
    """Detections log, rules file and truth of one run, replayable with `smartcity replay`."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"{run.scene}_{run.fps:g}fps_{run.noise}_s{run.seed}"
    with DetectionLogWriter(f"{stem}.detections.jsonl", append=False) as log:
        for r in run.frames:
            log.write(r.camera, r.t, r.width, r.height, r.detections)
    rules = [s.model_dump(mode="json", exclude_defaults=True) | {"id": s.id, "camera_id": s.camera_id,
                                                                  "type": s.type} for s in specs]
    Path(f"{stem}.rules.json").write_text(json.dumps(rules, indent=1), encoding="utf-8")
    truth = {"scene": run.scene, "fps": run.fps, "noise": run.noise, "seed": run.seed, "meta": run.meta,
             **asdict(run.truth)}
    Path(f"{stem}.truth.json").write_text(json.dumps(truth, indent=1, default=str), encoding="utf-8")


# ------------------------------------------------------------------ summary


def _keyed(scores: Iterable[RunScore], pick: Callable[[RunScore], Counter[CountKey] | None]) -> Counter[tuple[str, ...]]:
    out: Counter[tuple[str, ...]] = Counter()
    for s in scores:
        for k, n in (pick(s) or {}).items():
            out[(s.label, *k)] += n
    return out


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def count_columns(scores: Sequence[RunScore], pick: Callable[[RunScore], Counter[CountKey] | None]) -> dict[str, Any]:
    """count_error{,_hard,_clean,_10fps}, count_error_merged, per_class and per_scene of one counter."""
    out: dict[str, Any] = {}
    for suffix, (fps, noise) in CONDITIONS.items():
        runs = [s for s in scores if s.fps == fps and s.noise == noise]
        out[f"count_error{suffix}"] = _r(count_error(_keyed(runs, pick), _keyed(runs, lambda s: s.truth))) if runs \
            else None
    main = [s for s in scores if (s.fps, s.noise) == CONDITIONS[""]]
    pred, true = _keyed(main, pick), _keyed(main, lambda s: s.truth)
    out["count_error_merged"] = _r(count_error(merge_classes(pred), merge_classes(true)))
    out["per_class"] = per_class(pred, true)
    out["per_scene"] = {scene: _r(count_error(_keyed([s for s in main if s.scene == scene], pick),
                                              _keyed([s for s in main if s.scene == scene], lambda s: s.truth)))
                        for scene in sorted({s.scene for s in main})}
    return out


def storage_gap(scores: Iterable[RunScore]) -> tuple[int, int]:
    """(crossings emitted but not stored, crossings stored but never emitted), per run and
    (rule, direction, class), so that a surplus in one place cannot hide a loss in another."""
    lost = extra = 0
    for s in scores:
        for k in set(s.ours) | set(s.stored):
            d = s.ours.get(k, 0) - s.stored.get(k, 0)
            lost, extra = lost + max(d, 0), extra + max(-d, 0)
    return lost, extra


def episodes_by_condition(scores: Sequence[RunScore]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fps, noise in CONDITIONS.values():
        runs = [s for s in scores if s.fps == fps and s.noise == noise]
        if runs:
            ww = sum((s.wrong_way for s in runs), EpisodeScore())
            dw = sum((s.dwell for s in runs), EpisodeScore())
            out[f"{fps:g}fps/{noise}"] = {"wrong_way": asdict(ww), "dwell": asdict(dw)}
    return out


def goals(result: Mapping[str, Any]) -> dict[str, Any]:
    ops: dict[str, Callable[[float, float], bool]] = {"<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
                                                      "==": lambda a, b: a == b}
    out: dict[str, Any] = {}
    for name, (op, target) in GOALS.items():
        v = result.get(name)
        out[name] = {"target": f"{op} {target:g}", "value": v, "met": v is not None and ops[op](v, target)}
    peer = result.get("peer") or {}
    for col in PEER_COLUMNS:
        ours, theirs = result.get(col), peer.get(col)
        out[f"{col}_better_than_peer"] = {"target": f"< peer ({theirs})", "value": ours,
                                          "met": ours is not None and theirs is not None and ours < theirs}
    return out


def print_tables(scores: Sequence[RunScore]) -> None:
    for s in scores:
        if (s.fps, s.noise) != CONDITIONS[""]:
            continue
        print(f"\n{s.label}  {s.fps:g} fps {s.noise}  ({s.frames} frames, ours {s.ours_s:.1f} s, "
              f"peer {s.peer_s:.1f} s)")
        print(f"  {'rule':<18}{'dir':<14}{'class':<12}{'true':>6}{'ours':>6}{'stored':>8}{'peer':>6}")
        keys = sorted(set(s.truth) | set(s.ours) | set(s.stored) | set(s.peer or {}))
        for k in keys:
            peer = (s.peer or {}).get(k, 0) if s.peer is not None else "-"
            print(f"  {k[0]:<18}{k[1]:<14}{k[2]:<12}{s.truth.get(k, 0):>6}{s.ours.get(k, 0):>6}"
                  f"{s.stored.get(k, 0):>8}{peer:>6}")
        print(f"  wrong_way {s.wrong_way}  dwell {s.dwell}")


# ------------------------------------------------------------------ speed


def tracker_speed(n_frames: int, repeats: int = 3) -> dict[str, Any]:
    """Frames/s of ByteTracker + RuleEngine (20 rules, 50 objects) and of the naive baseline
    (pure-Python IoU tracker + per-track per-rule scalar geometry), best of interleaved repeats (on a
    shared VM a run is slowed by whatever else runs: the best of several is the machine's own speed).
    Scene from bench/tracker.py, rules from bench/rules_accuracy.py."""
    from rules_accuracy import NaiveEngine, speed_rules
    from tracker import HEIGHT, WIDTH, NaiveIouTracker, make_scene

    warm = 100
    dets, _ = make_scene(50, n_frames + warm, seed=50)
    rules = speed_rules("speed")

    def once(tracker_cls: type[ByteTracker], naive: bool) -> float:
        tracker = tracker_cls()
        engine: Any = NaiveEngine(rules) if naive else RuleEngine(rules, "speed")
        if not naive:
            for spec in rules:
                if spec.type == "red_light":
                    engine.set_signal_state(spec.id, "red", 0.0)
        start = 0.0
        for f, frame_dets in enumerate(dets):
            if f == warm:
                start = time.perf_counter()
            t = f / 10.0
            tracks = tracker.update(frame_dets, t, (int(WIDTH), int(HEIGHT)))
            engine.update(FrameTracks("speed", t, int(WIDTH), int(HEIGHT), tuple(tracks),
                                      columns=getattr(tracker, "columns", None)))
        return n_frames / (time.perf_counter() - start)

    best = {"ours": 0.0, "naive": 0.0}
    for _ in range(repeats):
        best["ours"] = max(best["ours"], once(ByteTracker, naive=False))
        best["naive"] = max(best["naive"], once(NaiveIouTracker, naive=True))
    return {"tracker_frames_per_s": round(best["ours"]), "baseline_naive_frames_per_s": round(best["naive"]),
            "speedup_vs_naive": round(best["ours"] / best["naive"], 2), "speed_rules": len(rules),
            "speed_objects": 50, "speed_frames": n_frames,
            "speed_repeats": repeats}


# ------------------------------------------------------------------ main


def sv_version() -> str:
    from importlib.metadata import version

    return version("supervision")


def _sources(fake: bool) -> tuple[str, Callable[..., Iterable[SceneRun]]]:
    if not fake:
        # a generator: a run is scored and dropped before the next is built
        from roadsim import iter_runs

        return "roadsim", iter_runs
    from counting_fake import build_runs as fake_runs

    return "fake-scenario", fake_runs


def all_runs(build: Callable[..., Iterable[SceneRun]], quick: bool, seeds: list[int],
             duration: float | None, scenes: list[str] | None = None) -> Iterator[SceneRun]:
    """5 fps with every noise level, then 10 fps with realistic noise; `scenes` (roadsim only) picks some."""
    pick: dict[str, Any] = {} if scenes is None else {"scenes": scenes}
    yield from build(quick=quick, seeds=seeds, fps_list=[5.0], noise_levels=["clean", "realistic", "hard"],
                     duration_s=duration, **pick)
    yield from build(quick=quick, seeds=seeds, fps_list=[10.0], noise_levels=["realistic"], duration_s=duration,
                     **pick)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from smartcity.actors.camera_group import GroupOptions  # only for its default, in the help

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short scenes, one seed (under 5 minutes)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per scene (default 1 quick, 3 full)")
    ap.add_argument("--first-seed", type=int, default=1,
                    help="the seeds are first-seed, first-seed + 1, ... (to split a full run across processes)")
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds analysed per scene (default: roadsim's, 180 quick and 900 full; --fake 300)")
    ap.add_argument("--fake", action="store_true",
                    help="use the stand-in built from bench/scenario.py instead of roadsim (no SUMO)")
    ap.add_argument("--no-peer", action="store_true", help="skip supervision's ByteTrack + LineZone")
    ap.add_argument("--peer-crossing-threshold", type=int, default=1,
                    help="the peer LineZone's minimum_crossing_threshold (library default 1)")
    ap.add_argument("--flush-s", type=float, default=0.0,
                    help="seconds of frame time between count flushes (default 0: after every frame, as replay "
                         f"does; the camera actors flush every {GroupOptions(spool_path='').counts_flush_s:g} s)")
    ap.add_argument("--scenes", default=None,
                    help="comma-separated roadsim scenes (default all); the error columns of disjoint scene sets "
                         "add up weighted by their true totals, so a full run may be split across processes")
    ap.add_argument("--dump", type=Path, default=None, help="write each run's detections log, rules, truth")
    ap.add_argument("--no-speed", action="store_true",
                    help="skip the tracker speed measurement (the parts of a full run split by --scenes need it once)")
    args = ap.parse_args(argv)
    # the peer's library warns about its own deprecations on every frame; the pin is in pyproject
    warnings.filterwarnings("ignore", message="The `ByteTrack` was deprecated")
    warnings.filterwarnings("ignore", message="Arrays of 2-dimensional vectors are deprecated")
    started, cpu_started = time.perf_counter(), time.process_time()
    seeds = list(range(args.first_seed, args.first_seed + (args.seeds or (1 if args.quick else 3))))
    duration = args.duration if args.duration is not None or not args.fake else 300.0
    source, build = _sources(args.fake)
    flush_s = args.flush_s
    scores: list[RunScore] = []
    with tempfile.TemporaryDirectory(prefix="counting-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/counts.db"
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(migrate(url))
            db = Database(url)
            try:
                scenes = None if args.scenes is None else [x for x in args.scenes.split(",") if x]
                if scenes is not None and args.fake:
                    ap.error("--scenes picks roadsim scenes; --fake has one scene")
                if scenes is not None:
                    from roadsim import scene_names

                    unknown = sorted(set(scenes) - set(scene_names()))
                    if unknown or not scenes:
                        ap.error(f"--scenes: unknown {unknown or 'none given'} (known: {', '.join(scene_names())})")
                for run in all_runs(build, args.quick, seeds, duration, scenes):
                    scores.append(score_run(run, db, loop, flush_s, None if args.no_peer else args.peer_crossing_threshold,
                                            args.dump))
                    s = scores[-1]
                    print(f"{s.label} {s.fps:g} fps {s.noise}: {s.frames} frames, true {sum(s.truth.values())}, "
                          f"ours {sum(s.ours.values())}, stored {sum(s.stored.values())}, "
                          f"peer {sum(s.peer.values()) if s.peer is not None else '-'} "
                          f"({s.ours_s:.1f} s + peer {s.peer_s:.1f} s)", flush=True)
            finally:
                loop.run_until_complete(db.dispose())
        finally:
            loop.close()
    print_tables(scores)
    main_runs = [s for s in scores if (s.fps, s.noise) == CONDITIONS[""]]
    ww = sum((s.wrong_way for s in main_runs), EpisodeScore())
    dw = sum((s.dwell for s in main_runs), EpisodeScore())
    lost, extra = storage_gap(scores)
    result: dict[str, Any] = {"bench": "counting", "source": source, "quick": args.quick, "seeds": seeds,
                              "duration_s": sorted({s.duration_s for s in scores})}
    result.update(count_columns(scores, lambda s: s.ours))
    result["count_error_stored"] = _r(count_error(_keyed(main_runs, lambda s: s.stored),
                                                  _keyed(main_runs, lambda s: s.truth)))
    result.update({
        "wrong_way_precision": ww.precision, "wrong_way_recall": ww.recall,
        "dwell_precision": dw.precision, "dwell_recall": dw.recall,
        "episodes": episodes_by_condition(scores),
        "crossings_lost": lost, "crossings_stored_twice": extra,
        "crossings_emitted": sum(sum(s.ours.values()) for s in scores),
        "counts_flush": {"every_s": flush_s, "flush_before": "frame time", "store": "EventWriter -> SQLite",
                         "read": "storage.register.count_series"},
        "truth_crossings_of_uncounted_classes": sum(s.truth_excluded for s in scores),
    })
    if not args.no_peer:
        peer = count_columns(scores, lambda s: s.peer)
        result["peer"] = {"name": f"supervision {sv_version()} ByteTrack (frame_rate = fps, other defaults) + "
                                  f"LineZone (bottom centre, minimum_crossing_threshold "
                                  f"{args.peer_crossing_threshold})",
                          **{k: v for k, v in peer.items() if k != "per_scene"}}
        result["per_scene"] = {k: {"ours": v, "peer": peer["per_scene"].get(k)} for k, v in result["per_scene"].items()}
    if not args.no_speed:
        result.update(tracker_speed(500, repeats=5) if args.quick else tracker_speed(3000, repeats=5))
    result["goals"] = goals(result)
    result["runs"] = {"scenes": sorted({s.scene for s in scores}), "seeds": seeds,
                      "conditions": sorted({f"{s.fps:g}fps/{s.noise}" for s in scores}), "total": len(scores),
                      "frames": sum(s.frames for s in scores)}
    result["wall_s"] = round(time.perf_counter() - started, 1)
    # CPU seconds of this process (SUMO runs in a child process, cached per scene and seed): on a
    # shared machine the wall time mostly says how busy the other processes kept the cores
    result["cpu_s"] = round(time.process_time() - cpu_started, 1)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
