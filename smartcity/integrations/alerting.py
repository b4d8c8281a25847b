"""Alerting wiring: the fusion service on the bus, incident lifecycle actions, the dispatcher
and the channel senders, started and stopped together by `start_alerting`.

Flow: RuleEvent (bus) -> FusionEngine -> Outbox.commit(incident snapshots + planned
deliveries, one transaction) -> Incident snapshots published on the bus (writer, GraphQL,
MQTT bridge) -> Dispatcher woken -> senders. While the database is away, fusion keeps
consuming and coalesces what it has to commit (bounded: beyond `max_pending` deliveries it
stops reading and the bus pushes back).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import httpx

from smartcity.core.aio import wait_for
from smartcity.core.bus import EventBus, Overflow, Subscription
from smartcity.core.clock import Clock
from smartcity.core.errors import SubscriptionClosed
from smartcity.core.events import Incident, IncidentState, RuleEvent
from smartcity.core.supervisor import TaskSupervisor
from smartcity.core.waiters import IdWaiters
from smartcity.fusion.engine import _ALLOWED, FusionEngine, key_of
from smartcity.fusion.policy import RateLimiter, plan_deliveries
from smartcity.integrations.config import AlertsConfig
from smartcity.integrations.console import ConsoleSender, ConsoleSink
from smartcity.integrations.dispatcher import Dispatcher, Sender
from smartcity.integrations.mqtt import MqttBridge, MqttLink, MqttSender
from smartcity.integrations.twilio_sms import TwilioSms, TwilioStatusHandler
from smartcity.integrations.webhook import WebhookSender
from smartcity.storage.db import Database
from smartcity.storage.outbox import (
    PENDING,
    SCHEDULED,
    SUPPRESSED,
    DeliveryRow,
    IncidentRecord,
    NewDelivery,
    Outbox,
)

log = logging.getLogger(__name__)


class FusionService:
    """Consumes RuleEvents from the bus, fuses them and commits incidents with their deliveries."""

    def __init__(
        self,
        engine: FusionEngine,
        outbox: Outbox,
        bus: EventBus,
        cfg: AlertsConfig,
        clock: Clock,
        *,
        on_commit: Callable[[], None] = lambda: None,
        batch_size: int = 1000,
        max_pending: int = 100_000,
    ) -> None:
        self.engine = engine
        self.outbox = outbox
        self.bus = bus
        self.cfg = cfg
        self.clock = clock
        self.on_commit = on_commit
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.sub: Subscription[RuleEvent] = bus.subscribe("fusion", [RuleEvent], maxsize=10_000, overflow=Overflow.BLOCK)
        self._snapshots: dict[str, Incident] = {}
        self._deliveries: list[NewDelivery] = []
        self._event_ids: list[str] = []
        self._waiters = IdWaiters()
        self.committed_incidents = 0
        self.committed_events = 0
        self.failures = 0
        self._failing = False

    def expect(self, event_ids: Iterable[str]) -> asyncio.Future[None]:
        """A future resolved once fusion has committed the outcome of these rule events
        (register before publishing; the Ray bridge acknowledges actors after this too)."""
        return self._waiters.expect(event_ids)

    def ingest(self, events: Iterable[RuleEvent]) -> None:
        now = self.clock.time()
        for ev in events:
            res = self.engine.ingest(ev, now)
            self._event_ids.append(ev.event_id)
            prev = self._snapshots.get(res.incident.incident_id)
            if prev is None or prev.t <= res.incident.t:
                self._snapshots[res.incident.incident_id] = res.incident
            if res.opened:
                for p in plan_deliveries(res.incident, ev.rule_type, self.cfg.policies, now):
                    state = SUPPRESSED if p.suppressed else (PENDING if p.step == 0 else SCHEDULED)
                    self._deliveries.append(
                        NewDelivery(p.incident_id, p.channel, p.target, p.idempotency_key, p.due_at, state, p.suppressed)
                    )

    async def flush(self) -> bool:
        """Commit what is pending; returns False (and keeps it) when the database fails."""
        if not self._snapshots and not self._deliveries:
            self._waiters.done(self._event_ids)
            self._event_ids = []
            return True
        snaps, dels = list(self._snapshots.values()), self._deliveries
        try:
            await self.outbox.commit(snaps, dels, self.clock.time())
        except Exception as exc:
            self.failures += 1
            if not self._failing:
                self._failing = True
                log.error("fusion: cannot commit incidents (%d pending), retrying: %s: %s", len(snaps), type(exc).__name__, exc)
            return False
        if self._failing:
            self._failing = False
            log.warning("fusion: incident commits recovered")
        ids = self._event_ids
        self._snapshots, self._deliveries, self._event_ids = {}, [], []
        self.committed_incidents += len(snaps)
        self.committed_events += len(ids)
        if dels:
            self.on_commit()
        self._waiters.done(ids)
        await self.bus.publish_many(snaps)
        return True

    async def run(self) -> None:
        delay = 0.05
        while True:
            backlog = len(self._deliveries) + len(self._snapshots)
            try:
                if backlog == 0:
                    batch = await self.sub.get_batch(self.batch_size)
                elif backlog < self.max_pending:
                    # keep consuming while a failed commit waits for its retry
                    try:
                        async with asyncio.timeout(delay):
                            batch = await self.sub.get_batch(self.batch_size)
                    except TimeoutError:
                        batch = []
                else:
                    await asyncio.sleep(delay)
                    batch = []
            except SubscriptionClosed:
                await self.flush()
                return
            self.ingest(batch)
            delay = 0.05 if await self.flush() else min(delay * 2, 5.0)



class IncidentActions:
    """Operator actions on incidents (for the GraphQL layer): audited by the outbox transaction."""

    def __init__(self, outbox: Outbox, engine: FusionEngine, bus: EventBus, clock: Clock) -> None:
        self.outbox = outbox
        self.engine = engine
        self.bus = bus
        self.clock = clock

    async def _move(self, incident_id: str, to: IncidentState, by: str, comment: str | None) -> IncidentRecord:
        allowed = [s for s, targets in _ALLOWED.items() if to in targets]
        now = self.clock.time()
        record, cancelled = await self.outbox.transition(incident_id, to, allowed, by=by, at=now, comment=comment)
        if cancelled:
            log.info("incident %s %s by %s: %d escalation(s) cancelled", incident_id, to.value, by, cancelled)
        self.engine.apply_state(incident_id, to, now)
        # live subscribers see who acted and why, not only the new state
        await self.bus.publish(
            dataclasses.replace(
                record.incident,
                acknowledged_by=record.acknowledged_by,
                acknowledged_at=record.acknowledged_at,
                resolved_by=record.resolved_by,
                resolved_at=record.resolved_at,
                comment=record.comment,
            )
        )
        return record

    async def acknowledge(self, incident_id: str, *, by: str, comment: str | None = None) -> IncidentRecord:
        """open -> acknowledged; stops escalation at once (scheduled deliveries cancelled)."""
        return await self._move(incident_id, IncidentState.ACKNOWLEDGED, by, comment)

    async def resolve(self, incident_id: str, *, by: str, comment: str | None = None) -> IncidentRecord:
        return await self._move(incident_id, IncidentState.RESOLVED, by, comment)

    async def dismiss(self, incident_id: str, *, by: str, comment: str | None = None) -> IncidentRecord:
        return await self._move(incident_id, IncidentState.DISMISSED, by, comment)

    async def replay_delivery(self, delivery_id: int) -> DeliveryRow:
        """Send a dead-lettered (or failed) delivery again."""
        return await self.outbox.replay(delivery_id, self.clock.time())


@dataclass
class AlertingContext:
    """What alerting needs from the composition root."""

    bus: EventBus
    db: Database
    supervisor: TaskSupervisor
    clock: Clock
    config: AlertsConfig
    sites: Mapping[str, str] = field(default_factory=dict)  # camera id -> site (correlation)
    console_sink: ConsoleSink | None = None
    webhook_transport: httpx.AsyncBaseTransport | None = None


@dataclass
class Alerting:
    """The running alerting subsystem; `stop()` undoes `start_alerting`."""

    engine: FusionEngine
    outbox: Outbox
    fusion: FusionService
    dispatcher: Dispatcher
    actions: IncidentActions
    senders: dict[str, Sender]
    twilio_status: TwilioStatusHandler | None
    mqtt: MqttLink | None
    bridge: MqttBridge | None
    tasks: list[asyncio.Task[None]]
    fusion_task: asyncio.Task[None]

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Let fusion commit what it holds, then stop sending, then close the channels."""
        self.fusion.sub.close("alerting stopping")
        try:
            await wait_for(asyncio.shield(self.fusion_task), timeout_s)
        except TimeoutError:
            log.error("fusion did not commit its backlog within %.1f s", timeout_s)
        except Exception:
            log.exception("fusion failed while stopping")
        self.fusion_task.cancel()
        for task in reversed(self.tasks):
            task.cancel()
        for task in reversed(self.tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("alerting task %s failed while stopping", task.get_name())
        if self.bridge is not None:
            self.bridge.close()
        for s in self.senders.values():
            await s.close()


async def restore_fusion(engine: FusionEngine, outbox: Outbox, now: float) -> int:
    """Give a fresh fusion engine the incidents it would still extend (after a restart): the
    same person still in the zone then extends the incident instead of alerting again."""
    found = await outbox.active_incidents_with_sources(now - engine.memory_s)
    for inc, sources in found:
        engine.restore(inc, [key_of(*src) for src in sources])
    return len(found)


async def start_alerting(ctx: AlertingContext) -> Alerting:
    """Start fusion, the dispatcher, the senders and the MQTT link/bridge under ctx.supervisor."""
    cfg = ctx.config
    engine = FusionEngine(cfg.fusion, ctx.sites)
    outbox = Outbox(ctx.db)
    senders: dict[str, Sender] = {"console": ConsoleSender(ctx.console_sink)}
    if cfg.twilio is not None:
        senders["sms"] = TwilioSms(cfg.twilio)
    if cfg.webhooks:
        senders["webhook"] = WebhookSender(
            cfg.webhooks, ctx.clock, timeout_s=cfg.dispatcher.send_timeout_s, transport=ctx.webhook_transport
        )
    link = bridge = None
    if cfg.mqtt is not None:
        link = MqttLink(cfg.mqtt)
        senders["mqtt"] = MqttSender(link, ctx.clock)
        bridge = MqttBridge(link, ctx.bus)
    restored = await restore_fusion(engine, outbox, ctx.clock.time())
    if restored:
        log.info("fusion resumed %d active incidents from the register", restored)
    dispatcher = Dispatcher(outbox, senders, cfg.dispatcher, ctx.clock, RateLimiter(cfg.rate_limit))
    fusion = FusionService(engine, outbox, ctx.bus, cfg, ctx.clock, on_commit=dispatcher.notify)
    status = (
        TwilioStatusHandler(cfg.twilio, outbox, ctx.clock, on_escalated=dispatcher.notify)
        if cfg.twilio is not None and cfg.twilio.status_callback_url
        else None
    )
    tasks = []
    if link is not None and bridge is not None:
        tasks.append(ctx.supervisor.start("mqtt-link", link.run))
        tasks.append(ctx.supervisor.start("mqtt-bridge", bridge.run))
    tasks.append(ctx.supervisor.start("alert-dispatcher", dispatcher.run, restart=True))
    fusion_task = ctx.supervisor.start("fusion", fusion.run, restart=True)
    actions = IncidentActions(outbox, engine, ctx.bus, ctx.clock)
    return Alerting(engine, outbox, fusion, dispatcher, actions, senders, status, link, bridge, tasks, fusion_task)


