"""A server-like process for crash tests: runs alerting (fusion, outbox, dispatcher) on a
database and a Twilio API URL; optionally publishes one rule event and prints COMMITTED once
fusion has committed its incident and deliveries. Killed by the test with SIGKILL."""

from __future__ import annotations

import asyncio
import sys

from smartcity.core.bus import EventBus
from smartcity.core.clock import SystemClock
from smartcity.core.events import RuleEvent, Severity
from smartcity.core.supervisor import TaskSupervisor
from smartcity.integrations.alerting import AlertingContext, start_alerting
from smartcity.integrations.config import AlertsConfig
from smartcity.storage.db import Database
from smartcity.storage.outbox import Outbox


async def main(db_url: str, api: str, account_sid: str, token: str, event_id: str) -> None:
    cfg = AlertsConfig.model_validate(
        {
            "twilio": {"account_sid": account_sid, "auth_token": token, "from_number": "+15559999999", "api_base_url": api},
            "policies": [{"name": "all", "notify": [{"channel": "sms", "target": "+15550000001"}]}],
            "dispatcher": {"poll_s": 0.1, "lease_s": 1.0, "backoff_initial_s": 0.1},
        }
    )
    db = Database(db_url)
    bus = EventBus()
    sup = TaskSupervisor()
    alerting = await start_alerting(AlertingContext(bus, Outbox(db), sup, SystemClock(), cfg))
    if event_id:
        ev = RuleEvent(event_id=event_id, camera_id="cam-1", t=1_700_000_000.0, rule_id="zone-1",
                       rule_type="intrusion", kind="intrusion", track_id=1, severity=Severity.HIGH)
        done = alerting.fusion.expect([ev.event_id])
        await bus.publish(ev)
        await done
        print("COMMITTED", flush=True)
    else:
        print("READY", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
