"""Fusion's running service: rule events from the bus through the FusionEngine into the
incident store (incident snapshots and planned deliveries in one commit), operator actions on
incidents, and taking back active incidents after a restart.

The thin asyncio shell around the pure engine and policy: it reaches the database only
through the `IncidentStore` interface. While the store is away, fusion keeps consuming and
coalesces what it has to commit (bounded: beyond `max_pending` it stops reading and the bus
pushes back).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence

from smartcity.core.bus import EventBus, Overflow, Subscription
from smartcity.core.clock import Clock
from smartcity.core.errors import SubscriptionClosed
from smartcity.core.events import Incident, IncidentState, RuleEvent
from smartcity.core.incidents import DeliveryRecord, DeliveryState, IncidentRecord, NewDelivery
from smartcity.core.waiters import IdWaiters
from smartcity.fusion.engine import FusionEngine, allowed_from, key_of
from smartcity.fusion.policy import AlertPolicy, PlannedDelivery, plan_deliveries
from smartcity.fusion.store import IncidentStore

log = logging.getLogger(__name__)


# module constants: an enum member looked up per delivery costs more than the rest of the loop
_SUPPRESSED, _PENDING, _SCHEDULED = DeliveryState.SUPPRESSED, DeliveryState.PENDING, DeliveryState.SCHEDULED


def new_delivery(p: PlannedDelivery) -> NewDelivery:
    """The stored form of a planned delivery: suppressed, due now (pending) or an escalation."""
    state = _SUPPRESSED if p.suppressed else (_PENDING if p.step == 0 else _SCHEDULED)
    return NewDelivery(p.incident_id, p.channel, p.target, p.idempotency_key, p.due_at, state, p.suppressed)


class FusionService:
    """Consumes RuleEvents from the bus, fuses them and commits incidents with their deliveries."""

    def __init__(
        self,
        engine: FusionEngine,
        store: IncidentStore,
        bus: EventBus,
        policies: Sequence[AlertPolicy],
        clock: Clock,
        *,
        on_commit: Callable[[], None] = lambda: None,
        batch_size: int = 1000,
        max_pending: int = 100_000,
    ) -> None:
        self.engine = engine
        self.store = store
        self.bus = bus
        self.policies = tuple(policies)
        self.clock = clock
        self.on_commit = on_commit
        self.batch_size = batch_size
        self.max_pending = max_pending
        # only this server's rule events: with several servers, the leader fuses what it pulled
        self.sub: Subscription[RuleEvent] = bus.subscribe(
            "fusion", [RuleEvent], maxsize=10_000, overflow=Overflow.BLOCK, remote=False
        )
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
                for p in plan_deliveries(res.incident, ev.rule_type, self.policies, now):
                    self._deliveries.append(new_delivery(p))

    async def flush(self) -> bool:
        """Commit what is pending; returns False (and keeps it) when the store fails."""
        if not self._snapshots and not self._deliveries:
            self._waiters.done(self._event_ids)
            self._event_ids = []
            return True
        snaps, dels = list(self._snapshots.values()), self._deliveries
        try:
            await self.store.commit(snaps, dels, self.clock.time())
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
        # published before the waiters resolve: a batch is acknowledged to its actor only once
        # its incidents are queued for the other servers too (cluster feed)
        await self.bus.publish_many(snaps)
        self._waiters.done(ids)
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
    """Operator actions on incidents (for the GraphQL layer): audited by the store's transaction."""

    def __init__(self, store: IncidentStore, engine: FusionEngine, bus: EventBus, clock: Clock) -> None:
        self.store = store
        self.engine = engine
        self.bus = bus
        self.clock = clock

    async def _move(self, incident_id: str, to: IncidentState, by: str, comment: str | None) -> IncidentRecord:
        now = self.clock.time()
        record, cancelled = await self.store.transition(incident_id, to, allowed_from(to), by=by, at=now, comment=comment)
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

    async def replay_delivery(self, delivery_id: int) -> DeliveryRecord:
        """Send a dead-lettered (or failed) delivery again."""
        return await self.store.replay(delivery_id, self.clock.time())


async def restore_fusion(engine: FusionEngine, store: IncidentStore, now: float) -> int:
    """Give a fresh fusion engine the incidents it would still extend (after a restart): the
    same person still in the zone then extends the incident instead of alerting again."""
    found = await store.active_incidents_with_sources(now - engine.memory_s)
    for active in found:
        engine.restore(active.incident, [key_of(s.rule_id, s.camera_id, s.track_id, s.object_class) for s in active.sources])
    return len(found)
