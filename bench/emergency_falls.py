"""Falls and people down on real footage: the fall half of bench/emergency.py (`run_falls`).

Data: the 33 UP-Fall clips of ../shared/data/falls (one subject, camera 1, 640x480; activities 1-5
are falls, 6-11 are not; 11, lying down on purpose, is the positive of person_down) and vtest.avi
(a campus walkway, 795 frames at 10 fps, no fall: every alert there is false).

Each clip goes through what a server camera with the two rules runs, minus Ray: PyAV decodes it
at `--fps`, the default detector (YOLOv3-tiny, `smartcity models install`) finds people, the
`movenet` pose model puts keypoints on their boxes and adds the people its frame-wide pass finds
that no box covers, ByteTracker tracks them, and the RuleEngine runs `fall` (down_s 3) and
`person_down` (down_s 2: the clips are 8 s long and the falls happen 1-4 s in).

Peer in the same run: `box_only`, the same rules on the same tracks with the keypoints removed
(posture from the box's shape alone), and `no_finder`, the same rules without the people the
frame-wide pass adds (the detector's boxes only).

Figures: fall_recall, fall_precision (per clip: a clip with a fall alert is a positive);
person_down_recall (activity 11 and falls 1-5, all of which stay down to the end of the clip);
false_alerts_per_camera_hour on vtest (fall and person_down alerts, all false); pose_ms_per_frame
(the pose model per analysed frame, crops and frame-wide pass, on vtest and UP-Fall) with
detector_ms_per_frame as the baseline of the same run. Rule thresholds are the rules' defaults,
chosen on these same clips (no held-out subject exists here): read the figures as fitted, not as
a generalisation estimate; `--leave-one-out` refits nothing but reports the per-activity results.

Model outputs per clip can be kept with `--cache DIR` (keyed by clip, fps and the models' config),
so that a rule change reruns in seconds; the timings then come from the run that filled the cache.

Usage: python bench/emergency_falls.py [--quick] [--fps F] [--cache DIR] [--activities 1,2] [--trials 1,2]
    [--cached-only] [--detector JSON]
--quick: trial 1 of activities 1-5 and 9-11 (8 clips) and vtest. Last line: JSON.
--cached-only: score the clips whose model outputs are in --cache and list the others in
`not_run`; on a shared machine several runs with --activities/--trials fill one cache in
parallel, and this run scores them together (the timings are those of the filling runs).
--detector: overrides of the detector's config, e.g. '{"runtime": "torch"}': the default engine
differs by machine (onnxruntime on a plain CPU, torch in bfloat16 with AMX, torch in fp16 on a
GPU, the last two on a letterboxed input), and its boxes with it; a rule must not hang on one
engine's rounding. The default's outputs keep their cache key.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import pickle
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartcity.analytics import RuleEngine, RuleSpec, validate_rule  # noqa: E402
from smartcity.core.events import RuleEvent  # noqa: E402
from smartcity.core.vision import Detection, FrameTracks  # noqa: E402
from smartcity.models.install import default_model_dir, install_default_model  # noqa: E402
from smartcity.models.movenet import MoveNetConfig, MoveNetPose, covering, people_from_rows  # noqa: E402
from smartcity.models.pose_install import install_pose_model  # noqa: E402
from smartcity.models.registry import create_detector  # noqa: E402
from smartcity.models.roles import Detector  # noqa: E402
from smartcity.tracking import ByteTracker, TrackerConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# ../shared/data next to the checkout, or where $SMARTCITY_SHARED_DATA says (a git worktree elsewhere)
SHARED_DATA = Path(os.environ.get("SMARTCITY_SHARED_DATA", REPO.parent / "shared" / "data"))
FALLS = SHARED_DATA / "falls" / "upfall-subject1"
VTEST = Path(os.environ.get("SMARTCITY_DEMO_VIDEO", REPO / "data" / "vtest.avi"))
FALL_ACTIVITIES = frozenset({1, 2, 3, 4, 5})
LYING_ACTIVITY = 11
QUICK_SKIPS = frozenset(
    {6, 7, 8}
)  # 45 s of walking, standing, sitting: the easy negatives, and the long clips
RULES: list[dict[str, Any]] = [
    {"id": "fall", "type": "fall", "params": {"down_s": 3.0}},
    {"id": "down", "type": "person_down", "params": {"down_s": 2.0}},
]
ALERT_KINDS = ("fall", "person_down")


@dataclass(frozen=True, slots=True)
class FrameOutput:
    """What the models gave for one analysed frame: the detector's detections (people with the
    keypoints of their crops) and the raw rows of the frame-wide pose pass."""

    t: float
    width: int
    height: int
    detections: tuple[Detection, ...]
    frame_rows: np.ndarray
    detect_s: float
    pose_s: float


@dataclass(frozen=True, slots=True)
class Clip:
    name: str
    path: Path
    activity: int | None  # None: vtest
    max_s: float | None = None


def clips(
    quick: bool, activities: frozenset[int] | None = None, trials: frozenset[int] | None = None
) -> list[Clip]:
    """The UP-Fall clips chosen (quick: trial 1 of all but QUICK_SKIPS), then vtest."""
    out = []
    for path in sorted(FALLS.glob("Activity*/Trial*Cam1.mp4")):
        activity = int(path.parent.name.removeprefix("Activity"))
        trial = int(path.stem.removeprefix("Trial").removesuffix("Cam1"))
        if quick and (trial != 1 or activity in QUICK_SKIPS):
            continue
        if (activities is not None and activity not in activities) or (
            trials is not None and trial not in trials
        ):
            continue
        out.append(Clip(f"{path.parent.name}/{path.stem}", path, activity))
    out.sort(key=lambda c: (c.activity or 0, c.name))
    out.append(Clip("vtest", VTEST, None))
    return out


def frames_at(path: Path, fps: float, max_s: float | None) -> Iterator[tuple[float, np.ndarray]]:
    """RGB frames of a clip, one every 1/fps seconds (by presentation time)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        due = 0.0
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * stream.time_base)
            if max_s is not None and t > max_s:
                break
            if t + 1e-6 < due:
                continue
            due += 1.0 / fps
            yield t, frame.to_ndarray(format="rgb24")


class Models:
    def __init__(self, pose_config: MoveNetConfig, detector: dict[str, Any] | None = None) -> None:
        self.detector: Detector = create_detector({"type": "darknet", **(detector or {})})
        self.pose = MoveNetPose(pose_config)
        # what the cached outputs depend on (find_min_score, cover_score and found_score only filter
        # them later)
        outputs_config = pose_config.model_dump(
            mode="json", exclude={"find_min_score", "cover_score", "found_score"}
        )
        # the default's key predates the --detector option (caches filled before it stay valid)
        detector_key: Any = detector if detector else "darknet-default"
        self.key = hashlib.sha256(
            json.dumps([detector_key, outputs_config], sort_keys=True).encode()
        ).hexdigest()[:12]

    def run(self, t: float, image: np.ndarray) -> FrameOutput:
        t0 = time.perf_counter()
        dets = self.detector.detect([image])[0]
        t1 = time.perf_counter()
        people = [d for d in dets if d.cls == "person"]
        keypoints = self.pose.pose([image], [[d.box for d in people]])[0]
        rows = self.pose.frame_rows(image)
        t2 = time.perf_counter()
        with_kp = [dataclasses.replace(d, keypoints=k) for d, k in zip(people, keypoints)]
        others = [d for d in dets if d.cls != "person"]
        h, w = image.shape[:2]
        return FrameOutput(t, w, h, tuple(with_kp + others), rows, t1 - t0, t2 - t1)


class _CacheUnpickler(pickle.Unpickler):
    """Our cache, whichever script wrote it: this module run as a script pickles its outputs as
    `__main__.FrameOutput`, which bench/emergency.py (importing this module) must read too."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "FrameOutput":
            return FrameOutput
        return super().find_class(module, name)


def cache_file(clip: Clip, models: Models, fps: float, cache: Path) -> Path:
    stem = clip.name.replace("/", "_")
    return cache / f"{stem}-{fps:g}fps-{clip.max_s or 0:g}s-{models.key}.pkl"


def model_outputs(clip: Clip, models: Models, fps: float, cache: Path | None) -> list[FrameOutput]:
    file = None
    if cache is not None:
        file = cache_file(clip, models, fps, cache)
        if file.is_file():
            with file.open("rb") as fh:
                cached: list[FrameOutput] = _CacheUnpickler(fh).load()  # our own cache, written below
            return cached
    out = [models.run(t, image) for t, image in frames_at(clip.path, fps, clip.max_s)]
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        with file.open("wb") as fh:
            pickle.dump(out, fh)
    return out


def run_rules(frames: list[FrameOutput], pose_config: MoveNetConfig, variant: str) -> list[RuleEvent]:
    """Tracker and rules over a clip's model outputs; `variant`: full, box_only or no_finder."""
    specs: list[RuleSpec] = [validate_rule({**r, "camera_id": "cam"}) for r in RULES]
    engine = RuleEngine(specs, "cam")
    tracker = ByteTracker(TrackerConfig())
    events: list[RuleEvent] = []
    for f in frames:
        dets = list(f.detections)
        if variant != "no_finder":  # as MoveNetPose.pose_and_find, given the detector's scores
            people = [d for d in dets if d.cls == "person"]
            boxes = covering([d.box for d in people], [d.score for d in people], pose_config)
            dets.extend(people_from_rows(f.frame_rows, f.width, f.height, boxes, pose_config))
        if variant == "box_only":
            dets = [dataclasses.replace(d, keypoints=()) for d in dets]
        tracks = tracker.update(dets, f.t, (f.width, f.height))
        events.extend(
            e
            for e in engine.update(FrameTracks("cam", f.t, f.width, f.height, tuple(tracks)))
            if e.kind in ALERT_KINDS
        )
    return events


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 3) if den else None


def score(results: dict[str, list[RuleEvent]], clip_list: list[Clip], vtest_s: float) -> dict[str, Any]:
    tp = fp = fn = tn = down_hit = down_pos = 0
    misses: list[str] = []
    false_alarms: list[str] = []
    for clip in clip_list:
        if clip.activity is None:
            continue
        kinds = {e.kind for e in results[clip.name]}
        fell = "fall" in kinds
        if clip.activity in FALL_ACTIVITIES:
            tp += fell
            fn += not fell
            if not fell:
                misses.append(clip.name)
        else:
            fp += fell
            tn += not fell
            if fell:
                false_alarms.append(clip.name)
        if clip.activity in FALL_ACTIVITIES or clip.activity == LYING_ACTIVITY:
            down_pos += 1
            down_hit += "person_down" in kinds
    vtest_alerts = len(results.get("vtest", []))
    return {
        "fall_recall": _ratio(tp, tp + fn),
        "fall_precision": _ratio(tp, tp + fp),
        "person_down_recall": _ratio(down_hit, down_pos),
        "false_alerts_vtest": vtest_alerts,
        "false_alerts_per_camera_hour": round(vtest_alerts * 3600.0 / vtest_s, 2) if vtest_s else None,
        "confusion": {"tp": tp, "fn": fn, "fp": fp, "tn": tn},
        "missed": misses,
        "false_falls": false_alarms,
    }


def run_falls(
    quick: bool,
    *,
    fps: float = 6.0,
    cache: Path | None = None,
    activities: frozenset[int] | None = None,
    trials: frozenset[int] | None = None,
    cached_only: bool = False,
    detector: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The figures of falls and people down (see the module docstring); null figures and a note
    when the footage is absent. Installs the default detector and the pose model if missing."""
    if not FALLS.is_dir() or not VTEST.is_file():
        keys = ("fall_recall", "fall_precision", "person_down_recall", "pose_ms_per_frame")
        return {
            **dict.fromkeys(keys),
            "false_alerts_per_camera_hour": None,
            "falls_note": f"needs {FALLS} and {VTEST}",
        }
    install_default_model(default_model_dir())
    install_pose_model(default_model_dir())
    torch.set_num_threads(1)
    pose_config = MoveNetConfig()
    models = Models(pose_config, detector)
    clip_list = clips(quick, activities, trials)
    not_run: list[str] = []
    if cached_only and cache is not None:  # score what earlier runs (several at once) left in the cache
        not_run = [c.name for c in clip_list if not cache_file(c, models, fps, cache).is_file()]
        clip_list = [c for c in clip_list if c.name not in not_run]
    outputs = {c.name: model_outputs(c, models, fps, cache) for c in clip_list}
    variants = {
        v: {c.name: run_rules(outputs[c.name], pose_config, v) for c in clip_list}
        for v in ("full", "box_only", "no_finder")
    }
    vtest_frames = outputs["vtest"]
    vtest_s = vtest_frames[-1].t - vtest_frames[0].t + 1.0 / fps if vtest_frames else 0.0
    figures = score(variants["full"], clip_list, vtest_s)

    def ms(names: list[str], attr: str) -> float:
        vals = [getattr(f, attr) for n in names for f in outputs[n]]
        return round(1000.0 * float(np.mean(vals)), 1) if vals else 0.0

    upfall = [c.name for c in clip_list if c.activity is not None]
    return {
        **figures,
        "pose_ms_per_frame": ms(upfall + ["vtest"], "pose_s"),
        "pose_ms_per_frame_vtest": ms(["vtest"], "pose_s"),
        "pose_ms_per_frame_upfall": ms(upfall, "pose_s"),
        "detector_ms_per_frame": ms(upfall + ["vtest"], "detect_s"),
        "peers": {
            v: {
                k: s[k] for k in ("fall_recall", "fall_precision", "person_down_recall", "false_alerts_vtest")
            }
            for v in ("box_only", "no_finder")
            for s in [score(variants[v], clip_list, vtest_s)]
        },
        "alerts": {n: [(e.kind, round(e.t, 2)) for e in evs] for n, evs in variants["full"].items() if evs},
        "not_run": not_run,
        "conditions": {
            "clips": len(upfall),
            "fps": fps,
            "vtest_s": round(vtest_s, 1),
            "rules": RULES,
            "detector": "yolov3-tiny (default, score >= 0.25)"
            + (f", {json.dumps(detector, sort_keys=True)}" if detector else ""),
            "pose": pose_config.model_dump(mode="json", exclude={"model"}),
            "threads": 1,
            "cached": cache is not None,
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--fps", type=float, default=6.0)
    ap.add_argument("--cache", type=Path, default=None, help="keep the model outputs per clip here")
    ap.add_argument(
        "--activities", type=_ints, default=None, help="only these UP-Fall activities (e.g. 1,2,11)"
    )
    ap.add_argument("--trials", type=_ints, default=None, help="only these trials (1,2,3)")
    ap.add_argument(
        "--cached-only",
        action="store_true",
        help="score only the clips whose outputs are in --cache (listed in not_run)",
    )
    ap.add_argument(
        "--detector",
        type=json.loads,
        default=None,
        help='detector config overrides as JSON, e.g. \'{"runtime": "torch", "bf16": true}\' (what a CPU with '
        "AMX runs by default; a GPU runs torch in fp16): the rules must not hang on one engine's rounding",
    )
    args = ap.parse_args()
    figures = run_falls(
        args.quick,
        fps=args.fps,
        cache=args.cache,
        activities=args.activities,
        trials=args.trials,
        cached_only=args.cached_only,
        detector=args.detector,
    )
    print(json.dumps(figures))


def _ints(text: str) -> frozenset[int]:
    return frozenset(int(v) for v in text.split(",") if v.strip())


if __name__ == "__main__":
    main()
