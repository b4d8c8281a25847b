"""Fire and smoke half of bench/emergency.py: the real `fire` and `smoke` rules (RuleEngine, the
camera's detector masking people and vehicles out of the pixel detector, ByteTracker) at 5
analysed frames per second on

- positives: real flame and smoke footage with alpha masks composited into vtest.avi and the road
  clip at known places and times (from 12 s: the background model settles first; the clips' colour
  is premultiplied by their alpha and is added as it is), and the real
  FURG fire clip house6.mp4 (per-frame flame boxes). A positive is found when its rule alerts with
  a box touching the truth box of the last 3 s; any other alert is false.
- negatives: vtest.avi and the road clip as they are, and hours of negative camera time made of
  them (bench/emergency_scenes.py: looped without a cut, with moving and stopping orange, yellow
  and red vehicles, hazard lights, sodium lamps, beacons, sunsets, wet-road reflections drawn
  in). Every alert there is false.
- held out: flame overlays 4-7, smoke-1 and the odd negative cameras were never run while the
  detector's thresholds were chosen; their figures are reported apart (`*_held_out`).
- peer in the same run: flame colour and persistence only (no background, flicker or motion cue).
- `false_alerts_per_camera_hour`: vtest.avi with every emergency rule on in one engine (fall,
  person_down, fire, smoke; pose model on the detector's people), all alerts false.

    python bench/emergency_fire.py --quick [--cache DIR]   # last line: the JSON figures

Reads ../shared/data; nothing is copied or written (but the detections cache, when asked).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emergency_scenes import NegativeCamera, negative_cameras, play  # noqa: E402

from smartcity.analytics import RuleEngine  # noqa: E402
from smartcity.analytics.classes import ROAD_USERS  # noqa: E402
from smartcity.analytics.fire import DetectorTuning, FireSmokeDetector  # noqa: E402
from smartcity.analytics.spec import RuleSpec  # noqa: E402
from smartcity.core.events import RuleEvent  # noqa: E402
from smartcity.core.vision import Detection, FrameTracks  # noqa: E402
from smartcity.models.install import default_model_dir  # noqa: E402
from smartcity.models.registry import create_detector  # noqa: E402
from smartcity.models.roles import Detector  # noqa: E402
from smartcity.tracking import ByteTracker  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("SMARTCITY_SHARED_DATA", ROOT.parent / "shared" / "data"))
FIRE = DATA / "fire"
VTEST = Path(os.environ.get("SMARTCITY_DEMO_VIDEO", ROOT / "data" / "vtest.avi"))
ROAD = DATA / "traffic" / "ckuhn_traffic.mp4"
Frame = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]  # normalised x1, y1, x2, y2


@dataclass(frozen=True)
class Case:
    name: str
    video: Path
    kind: str  # fire, smoke or none (a negative)
    overlay: str | None = None  # e.g. fire-3 (under fire/overlays)
    place: tuple[float, float] = (0.5, 0.8)  # bottom centre of the overlay, normalised
    width: float = 0.18  # overlay width, share of the frame width
    start_s: float = 12.0  # composited from here (the background model settles in 10 s)...
    end_s: float = 24.0  # ...to here
    duration_s: float = 28.0  # frames read from the video
    loop: bool = True  # the overlay back and forth until end_s (flames); else played once (smoke rises)
    held_out: bool = False  # never run while thresholds were chosen
    # the overlay's colour is premultiplied by its alpha (rendered over black: the flame and smoke clips'
    # thin parts fade to black with their alpha, their brightness in proportion to it), so it is added
    # to the background as it is; blending it once more by alpha draws a thin veil of smoke as a dark
    # shadow with a black rim, and a flame's translucent edges darker than the scene behind them
    premultiplied: bool = True


def data_available() -> bool:
    return FIRE.is_dir() and VTEST.is_file()


def decode(path: Path, fps: float, max_s: float | None = None) -> Iterator[tuple[float, Frame]]:
    """(t, RGB frame) at about `fps` (every k-th decoded frame), from t = 0."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        rate = float(stream.average_rate or 25)
        step = max(1, round(rate / fps))
        for i, frame in enumerate(c.decode(stream)):
            t = i / rate
            if max_s is not None and t > max_s:
                return
            if i % step == 0:
                yield t, frame.to_ndarray(format="rgb24")


def _overlay(name: str, width_px: int) -> list[tuple[Frame, npt.NDArray[np.float32]]]:
    """The overlay's frames scaled (nearest) to `width_px`, each with its alpha in [0, 1]."""
    rgb = [f for _, f in decode(FIRE / "overlays" / f"{name}.webm", 30.0)]
    alpha = [f for _, f in decode(FIRE / "overlays" / f"{name}_alpha.mp4", 30.0)]
    n = min(len(rgb), len(alpha))
    h0, w0 = rgb[0].shape[:2]
    height_px = max(1, round(h0 * width_px / w0))
    ys = (np.arange(height_px) * h0 / height_px).astype(int)
    xs = (np.arange(width_px) * w0 / width_px).astype(int)
    return [(rgb[i][ys][:, xs], alpha[i][ys][:, xs, 0].astype(np.float32) / 255.0) for i in range(n)]


def frames(case: Case, fps: float) -> Iterator[tuple[float, Frame, Box | None]]:
    """The case's frames at `fps` with the truth box (None where no fire or smoke is shown)."""
    if case.name == "house6":
        yield from _house6(fps)
        return
    over: list[tuple[Frame, npt.NDArray[np.float32]]] = []
    for t, img in decode(case.video, fps, case.duration_s):
        h, w = img.shape[:2]
        if case.overlay is None or not (case.start_s <= t < case.end_s):
            yield t, img, None
            continue
        if not over:
            over = _overlay(case.overlay, max(8, round(case.width * w)))
        k = int((t - case.start_s) * 30.0)
        if not case.loop and k >= len(over):
            yield t, img, None
            continue
        period = 2 * len(over) - 2
        k %= max(1, period)
        rgb, a = over[k if k < len(over) else period - k]  # back and forth: the clip is 3 s
        oh, ow = a.shape
        x0 = int(case.place[0] * w - ow / 2)
        y0 = int(case.place[1] * h - oh)
        x0, y0 = max(0, min(w - ow, x0)), max(0, min(h - oh, y0))
        out = img.copy()
        region = out[y0 : y0 + oh, x0 : x0 + ow].astype(np.float32)
        fg = rgb.astype(np.float32) if case.premultiplied else rgb.astype(np.float32) * a[..., None]
        blended = region * (1 - a[..., None]) + fg
        out[y0 : y0 + oh, x0 : x0 + ow] = np.clip(blended, 0, 255).astype(np.uint8)
        ys, xs = np.nonzero(a > 0.3)
        box = (
            ((x0 + xs.min()) / w, (y0 + ys.min()) / h, (x0 + xs.max() + 1) / w, (y0 + ys.max() + 1) / h)
            if len(ys)
            else None
        )
        yield t, out, box


def house6_boxes() -> dict[int, list[tuple[int, int, int, int]]]:
    """Frame number -> flame boxes (x, y, w, h pixels) from house6.xml."""
    text = (FIRE / "house6.xml").read_text()
    out: dict[int, list[tuple[int, int, int, int]]] = {}
    for m in re.finditer(r"<frameNumber>(\d+)</frameNumber>\s*<annotations>(.*?)</annotations>", text, re.S):
        nums = [int(v) for v in re.findall(r"-?\d+", m.group(2))]
        out[int(m.group(1))] = [tuple(nums[i : i + 4]) for i in range(0, len(nums) - 3, 4)]  # type: ignore[misc]
    return out


def _house6(fps: float) -> Iterator[tuple[float, Frame, Box | None]]:
    boxes = house6_boxes()
    for t, img in decode(FIRE / "house6.mp4", fps):
        h, w = img.shape[:2]
        n = round(t * 29.97)
        bs = boxes.get(n) or []
        box = (
            (
                min(b[0] for b in bs) / w,
                min(b[1] for b in bs) / h,
                max(b[0] + b[2] for b in bs) / w,
                max(b[1] + b[3] for b in bs) / h,
            )
            if bs
            else None
        )
        yield t, img, box



def fire_cases(quick: bool) -> list[Case]:
    """Positives: flame overlays at several places of vtest.avi and the road (quick: 6), smoke
    overlays (quick: 2), house6. Overlays 4-7 and smoke-1 are held out."""
    vtest_places = [(0.2, 0.95), (0.5, 0.6), (0.8, 0.9), (0.35, 0.75), (0.65, 0.98), (0.15, 0.6), (0.85, 0.7), (0.5, 0.85)]
    road_places = [(0.3, 0.55), (0.6, 0.8), (0.85, 0.45), (0.15, 0.9), (0.45, 0.35), (0.7, 0.6), (0.25, 0.7), (0.9, 0.95)]
    vtest_fires, road_fires = ((0, 1, 4, 5), (2, 6)) if quick else (range(8), range(8))
    pos = [
        Case(f"fire-{i}.vtest", VTEST, "fire", f"fire-{i}", vtest_places[i], 0.12 + 0.02 * (i % 3), held_out=i >= 4)
        for i in vtest_fires
    ]
    if ROAD.is_file():
        pos += [
            Case(f"fire-{i}.road", ROAD, "fire", f"fire-{i}", road_places[i], 0.16 + 0.03 * (i % 3), held_out=i >= 4)
            for i in road_fires
        ]
    smokes = [(0, VTEST, 3), (1, ROAD, 1)] if quick else [(i, v, p) for i in (0, 1) for v in (VTEST, ROAD) for p in (3, 1)]
    for i, video, p in smokes:
        if video.is_file():
            place = (vtest_places if video == VTEST else road_places)[p]
            scene = "vtest" if video == VTEST else "road"
            pos.append(
                Case(f"smoke-{i}.{scene}.{p}", video, "smoke", f"smoke-{i}", place, 0.3, loop=False, held_out=i == 1)
            )
    pos.append(Case("house6", FIRE / "house6.mp4", "fire", start_s=0.0, end_s=30.0, duration_s=30.0))
    return pos


# ---------------------------------------------------------------------------- running the rules
FPS = 5.0
WINDOW_S = 3.0  # an alert finds a positive shown in the last WINDOW_S seconds


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Detections:
    """The camera detector's output per source frame (video, index), run on every `every`-th
    analysed frame of a stream (the tracker predicts in between, as the pipeline's motion gate
    does) and shared by every stream made of that source (looped negatives: their drawn objects
    are not boxed, the worst case); a positive is its own source (its detector sees the composited
    fire). `path`: a pickle kept between runs (detector named in it)."""

    def __init__(self, detector: Detector | None, name: str, path: Path | None = None, every: int = 2) -> None:
        self.detector, self.name, self.path, self.every = detector, name, path, every
        self.cache: dict[tuple[str, int], list[Detection]] = {}
        self.calls = self.saved = 0
        self.spent = 0.0
        if path is not None and path.is_file():
            with path.open("rb") as fh:
                stored = pickle.load(fh)  # our own cache
            if stored.get("detector") == name:
                self.cache = stored["detections"]

    def get(self, video: Path, index: int, img: Frame, mirror: bool = False) -> list[Detection]:
        key = (video.name, index)
        if key not in self.cache:
            if self.detector is None:
                return []
            src = img[:, ::-1] if mirror else img  # the source frame (drawn objects aside)
            t0 = time.perf_counter()
            self.cache[key] = self.detector.detect([np.ascontiguousarray(src)])[0]
            self.spent += time.perf_counter() - t0
            self.calls += 1
        dets = self.cache[key]
        if not mirror:
            return dets
        w = img.shape[1]
        return [replace(d, box=(w - d.box[2], d.box[1], w - d.box[0], d.box[3])) for d in dets]

    def save(self) -> None:
        if self.path is not None and self.calls > self.saved:
            self.saved = self.calls
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("wb") as fh:
                pickle.dump({"detector": self.name, "detections": self.cache}, fh)


@dataclass
class Stream:
    """One camera's run: its alerts, the truth box of each analysed frame, the peer's alerts."""

    name: str
    kind: str  # fire, smoke or none
    held_out: bool
    alerts: list[RuleEvent]
    truths: list[tuple[float, Box | None]]
    peer_alerts: list[tuple[float, Box]]
    seconds: float
    ms_per_frame: float


Item = tuple[float, Frame, "Box | None", Path, int, bool]  # t, image, truth, source, index, mirrored


def peer_detector() -> FireSmokeDetector:
    """Flame colour and persistence only (no background, no flicker, no motion cue)."""
    tuning = DetectorTuning(
        fire_change_min=0.0, flicker_fraction=0.0, flicker_ratio=0.0, flip_luma_min=0.0, fire_steady=0.0,
        fire_mc_flips=0.0, fire_mixed=0.0, illuminant_time_s=0.0, fire_body=0.0, rigid_max=0.0, banded_row=0.0,
    )
    return FireSmokeDetector(fps=FPS, tuning=tuning, smoke=False)


def run_stream(
    name: str, kind: str, held_out: bool, items: Iterable[Item], detections: Detections,
    *, rules: Sequence[dict[str, Any]] = (), pose: Any = None, peer: bool = True,
) -> Stream:
    """The fire and smoke rules (and `rules`) of one camera over `items`; with `pose`, the people
    get keypoints and the pose model's frame-wide pass adds the people no box covers."""
    specs = [
        RuleSpec(id=k, camera_id=name, type=k, params={"analysis_fps": FPS}) for k in ("fire", "smoke")
    ] + [RuleSpec(camera_id=name, **r) for r in rules]
    engine = RuleEngine(specs, name)
    tracker = ByteTracker()
    base = peer_detector() if peer else None
    alerts: list[RuleEvent] = []
    truths: list[tuple[float, Box | None]] = []
    peer_alerts: list[tuple[float, Box]] = []
    peer_seen, peer_active = -1e9, False
    n, t_last, spent = 0, 0.0, 0.0
    for k, (t, img, truth, video, index, mirror) in enumerate(items):
        h, w = img.shape[:2]
        dets = detections.get(video, index, img, mirror) if k % detections.every == 0 or pose else None
        if dets is not None and pose is not None:
            people = [d for d in dets if d.cls == "person"]
            # as the inference actor does: the boxes' scores decide which of them hide a person found frame-wide
            [found] = pose.pose_and_find([img], [[d.box for d in people]], [[d.score for d in people]])
            dets = [replace(d, keypoints=kp) for d, kp in zip(people, found.keypoints, strict=True)]
            dets += [d for d in detections.get(video, index, img, mirror) if d.cls != "person"]
            dets += list(found.people)
        t0 = time.perf_counter()
        tracks = tuple(tracker.update(dets, t, (w, h)) if dets is not None else tracker.coast(t))
        seen = None if dets is None else tuple(dets)  # the pixel rules mask weak boxes out too
        alerts += engine.update(FrameTracks(name, t, w, h, tracks, seen), image=img)
        spent += time.perf_counter() - t0
        if base is not None:
            boxes = [(tr.box[0] / w, tr.box[1] / h, tr.box[2] / w, tr.box[3] / h) for tr in tracks if tr.cls in ROAD_USERS]
            region = base.update(img, t, boxes).fire
            if region is None:
                peer_active = peer_active and t - peer_seen < 120.0
            else:
                peer_seen = t
                if not peer_active:
                    peer_active = True
                    peer_alerts.append((t, (region.x1, region.y1, region.x2, region.y2)))
        truths.append((t, truth))
        n, t_last = n + 1, t
    return Stream(name, kind, held_out, alerts, truths, peer_alerts, t_last + 1.0 / FPS, 1000.0 * spent / max(1, n))


def touches(box: Sequence[float], truth: Box | None, margin: float = 0.05) -> bool:
    if truth is None:
        return False
    x1, y1, x2, y2 = box
    return x1 <= truth[2] + margin and truth[0] - margin <= x2 and y1 <= truth[3] + margin and truth[1] - margin <= y2


def _hits(truths: Sequence[tuple[float, Box | None]], t: float, box: Sequence[float]) -> bool:
    """`box`, alerted at `t`, touches what the stream showed in the last WINDOW_S seconds."""
    return any(touches(box, b) for tt, b in truths if b is not None and t - WINDOW_S <= tt <= t)


def judge(
    kind: str, truths: Sequence[tuple[float, Box | None]], alerts: Sequence[tuple[str, float, Sequence[float]]]
) -> tuple[int | None, int]:
    """(index of the first of `alerts` (kind, t, box) that found the stream's positive of `kind`, or
    None; how many were false)."""
    found, false = None, 0
    for i, (k, t, box) in enumerate(alerts):
        if k not in ("fire", "smoke"):
            false += 1
            continue
        hit = _hits(truths, t, box)
        if hit and k == kind:
            found = i if found is None else found
        elif not hit:  # a fire alert on the burning base of a smoke overlay is right, not found
            false += 1
    return found, false


def score(s: Stream) -> tuple[RuleEvent | None, int, bool, int]:
    """(the alert that found the positive, false alerts, the peer found it, the peer's false alerts)."""
    found, false = judge(s.kind, s.truths, [(e.kind, e.t, e.payload.get("box", (0, 0, 0, 0))) for e in s.alerts])
    peer_hits = [_hits(s.truths, t, box) for t, box in s.peer_alerts]
    return None if found is None else s.alerts[found], false, any(peer_hits) and s.kind == "fire", peer_hits.count(False)


def positive_items(case: Case) -> Iterator[Item]:
    """The case's frames, each to be shown to the camera's detector as composited: in the street the
    detector sees the fire too, and may box it (a rising fireball as a person, a burning car as a
    car), and the fire rule masks what it boxes. The detections are kept under the case's name."""
    source = Path("composited") / case.name
    for k, (t, img, truth) in enumerate(frames(case, FPS)):
        yield t, img, truth, source, k, False


def negative_items(cam: NegativeCamera, source: list[Frame], video: Path) -> Iterator[Item]:
    for t, i, img in play(cam, source, FPS):
        yield t, img, None, video, i, cam.mirror


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 3) if den else None


def run_fire(quick: bool, detections: Detections) -> tuple[dict[str, Any], list[tuple[RuleEvent, float]]]:
    """The fire and smoke figures (module docstring), and each found alert with its detection latency."""
    streams: list[Stream] = []
    sources = {"vtest": VTEST, "road": ROAD}
    for src, video in sources.items():
        if not video.is_file():
            continue
        frames_at_fps = [f for _, f in decode(video, FPS)]
        plain = NegativeCamera(f"{src}.plain", src, 0, len(frames_at_fps) / FPS / 60.0, False, noise=0.0)
        cams = [plain] + [c for c in negative_cameras(quick) if c.source == src]
        for cam in cams:
            items = negative_items(cam, frames_at_fps, video)
            if cam is plain:
                items = ((t, f, None, video, i, False) for i, (t, f) in enumerate(zip(np.arange(len(frames_at_fps)) / FPS, frames_at_fps)))
            s = run_stream(cam.name, "none", cam.held_out, items, detections)
            streams.append(s)
            detections.save()
            log(f"{cam.name}: {s.seconds:.0f} s, alerts {[(e.kind, round(e.t, 1), e.payload.get('box')) for e in s.alerts]}, peer {len(s.peer_alerts)}, {s.ms_per_frame:.1f} ms/frame")
        del frames_at_fps
    found: list[tuple[RuleEvent, float]] = []
    for case in fire_cases(quick):
        s = run_stream(case.name, case.kind, case.held_out, positive_items(case), detections)
        streams.append(s)
        ev = score(s)[0]
        first = next((t for t, b in s.truths if b is not None), 0.0)
        if ev is not None:
            found.append((ev, ev.t - first))
        log(f"{case.name}: found={ev is not None} alerts {[(e.kind, round(e.t, 1), e.payload.get('box')) for e in s.alerts]}")
    detections.save()
    return figures(streams, found), found


def figures(streams: list[Stream], found: list[tuple[RuleEvent, float]]) -> dict[str, Any]:
    scored = [(s, score(s)) for s in streams]
    out: dict[str, Any] = {}
    for kind in ("fire", "smoke"):
        for label, keep in (("", lambda s: True), ("_held_out", lambda s: s.held_out)):
            pos = [(s, r) for s, r in scored if s.kind == kind and keep(s)]
            out[f"{kind}_recall{label}"] = _ratio(sum(r[0] is not None for _, r in pos), len(pos))
            out[f"{kind}_positives{label}"] = len(pos)
    for label, keep in (("", lambda s: True), ("_held_out", lambda s: s.held_out)):
        neg = [(s, r) for s, r in scored if s.kind == "none" and keep(s)]
        hours = sum(s.seconds for s, _ in neg) / 3600.0
        for kind in ("fire", "smoke"):
            n = sum(e.kind == kind for s, _ in neg for e in s.alerts)
            out[f"{kind}_false_alerts{label}"] = n
            out[f"{kind}_false_alerts_per_hour{label}"] = round(n / hours, 2) if hours else None
        out[f"negative_hours{label}"] = round(hours, 3)
    pos_fire = [(s, r) for s, r in scored if s.kind == "fire"]
    neg = [(s, r) for s, r in scored if s.kind == "none"]
    hours = sum(s.seconds for s, _ in neg) / 3600.0
    out["false_alerts_on_positive_clips"] = sum(r[1] for s, r in scored if s.kind != "none")
    out["false_alerts_by_negative"] = {s.name: [e.kind for e in s.alerts] for s, _ in neg if s.alerts}
    out["missed"] = [s.name for s, r in scored if s.kind != "none" and r[0] is None]
    lat = [t for ev, t in found if ev.kind == "fire"]
    out["fire_detection_latency_s_median"] = round(statistics.median(lat), 2) if lat else None
    lat = [t for ev, t in found if ev.kind == "smoke"]
    out["smoke_detection_latency_s_median"] = round(statistics.median(lat), 2) if lat else None
    out["peer_colour_only_fire_recall"] = _ratio(sum(r[2] for _, r in pos_fire), len(pos_fire))
    out["peer_colour_only_false_alerts_per_hour"] = round(sum(r[3] for _, r in neg) / hours, 2) if hours else None
    out["rules_ms_per_frame"] = round(statistics.mean(s.ms_per_frame for s in streams), 2) if streams else None
    return out


def combined_vtest(detections: Detections, pose: Any) -> dict[str, Any]:
    """vtest.avi with every emergency rule on in one engine: all alerts are false."""
    try:
        from emergency_falls import RULES  # the falls bench's fall and person_down parameters
    except ImportError:
        RULES = [{"id": "fall", "type": "fall"}, {"id": "down", "type": "person_down"}]
    items = ((t, f, None, VTEST, k, False) for k, (t, f) in enumerate(decode(VTEST, FPS)))
    s = run_stream("vtest.all", "none", False, items, detections, rules=RULES, pose=pose, peer=False)
    return {
        "false_alerts_per_camera_hour": round(len(s.alerts) * 3600.0 / s.seconds, 2),
        "combined_vtest_alerts": [(e.kind, round(e.t, 1)) for e in s.alerts],
        "combined_vtest_s": round(s.seconds, 1),
        "combined_rules": ["fire", "smoke", *(r["type"] for r in RULES)],
    }


def make_detector(kind: str) -> Detector | None:
    """The camera's detector: nanodet (the default), darknet (YOLOv3-tiny) or none."""
    if kind == "none":
        return None
    if kind == "darknet":
        from smartcity.models.install import default_model_dir, install_default_model

        install_default_model(default_model_dir())
    return create_detector({"type": kind})


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="6 flame and 2 smoke composites, 8 minutes of negatives")
    ap.add_argument("--detector", default="nanodet", choices=["nanodet", "darknet", "none"])
    ap.add_argument("--cache", type=Path, default=None, help="keep the detections here between runs")
    ap.add_argument("--no-combined", action="store_true", help="skip vtest with every emergency rule (pose model)")
    args = ap.parse_args(argv)
    if not data_available():
        log(f"{FIRE} or {VTEST} absent: fire figures are null")
        result: dict[str, Any] = {"fire_recall": None, "fire_false_alerts_per_hour": None}
        print(json.dumps(result))
        return result
    cache = args.cache / f"detections-{args.detector}.pkl" if args.cache else None
    detections = Detections(make_detector(args.detector), args.detector, cache)
    result, _ = run_fire(args.quick, detections)
    if not args.no_combined:
        result.update(combined_vtest(detections, make_pose()))
    result.update(quick=args.quick, detector=args.detector, fps=FPS, loadavg=os.getloadavg()[0])
    print(json.dumps(result))
    return result


def make_pose() -> Any:
    from smartcity.models.movenet import MoveNetConfig, MoveNetPose
    from smartcity.models.pose_install import install_pose_model

    install_pose_model(default_model_dir())
    return MoveNetPose(MoveNetConfig())


if __name__ == "__main__":
    main()
