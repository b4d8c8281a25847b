"""Benchmark: rule events -> fusion -> transactional outbox (PostgreSQL) -> dispatcher -> Twilio SDK
-> loopback Messages API.

1. Throughput: N rule events (each opens an incident with one SMS delivery) published the way
   the bridge does (register `fusion.expect(ids)`, publish, await the commit), with the
   dispatcher sending at the same time. incidents_per_s = incidents committed / elapsed.
   Baseline: the same incidents committed one transaction each (no batching).
2. Delivery latency: incidents at a steady low rate; incident commit -> the loopback server
   receiving the SMS. Baseline: a bare SDK `create_async` round trip to the same server.
3. Checks: every incident got exactly one message (lost = incidents without one; duplicates =
   messages created beyond one per delivery).

    python bench/alerts.py --quick         # < 60 s
    python bench/alerts.py --events 20000

PostgreSQL: SMARTCITY_BENCH_PG (default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres);
a database of its own is created and dropped. The last line printed is a JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integrations"))

from twilio.rest import Client  # noqa: E402
from twilio_loopback import LoopbackTwilio  # type: ignore[import-not-found]  # noqa: E402  (tests/integrations, on sys.path above)

from smartcity.core.bus import EventBus  # noqa: E402
from smartcity.core.clock import SystemClock  # noqa: E402
from smartcity.core.events import RuleEvent, Severity  # noqa: E402
from smartcity.core.incidents import NewDelivery  # noqa: E402
from smartcity.core.supervisor import TaskSupervisor  # noqa: E402
from smartcity.fusion.engine import FusionEngine, incident_id_for  # noqa: E402
from smartcity.fusion.policy import plan_deliveries  # noqa: E402
from smartcity.integrations.alerting import Alerting, AlertingContext, start_alerting  # noqa: E402
from smartcity.integrations.config import AlertsConfig  # noqa: E402
from smartcity.storage.db import Database, migrate  # noqa: E402
from smartcity.storage.outbox import Outbox  # noqa: E402

PG = os.environ.get("SMARTCITY_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
SID = "AC" + "1" * 32
TOKEN = "bench-token-0123456789abcdef"


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(_plain(PG), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _cfg(api: str) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "twilio": {"account_sid": SID, "auth_token": TOKEN, "from_number": "+15559999999", "api_base_url": api},
            "policies": [{"name": "all", "notify": [{"channel": "sms", "target": "+15550000001"}]}],
            "rate_limit": {"max_messages": 100_000, "window_s": 60},
            "dispatcher": {"concurrency": 64, "poll_s": 0.5, "lease_s": 60},
        }
    )


def _events(n: int, tag: str) -> list[RuleEvent]:
    t = time.time()
    return [
        RuleEvent(camera_id=f"cam-{i % 50}", t=t, rule_id=f"{tag}-zone", rule_type="intrusion", kind="intrusion",
                  object_class="person", track_id=i, severity=Severity.HIGH)
        for i in range(n)
    ]


async def _throughput(a: Alerting, bus: EventBus, events: list[RuleEvent], chunk: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(events), chunk):
        part = events[i : i + chunk]
        done = a.fusion.expect(e.event_id for e in part)
        await bus.publish_many(part)
        await done
    return time.perf_counter() - t0


async def _baseline_unbatched(db: Database, cfg: AlertsConfig, events: list[RuleEvent]) -> float:
    ob, eng = Outbox(db), FusionEngine(cfg.fusion)
    t0 = time.perf_counter()
    for ev in events:
        now = time.time()
        res = eng.ingest(ev, now)
        dels = [NewDelivery(p.incident_id, p.channel, p.target, "base:" + p.idempotency_key, p.due_at)
                for p in plan_deliveries(res.incident, ev.rule_type, cfg.policies, now)] if res.opened else []
        await ob.commit([res.incident], dels, now)
    return time.perf_counter() - t0


async def _wait_messages(server: LoopbackTwilio, n: int, timeout_s: float) -> None:
    try:
        await server.wait_messages(n, timeout_s)
    except TimeoutError:
        pass  # reported as lost


def _stamp(into: dict[str, float], key: str) -> Any:
    def done(_f: object) -> None:
        into[key] = time.time()

    return done


def _p(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    name = f"smartcity_bench_alerts_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = make_url(PG).set(database=name).render_as_string(hide_password=False)
    server = LoopbackTwilio(SID, TOKEN)
    await server.start()
    db = Database(url, pool_size=10)
    sup = TaskSupervisor()
    bus = EventBus()
    out: dict[str, Any] = {"bench": "alerts", "events": args.events}
    try:
        await migrate(url)
        cfg = _cfg(server.base_url)
        a = await start_alerting(AlertingContext(bus, Outbox(db), sup, SystemClock(), cfg))
        try:
            # 1. throughput (the dispatcher sends meanwhile)
            events = _events(args.events, "tp")
            elapsed = await _throughput(a, bus, events, args.chunk)
            out["incidents_per_s"] = round(args.events / elapsed, 1)
            t_wait = time.monotonic()
            await _wait_messages(server, args.events, 120)
            out["sms_drain_s"] = round(time.monotonic() - t_wait + elapsed, 2)

            # 2. latency at a steady rate
            lat_events = _events(args.latency_events, "lat")
            committed: dict[str, float] = {}
            for ev in lat_events:
                fut = a.fusion.expect([ev.event_id])
                fut.add_done_callback(_stamp(committed, incident_id_for(ev.event_id)[:8]))
                await bus.publish(ev)
                await asyncio.sleep(1.0 / args.rate)
            want = args.events + args.latency_events
            await _wait_messages(server, want, 60)
            lat = []
            for m in server.messages[args.events :]:
                short = m.body.rsplit("Incident ", 1)[-1].strip()
                if short in committed:
                    lat.append((m.at - committed[short]) * 1000)
            out["delivery_p50_ms"] = round(_p(lat, 0.5), 1)
            out["delivery_p95_ms"] = round(_p(lat, 0.95), 1)
            out["latency_samples"] = len(lat)

            # 3. exactly once
            deliveries = await a.outbox.list_deliveries(limit=1_000_000)
            keys = {m.idempotency_key for m in server.messages}
            out["lost"] = sum(1 for d in deliveries if d.idempotency_key not in keys)
            out["duplicates"] = len(server.messages) - len(keys)
            out["deliveries"] = len(deliveries)
        finally:
            await a.stop()
            await sup.stop()

        # baselines
        base_n = max(200, args.events // 5)
        base_elapsed = await _baseline_unbatched(db, cfg, _events(base_n, "base"))
        out["baseline_unbatched_incidents_per_s"] = round(base_n / base_elapsed, 1)
        client = Client(SID, TOKEN, http_client=__import__("twilio.http.async_http_client", fromlist=["x"]).AsyncTwilioHttpClient())
        client.api.base_url = server.base_url
        rtt = []
        for _ in range(100):
            t0 = time.perf_counter()
            await client.messages.create_async(to="+15550000009", from_="+15559999999", body="baseline")
            rtt.append((time.perf_counter() - t0) * 1000)
        await client.http_client.close()
        out["baseline_sdk_roundtrip_p95_ms"] = round(_p(rtt, 0.95), 2)
        out["speedup_vs_unbatched"] = round(out["incidents_per_s"] / out["baseline_unbatched_incidents_per_s"], 2)
        out["goals_met"] = out["incidents_per_s"] >= 2000 and out["delivery_p95_ms"] <= 200 and out["lost"] == 0 and out["duplicates"] == 0
    finally:
        await db.dispose()
        await server.stop()
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="5,000 events, 200 latency samples (< 60 s)")
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--chunk", type=int, default=500, help="events published per bridge chunk")
    p.add_argument("--latency-events", type=int, default=500)
    p.add_argument("--rate", type=float, default=50.0, help="incidents per second in the latency phase")
    a = p.parse_args()
    if a.quick:
        a.events, a.latency_events = 5000, 200
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(asyncio.run(main(a))))
