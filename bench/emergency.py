"""Emergency bench: fire and smoke detection on real footage, the time from the fire in the clip
to the CAP message at a loopback emergency endpoint, the CAP documents' validity, and (when
bench/emergency_falls.py is present) the fall and person-down figures.

Fire and smoke (bench/emergency_fire.py, see its docstring): the real `fire` and `smoke` rules
with the camera's detector (NanoDet-g by default) on composited and real positives and on an hour
(quick: 11 minutes) of negative camera time; `false_alerts_per_camera_hour`: vtest.avi with every
emergency rule on in one engine (fall, person_down, fire, smoke).

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
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests" / "integrations"))  # the loopback CAP endpoint

from cap_receiver import CapReceiver  # noqa: E402
from emergency_fire import (  # noqa: E402
    Detections,
    combined_vtest,
    data_available,
    make_detector,
    make_pose,
    run_fire,
)

from smartcity.core.bus import EventBus  # noqa: E402
from smartcity.core.clock import SystemClock  # noqa: E402
from smartcity.core.events import RuleEvent  # noqa: E402
from smartcity.core.supervisor import TaskSupervisor  # noqa: E402
from smartcity.integrations.alerting import AlertingContext, start_alerting  # noqa: E402
from smartcity.integrations.config import AlertsConfig  # noqa: E402
from smartcity.storage.audit_repo import AuditRepo  # noqa: E402
from smartcity.storage.cap_state import CapStateRepo  # noqa: E402
from smartcity.storage.db import Database, migrate  # noqa: E402
from smartcity.storage.outbox import Outbox  # noqa: E402

SECRET = "bench-cap-secret-0123456789"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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


async def run_dispatch(found: list[tuple[RuleEvent, float]], *, persist: bool = True) -> dict[str, Any]:
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
                    for event, detect_latency in found:
                        n = len(endpoint.of_type("Alert"))
                        t0 = time.time()
                        await bus.publish(event)
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
        "--quick", action="store_true", help="6 flame and 2 smoke composites, 8 minutes of negatives"
    )
    ap.add_argument(
        "--falls-cache", type=Path, default=None, help="the falls bench's model outputs per clip (its --cache)"
    )
    ap.add_argument("--detector", default="nanodet", choices=["nanodet", "darknet", "none"])
    ap.add_argument("--cache", type=Path, default=None, help="keep the fire bench's detections here")
    args = ap.parse_args(argv)
    result: dict[str, Any] = {"quick": args.quick}
    if not data_available():
        log("../shared/data or vtest.avi absent: fire figures are null")
        result.update(
            fire_recall=None, fire_false_alerts_per_hour=None, time_to_dispatch_p95_s=None, cap_valid=None
        )
        result.update(run_falls_if_present(args.quick, args.falls_cache))
    else:
        cache = args.cache / f"detections-{args.detector}.pkl" if args.cache else None
        detections = Detections(make_detector(args.detector), args.detector, cache)
        fire, found = run_fire(args.quick, detections)
        result.update(fire)
        result.update(asyncio.run(run_dispatch(found)))
        falls = run_falls_if_present(args.quick, args.falls_cache)
        # the falls bench's own vtest figure counts its two rules only: kept under its name
        falls["falls_only_false_alerts_per_camera_hour"] = falls.pop("false_alerts_per_camera_hour", None)
        result.update(falls)
        result.update(combined_vtest(detections, make_pose()))  # every emergency rule in one run
    result["loadavg"] = os.getloadavg()[0]
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
