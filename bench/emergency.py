"""Emergency bench: fire and smoke detection on real footage, the time from the fire in the clip
to the CAP message at a loopback emergency endpoint, the CAP documents' validity, and (when
bench/emergency_falls.py is present) the fall and person-down figures.

Fire and smoke: the real `fire` and `smoke` rules (RuleEngine) with the camera's detector
(yolov3-tiny, masks people and vehicles out of the pixel detector) and tracker, at 5 analysed
frames per second, on
- positives: real flame and smoke footage with alpha masks composited into vtest.avi at known
  places and times (fire from 12 s to 24 s: the background model settles in the first 10 s),
  and the real FURG fire clip house6.mp4 (flames from its first frame, per-frame boxes);
- negatives: vtest.avi (walkers, parked vans, orange cones) and a real road scene
  (traffic/ckuhn_traffic.mp4). Every alert there is false.
A positive is found when its rule alerts while the fire or smoke is shown (up to the window
after it ends) with a box that touches the truth box; any other alert is false.

Dispatch: each found positive's real RuleEvent goes through the bus, fusion, the SQLite outbox
and the `cap` channel (immediate policy) to a loopback HTTP endpoint checking the HMAC
signature; time_to_dispatch = (alert time - fire start, in the clip) + (wall time from the event
on the bus to the CAP document received). Then each incident is dismissed (a CAP Cancel).
cap_valid: share of received CAP documents valid against the OASIS CAP 1.2 XSD.

    python bench/emergency.py --quick     # last line: the JSON figures
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests" / "integrations"))  # the loopback CAP endpoint

from cap_receiver import CapReceiver  # noqa: E402
from emergency_fire import Box, Case, data_available, fire_cases, frames  # noqa: E402

from smartcity.analytics import RuleEngine  # noqa: E402
from smartcity.analytics.fire import DetectorTuning, FireSmokeDetector  # noqa: E402
from smartcity.analytics.spec import RuleSpec  # noqa: E402
from smartcity.core.bus import EventBus  # noqa: E402
from smartcity.core.clock import SystemClock  # noqa: E402
from smartcity.core.events import RuleEvent  # noqa: E402
from smartcity.core.supervisor import TaskSupervisor  # noqa: E402
from smartcity.core.vision import Detection, FrameTracks  # noqa: E402
from smartcity.integrations.alerting import AlertingContext, start_alerting  # noqa: E402
from smartcity.integrations.config import AlertsConfig  # noqa: E402
from smartcity.models.base import Detector  # noqa: E402
from smartcity.storage.audit_repo import AuditRepo  # noqa: E402
from smartcity.storage.cap_state import CapStateRepo  # noqa: E402
from smartcity.storage.db import Database, migrate  # noqa: E402
from smartcity.storage.outbox import Outbox  # noqa: E402
from smartcity.tracking import ByteTracker  # noqa: E402

FPS = 5.0
SECRET = "bench-cap-secret-0123456789"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class CaseResult:
    case: Case
    alerts: list[RuleEvent]
    found: RuleEvent | None  # the alert that found the positive
    false_alerts: int
    seconds: float  # footage analysed
    ms_per_frame: float


def _touches(box: list[float], truth: Box | None, margin: float = 0.05) -> bool:
    if truth is None:
        return False
    x1, y1, x2, y2 = box
    return (
        x1 <= truth[2] + margin
        and truth[0] - margin <= x2
        and y1 <= truth[3] + margin
        and truth[1] - margin <= y2
    )


class Detections:
    """The camera detector's output, run on every `every`-th analysed frame of each video
    (the tracker predicts in between, as the pipeline's motion gate does) and reused by the
    composites of the same video (their overlays hold no person or vehicle)."""

    def __init__(self, detector: Detector | None, every: int = 2) -> None:
        self.detector = detector
        self.every = every
        self.cache: dict[tuple[str, int], list[Detection] | None] = {}

    def get(self, video: Path, k: int, img: Any) -> list[Detection] | None:
        if self.detector is None:
            return []
        key = (str(video), k)
        if key not in self.cache:
            self.cache[key] = self.detector.detect([img])[0] if k % self.every == 0 else None
        return self.cache[key]


def run_case(case: Case, detections: Detections) -> CaseResult:
    specs = [
        RuleSpec(id=f"{kind}-{case.name}", camera_id=case.name, type=kind, params={"analysis_fps": FPS})
        for kind in ("fire", "smoke")
    ]
    engine = RuleEngine(specs, case.name)
    tracker = ByteTracker()
    alerts: list[RuleEvent] = []
    truths: dict[float, Box | None] = {}
    n, t_last, spent = 0, 0.0, 0.0
    for k, (t, img, truth) in enumerate(frames(case, FPS)):
        h, w = img.shape[:2]
        dets = detections.get(case.video, k, img)
        t0 = time.perf_counter()
        tracks = tuple(tracker.update(dets, t, (w, h)) if dets is not None else tracker.coast(t))
        alerts += engine.update(
            FrameTracks(camera_id=case.name, t=t, width=w, height=h, tracks=tracks), image=img
        )
        spent += time.perf_counter() - t0
        truths[t] = truth
        n, t_last = n + 1, t
    found = None
    false = 0
    window = 3.0
    for ev in alerts:
        box = ev.payload.get("box", [0, 0, 0, 0])
        shown = [
            tb
            for tt, tb in truths.items()
            if case.start_s <= tt <= min(ev.t, case.end_s + window) and tt >= ev.t - window
        ]
        touches = case.kind != "none" and any(_touches(box, tb) for tb in shown)
        if touches and ev.kind == case.kind:
            found = found or ev
        elif not touches:  # a fire alert on the burning base of a smoke overlay is right, not found
            false += 1
    return CaseResult(case, alerts, found, false, t_last + 1.0 / FPS, 1000.0 * spent / max(1, n))


def baseline_case(case: Case, detections: Detections) -> tuple[bool, int]:
    """The peer: flame colour and persistence only (no background, no flicker), same masking;
    (found, false alerts) with the rule's episode logic (one alert, re-armed after 120 s)."""
    tuning = DetectorTuning(fire_change_min=0.0, flicker_fraction=0.0, flicker_ratio=0.0, flip_luma_min=0.0)
    det = FireSmokeDetector(fps=FPS, tuning=tuning, smoke=False)
    tracker = ByteTracker()
    found, false, last_seen, active = False, 0, -1e9, False
    for k, (t, img, truth) in enumerate(frames(case, FPS)):
        h, w = img.shape[:2]
        dets = detections.get(case.video, k, img)
        tracks = tracker.update(dets, t, (w, h)) if dets is not None else tracker.coast(t)
        boxes = [(tr.box[0] / w, tr.box[1] / h, tr.box[2] / w, tr.box[3] / h) for tr in tracks]
        region = det.update(img, t, boxes).fire
        if region is None:
            active = active and t - last_seen < 120.0
            continue
        last_seen = t
        if not active:
            active = True
            box = [region.x1, region.y1, region.x2, region.y2]
            if case.kind != "none" and case.start_s <= t <= case.end_s + 3.0 and _touches(box, truth):
                found = True
            else:
                false += 1
    return found, false


def run_fire(quick: bool, detector: Detector | None) -> tuple[dict[str, Any], list[tuple[CaseResult, float]]]:
    pos, neg = fire_cases(quick)
    results = []
    detections = Detections(detector)
    for case in neg + pos:  # vtest's detections first, reused by its composites
        r = run_case(case, detections)
        log(
            f"{case.name}: {len(r.alerts)} alert(s) {[(e.kind, round(e.t, 1), e.payload.get('box')) for e in r.alerts]}, "
            f"found={r.found is not None}, false={r.false_alerts}, {r.ms_per_frame:.1f} ms/frame"
        )
        results.append(r)
    base = {
        r.case.name: baseline_case(r.case, detections) for r in results if r.case.kind in ("fire", "none")
    }
    log(f"baseline (colour + persistence): {base}")
    fires = [r for r in results if r.case.kind == "fire"]
    smokes = [r for r in results if r.case.kind == "smoke"]
    negatives = [r for r in results if r.case.kind == "none"]
    neg_hours = sum(r.seconds for r in negatives) / 3600.0
    neg_false = sum(r.false_alerts for r in negatives)
    found = [(r, (r.found.t - r.case.start_s)) for r in results if r.found is not None]
    latencies = [lat for r, lat in found if r.case.kind == "fire"]
    out = {
        "fire_recall": round(sum(r.found is not None for r in fires) / max(1, len(fires)), 3),
        "fire_positives": len(fires),
        "smoke_recall": round(sum(r.found is not None for r in smokes) / max(1, len(smokes)), 3),
        "smoke_positives": len(smokes),
        "fire_false_alerts": neg_false,
        "fire_negative_hours": round(neg_hours, 4),
        "fire_false_alerts_per_hour": round(neg_false / neg_hours, 2) if neg_hours else None,
        "false_alerts_on_positive_clips": sum(r.false_alerts for r in fires + smokes),
        "fire_detection_latency_s_median": round(statistics.median(latencies), 2) if latencies else None,
        "baseline_colour_only_fire_recall": round(
            sum(base[r.case.name][0] for r in fires) / max(1, len(fires)), 3
        ),
        "baseline_colour_only_false_alerts_per_hour": round(
            sum(base[r.case.name][1] for r in negatives) / neg_hours, 2
        )
        if neg_hours
        else None,
        "rules_ms_per_frame": round(
            statistics.mean(r.ms_per_frame for r in results), 2
        ),  # fire + smoke rules, tracker
        "detector": "yolov3-tiny (masks people and vehicles)" if detector is not None else "none",
    }
    return out, found


def _alerts_config(url: str) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "dispatch": {
                "sender": "bench@city.example",
                "public_url": "http://127.0.0.1:8000",
                "feed_token": "bench-feed-token-0123456789",
                "endpoints": [{"name": "sdis", "url": url, "secret": SECRET}],
                "default_policy": {"mode": "immediate"},
            },
            "policies": [
                {
                    "name": "emergency",
                    "kinds": ["fire", "smoke", "fall", "person_down"],
                    "notify": [{"channel": "cap", "target": "sdis"}],
                }
            ],
            "dispatcher": {"poll_s": 0.2},
        }
    )


async def run_dispatch(found: list[tuple[CaseResult, float]], *, persist: bool = True) -> dict[str, Any]:
    """Each found alert through fusion, the outbox and the cap channel to a loopback endpoint
    (`persist`: with the dispatch state kept in the database, as the server runs it)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await migrate(url)
        db = Database(url)
        bus, sup = EventBus(), TaskSupervisor()
        totals: list[float] = []
        wall: list[float] = []
        try:
            async with CapReceiver(SECRET) as endpoint:
                alerting = await start_alerting(
                    AlertingContext(
                        bus, Outbox(db), sup, SystemClock(), _alerts_config(endpoint.url), audit=AuditRepo(db),
                        dispatch_state=CapStateRepo(db) if persist else None,
                    )
                )
                try:
                    for r, detect_latency in found:
                        assert r.found is not None
                        n = len(endpoint.of_type("Alert"))
                        t0 = time.time()
                        await bus.publish(r.found)
                        [*_, got] = await endpoint.wait("Alert", n + 1, timeout_s=30)
                        wall.append(got.at - t0)
                        totals.append(detect_latency + (got.at - t0))
                    rows = (
                        await alerting.outbox.list_incidents()
                        if hasattr(alerting.outbox, "list_incidents")
                        else []
                    )
                    for rec in rows:
                        await alerting.actions.dismiss(rec.incident.incident_id, by="bench", comment="bench")
                    if rows:
                        await endpoint.wait("Cancel", len(rows), timeout_s=30)
                finally:
                    await alerting.stop()
                docs = endpoint.received
        finally:
            await sup.stop()
            await db.dispose()
    valid = sum(d.schema_error is None and d.signed for d in docs)
    return {
        "time_to_dispatch_p95_s": round(_p95(totals), 2) if totals else None,
        "dispatch_wall_p95_s": round(_p95(wall), 3) if wall else None,
        "cap_documents": len(docs),
        "cap_valid": round(valid / len(docs), 3) if docs else None,
    }


def _p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def run_falls_if_present(quick: bool, cache: Path | None = None) -> dict[str, Any]:
    keys = (
        "fall_recall",
        "fall_precision",
        "person_down_recall",
        "pose_ms_per_frame",
        "false_alerts_per_camera_hour",
    )
    try:
        from emergency_falls import run_falls  # bench/emergency_falls.py (the falls bench)
    except ImportError as exc:
        log(f"falls: bench/emergency_falls.py not importable ({exc}): fall figures are null")
        return {**dict.fromkeys(keys), "falls_note": "bench/emergency_falls.py absent: not measured"}
    res: dict[str, Any] = run_falls(quick, cache=cache)
    return res


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick", action="store_true", help="4 flame and 1 smoke composites (about 3 minutes here)"
    )
    ap.add_argument(
        "--no-detector", action="store_true", help="no yolov3-tiny: nothing masks people and vehicles"
    )
    ap.add_argument(
        "--falls-cache", type=Path, default=None, help="the falls bench's model outputs per clip (its --cache)"
    )
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"quick": args.quick}
    if not data_available():
        log("../shared/data or vtest.avi absent: fire figures are null")
        result.update(
            fire_recall=None, fire_false_alerts_per_hour=None, time_to_dispatch_p95_s=None, cap_valid=None
        )
    else:
        detector = None
        if not args.no_detector:
            from smartcity.models.install import default_model_dir, install_default_model
            from smartcity.models.registry import create_detector

            install_default_model(default_model_dir())
            detector = create_detector({"type": "darknet", "device": "cpu", "num_threads": 1})
        fire, found = run_fire(args.quick, detector)
        result.update(fire)
        result.update(asyncio.run(run_dispatch(found)))
    result.update(run_falls_if_present(args.quick, args.falls_cache))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
