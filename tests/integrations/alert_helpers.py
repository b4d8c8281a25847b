"""Shared helpers of the alerting integration tests: credentials of the loopback Twilio,
an in-loop ASGI server, a configured alerting harness."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from testkit import free_port

from smartcity.core.bus import EventBus
from smartcity.core.clock import Clock
from smartcity.core.events import RuleEvent, Severity
from smartcity.core.incidents import DeliveryRecord
from smartcity.core.supervisor import TaskSupervisor
from smartcity.integrations.alerting import Alerting, AlertingContext, start_alerting
from smartcity.integrations.channel import AuditSink
from smartcity.integrations.config import AlertsConfig
from smartcity.storage.cap_state import CapStateRepo
from smartcity.storage.db import Database
from smartcity.storage.outbox import Outbox

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "loopback-auth-token-0123456789"


ONCALL = "+15550000001"
BACKUP = "+15550000002"


def alerts_config(api: str, callback: str | None, **over: Any) -> AlertsConfig:
    cfg: dict[str, Any] = {
        "twilio": {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "from_number": "+15559999999",
            "api_base_url": api,
            "status_callback_url": callback,
        },
        "policies": [
            {
                "name": "intrusion",
                "min_severity": "high",
                "notify": [{"channel": "sms", "target": ONCALL}],
                "escalation": [{"channel": "sms", "target": BACKUP}],
                "escalate_after_min": 5,
            }
        ],
        "dispatcher": {"poll_s": 0.05, "backoff_initial_s": 0.05, "backoff_max_s": 0.2, "lease_s": 5},
    }
    cfg.update(over)
    return AlertsConfig.model_validate(cfg)


def rule_event(camera: str = "cam-1", track: int = 7, t: float | None = None) -> RuleEvent:
    return RuleEvent(
        camera_id=camera,
        t=t if t is not None else time.time(),
        rule_id="zone-1",
        rule_type="intrusion",
        kind="intrusion",
        object_class="person",
        track_id=track,
        severity=Severity.HIGH,
    )


class Harness:
    def __init__(
        self,
        db: Database,
        cfg: AlertsConfig,
        clock: Clock,
        http_transport: httpx.AsyncBaseTransport | None = None,
        *,
        sites: dict[str, str] | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self.db, self.cfg, self.clock, self.http_transport = db, cfg, clock, http_transport
        self.sites, self.audit = sites or {}, audit
        self.bus = EventBus()
        self.supervisor = TaskSupervisor()
        self.alerting: Alerting | None = None

    async def __aenter__(self) -> Harness:
        self.alerting = await start_alerting(AlertingContext(
                self.bus, Outbox(self.db), self.supervisor, self.clock, self.cfg, self.sites,
                http_transport=self.http_transport, audit=self.audit, dispatch_state=CapStateRepo(self.db),
            ))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.alerting is not None
        await self.alerting.stop()
        await self.supervisor.stop()

    @property
    def a(self) -> Alerting:
        assert self.alerting is not None
        return self.alerting

    async def publish(self, ev: RuleEvent) -> None:
        done = self.a.fusion.expect([ev.event_id])
        await self.bus.publish(ev)
        await asyncio.wait_for(done, 10)

    async def deliveries(self) -> list[DeliveryRecord]:
        return await self.a.outbox.list_deliveries()

    async def wait_state(self, delivery_id: int, state: str, timeout_s: float = 10.0) -> DeliveryRecord:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = await self.a.outbox.list_deliveries_by_id([delivery_id])
            if rows and rows[0].state == state:
                return rows[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"delivery {delivery_id}: {rows[0] if rows else None}, wanted {state}")
            await asyncio.sleep(0.02)




class AsgiServer:
    """Uvicorn serving an app on a free loopback port inside the test's event loop."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"))
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> AsgiServer:
        self.task = asyncio.get_running_loop().create_task(self.server.serve())
        while not self.server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task
