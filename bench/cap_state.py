"""What keeping the CAP dispatch state in the database (restart-safe confirm/cancel) costs a
dispatch: `bench/emergency.py`'s dispatch (bus -> fusion -> SQLite outbox -> `cap` channel ->
loopback endpoint checking signature and XSD, then a Cancel per incident) for N fire alerts on
N cameras, with the state stored (as the server runs) and, as the baseline of the same run,
kept in memory only (as before). Figures: p95 of the wall time from the event on the bus to
the CAP Alert received, and the documents' validity.

Usage: python bench/cap_state.py [--alerts N]. Last line: JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from emergency import CaseResult, run_dispatch  # noqa: E402

from smartcity.core.events import RuleEvent, Severity  # noqa: E402


def alerts(n: int) -> list[tuple[CaseResult, float]]:
    out = []
    for i in range(n):
        ev = RuleEvent(camera_id=f"cam-{i}", t=time.time(), rule_id=f"fire-{i}", rule_type="fire", kind="fire",
                       severity=Severity.CRITICAL)
        out.append((CaseResult(case=None, alerts=[ev], found=ev, false_alerts=0, seconds=0.0, ms_per_frame=0.0), 0.0))  # type: ignore[arg-type]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=20)
    args = ap.parse_args()
    stored = asyncio.run(run_dispatch(alerts(args.alerts), persist=True))
    memory = asyncio.run(run_dispatch(alerts(args.alerts), persist=False))
    print(
        json.dumps(
            {
                "dispatch_wall_p95_s": stored["dispatch_wall_p95_s"],
                "baseline_in_memory_dispatch_wall_p95_s": memory["dispatch_wall_p95_s"],
                "ratio": round(stored["dispatch_wall_p95_s"] / memory["dispatch_wall_p95_s"], 2)
                if memory["dispatch_wall_p95_s"]
                else None,
                "cap_valid": stored["cap_valid"],
                "cap_documents": stored["cap_documents"],
                "alerts": args.alerts,
                "loadavg": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
