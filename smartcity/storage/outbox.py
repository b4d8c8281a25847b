"""The transactional outbox of alerts: incidents and their pending deliveries commit together;
dispatchers claim due deliveries under a lease and record each outcome.

Rows of `alert_deliveries` move through these states:

    scheduled --(due, incident still open)--> pending --> sent --> delivered
        |                                        |  \\-> failed (permanent)  \\-> failed (callback)
        \\--(incident acknowledged/closed)--> cancelled  \\-> dead (webhook: attempts exhausted)
    suppressed: recorded but never sent (quiet hours, rate limit)

`updated_at` is the row's *next due time* while it waits (scheduled, pending: escalation time,
retry backoff, or the end of a dispatcher's lease) and the time of the last change once final.
A claim moves `updated_at` to the end of a lease, so a dispatcher that dies mid-send leaves the
row to be retried once the lease expires (at-least-once); the receiver de-duplicates by
`idempotency_key`, which is unique, so committing the same planned delivery twice inserts one row.

`Outbox` implements the interfaces fusion and the dispatcher read through
(`smartcity.fusion.store.IncidentStore` and `DeliveryOutbox`), with core's typed records.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from smartcity.core.errors import NotFound, ValidationFailed
from smartcity.core.events import Incident, IncidentState, Severity, new_event_id
from smartcity.core.incidents import (
    ActiveIncident,
    Claimed,
    DeliveryRecord,
    DeliveryState,
    EventSource,
    IncidentRecord,
    NewDelivery,
)
from smartcity.storage.db import Database, rows_in
from smartcity.storage.tables import alert_deliveries, audit_log, events, incidents

MAX_PAGE = 10_000


def _delivery(r: Any) -> DeliveryRecord:
    return DeliveryRecord(
        id=int(r.id),
        incident_id=r.incident_id,
        channel=r.channel,
        target=r.target,
        state=DeliveryState(r.state),
        attempts=int(r.attempts),
        last_error=r.last_error,
        idempotency_key=r.idempotency_key,
        created_at=float(r.created_at),
        updated_at=float(r.updated_at),
    )


def incident_record(r: Any) -> IncidentRecord:
    """An `incidents` row as an IncidentRecord."""
    cams = r.camera_ids or []
    inc = Incident(
        event_id=new_event_id(),
        camera_id=cams[0] if cams else "",
        t=float(r.updated_t),
        incident_id=r.incident_id,
        rule_id=r.rule_id,
        kind=r.kind,
        severity=Severity(r.severity),
        state=IncidentState(r.state),
        camera_ids=tuple(cams),
        first_seen=float(r.first_seen),
        last_seen=float(r.last_seen),
        count=int(r.count),
        event_ids=tuple(r.event_ids or ()),
    )
    return IncidentRecord(inc, r.acknowledged_by, r.acknowledged_at, r.resolved_by, r.resolved_at, r.comment)


def _rank(col: Any) -> Any:
    return case((col == IncidentState.OPEN.value, 0), (col == IncidentState.ACKNOWLEDGED.value, 1), else_=2)


class Outbox:
    """Incidents, their alert deliveries and lifecycle moves, in one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = pg_insert if db.dialect == "postgresql" else sqlite_insert

    # ---------------------------------------------------------------- commit

    async def commit(self, snapshots: Sequence[Incident], deliveries: Sequence[NewDelivery], now: float) -> None:
        """Upsert incident snapshots and insert their deliveries in ONE transaction.

        Snapshots follow the writer's rules (a newer `t` wins, the state never moves back);
        a delivery whose idempotency key exists is ignored.
        """
        if not snapshots and not deliveries:
            return
        async with self.db.engine.begin() as conn:
            await self._upsert(conn, snapshots, now)
            if deliveries:
                stmt = self._insert(alert_deliveries).on_conflict_do_nothing(index_elements=["idempotency_key"])
                await conn.execute(
                    stmt,
                    [
                        {
                            "incident_id": d.incident_id,
                            "channel": d.channel,
                            "target": d.target,
                            "state": d.state.value,
                            "attempts": 0,
                            "last_error": d.note,
                            "idempotency_key": d.idempotency_key,
                            "created_at": now,
                            "updated_at": d.due_at,
                        }
                        for d in deliveries
                    ],
                )

    async def _upsert(self, conn: AsyncConnection, snapshots: Sequence[Incident], now: float) -> None:
        latest: dict[str, Incident] = {}
        for s in snapshots:
            prev = latest.get(s.incident_id)
            if prev is None or prev.t <= s.t:
                latest[s.incident_id] = s
        if not latest:
            return
        stmt = self._insert(incidents)
        ex = stmt.excluded
        cols = ("rule_id", "kind", "severity", "camera_ids", "first_seen", "last_seen", "count", "event_ids")
        set_: dict[str, Any] = {c: ex[c] for c in cols}
        set_.update(
            updated_t=ex.updated_t,
            updated_at=ex.updated_at,
            state=case((_rank(ex.state) >= _rank(incidents.c.state), ex.state), else_=incidents.c.state),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["incident_id"], set_=set_, where=incidents.c.updated_t <= ex.updated_t
        )
        await conn.execute(
            stmt,
            [
                {
                    "incident_id": i.incident_id,
                    "rule_id": i.rule_id,
                    "kind": i.kind,
                    "severity": str(i.severity),
                    "state": str(i.state),
                    "camera_ids": list(i.camera_ids),
                    "first_seen": i.first_seen,
                    "last_seen": i.last_seen,
                    "count": i.count,
                    "event_ids": list(i.event_ids),
                    "updated_t": i.t,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in latest.values()
            ],
        )

    # ---------------------------------------------------------------- dispatching

    async def claim(self, now: float, lease_s: float, limit: int = 100) -> list[Claimed]:
        """Take up to `limit` due deliveries (oldest due first) under a lease until now + lease_s.

        Each claim counts one attempt and turns a due `scheduled` row into `pending` (only while
        its incident is still open: escalation stops once anyone acknowledges). Several
        dispatchers may claim concurrently (PostgreSQL: SKIP LOCKED; SQLite serialises writers).
        """
        due = (
            select(alert_deliveries.c.id)
            .where(
                alert_deliveries.c.updated_at <= now,
                or_(
                    alert_deliveries.c.state == DeliveryState.PENDING,
                    and_(
                        alert_deliveries.c.state == DeliveryState.SCHEDULED,
                        select(incidents.c.incident_id)
                        .where(
                            incidents.c.incident_id == alert_deliveries.c.incident_id,
                            incidents.c.state == IncidentState.OPEN.value,
                        )
                        .exists(),
                    ),
                ),
            )
            .order_by(alert_deliveries.c.updated_at)
            .limit(limit)
        )
        if self.db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        stmt = (
            update(alert_deliveries)
            .where(alert_deliveries.c.id.in_(due.scalar_subquery()))
            .values(state=DeliveryState.PENDING, updated_at=now + lease_s, attempts=alert_deliveries.c.attempts + 1)
            .returning(*alert_deliveries.c)
        )
        async with self.db.engine.begin() as conn:
            rows = [_delivery(r) for r in (await conn.execute(stmt)).all()]
            if not rows:
                return []
            ids = {r.incident_id for r in rows}
            found = (await conn.execute(select(incidents).where(incidents.c.incident_id.in_(ids)))).all()
        by_id = {r.incident_id: incident_record(r) for r in found}
        rows.sort(key=lambda r: r.id)
        return [Claimed(r, by_id.get(r.incident_id)) for r in rows]

    async def finish(
        self,
        delivery_id: int,
        state: DeliveryState,
        now: float,
        error: str | None = None,
        *,
        from_states: Collection[DeliveryState] = (DeliveryState.PENDING,),
    ) -> bool:
        """Move a delivery to `state` if it is in one of `from_states`; returns whether it moved."""
        stmt = (
            update(alert_deliveries)
            .where(alert_deliveries.c.id == delivery_id, alert_deliveries.c.state.in_(tuple(from_states)))
            .values(state=state.value, updated_at=now, last_error=error)
        )
        async with self.db.engine.begin() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def retry_at(self, delivery_id: int, due_at: float, error: str) -> None:
        """Leave a pending delivery for another attempt at `due_at`, noting the error."""
        stmt = (
            update(alert_deliveries)
            .where(alert_deliveries.c.id == delivery_id, alert_deliveries.c.state == DeliveryState.PENDING)
            .values(updated_at=due_at, last_error=error)
        )
        async with self.db.engine.begin() as conn:
            await conn.execute(stmt)

    async def escalate_now(self, incident_id: str, now: float) -> DeliveryRecord | None:
        """Make the incident's next scheduled delivery due now (after a permanent failure)."""
        nxt = (
            select(alert_deliveries.c.id)
            .where(alert_deliveries.c.incident_id == incident_id, alert_deliveries.c.state == DeliveryState.SCHEDULED)
            .order_by(alert_deliveries.c.updated_at, alert_deliveries.c.id)
            .limit(1)
        )
        stmt = (
            update(alert_deliveries)
            .where(alert_deliveries.c.id.in_(nxt.scalar_subquery()))
            .values(updated_at=now)
            .returning(*alert_deliveries.c)
        )
        async with self.db.engine.begin() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return _delivery(row) if row is not None else None

    async def replay(self, delivery_id: int, now: float) -> DeliveryRecord:
        """Send a dead or failed delivery again from scratch (attempts reset); returns the row."""
        stmt = (
            update(alert_deliveries)
            .where(alert_deliveries.c.id == delivery_id, alert_deliveries.c.state.in_((DeliveryState.DEAD, DeliveryState.FAILED)))
            .values(state=DeliveryState.PENDING, attempts=0, updated_at=now, last_error=None)
            .returning(*alert_deliveries.c)
        )
        async with self.db.engine.begin() as conn:
            row = (await conn.execute(stmt)).one_or_none()
            if row is None:
                cur = (
                    await conn.execute(select(alert_deliveries.c.state).where(alert_deliveries.c.id == delivery_id))
                ).scalar_one_or_none()
        if row is None:
            if cur is None:
                raise NotFound(f"alert delivery {delivery_id} does not exist")
            raise ValidationFailed(f"state: only dead or failed deliveries can be replayed, this one is {cur}")
        return _delivery(row)

    # ---------------------------------------------------------------- lifecycle

    async def transition(
        self,
        incident_id: str,
        to: IncidentState,
        allowed_from: Collection[IncidentState],
        *,
        by: str,
        at: float,
        comment: str | None = None,
    ) -> tuple[IncidentRecord, int]:
        """Move an incident to `to` if its state is in `allowed_from`, record who, when and why,
        cancel its scheduled (escalation) deliveries and write the audit log, in one transaction.

        Returns the new record and how many deliveries were cancelled. Raises NotFound or
        ValidationFailed (state not allowed), leaving everything unchanged.
        """
        values: dict[str, Any] = {"state": str(to), "updated_at": at}
        values["updated_t"] = func.greatest(incidents.c.updated_t, at) if self.db.dialect == "postgresql" else func.max(
            incidents.c.updated_t, at
        )
        if to is IncidentState.ACKNOWLEDGED:
            values.update(acknowledged_by=by, acknowledged_at=at)
        else:
            values.update(resolved_by=by, resolved_at=at)
        if comment is not None:
            values["comment"] = comment
        allowed = tuple(str(s) for s in allowed_from)
        stmt = (
            update(incidents)
            .where(incidents.c.incident_id == incident_id, incidents.c.state.in_(allowed))
            .values(**values)
            .returning(*incidents.c)
        )
        async with self.db.engine.begin() as conn:
            row = (await conn.execute(stmt)).one_or_none()
            if row is None:
                cur = (
                    await conn.execute(select(incidents.c.state).where(incidents.c.incident_id == incident_id))
                ).scalar_one_or_none()
            else:
                await conn.execute(
                    audit_log.insert().values(
                        at=at,
                        actor=by[:64],
                        action=f"incident.{to.value}",
                        target=f"incident:{incident_id}",
                        before=None,
                        after={"state": to.value, "comment": comment},
                    )
                )
                cancelled = (
                    await conn.execute(
                        update(alert_deliveries)
                        .where(alert_deliveries.c.incident_id == incident_id, alert_deliveries.c.state == DeliveryState.SCHEDULED)
                        .values(state=DeliveryState.CANCELLED, updated_at=at, last_error=f"incident {to.value} by {by}")
                    )
                ).rowcount
        if row is None:
            if cur is None:
                raise NotFound(f"incident {incident_id} does not exist")
            raise ValidationFailed(f"state: cannot move an incident from {cur} to {to.value}")
        return incident_record(row), int(cancelled or 0)

    # ---------------------------------------------------------------- queries

    async def get_incident(self, incident_id: str) -> IncidentRecord:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(select(incidents).where(incidents.c.incident_id == incident_id))).one_or_none()
        if row is None:
            raise NotFound(f"incident {incident_id} does not exist")
        return incident_record(row)

    async def list_incidents(
        self,
        *,
        state: IncidentState | None = None,
        camera_id: str | None = None,
        rule_id: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[IncidentRecord]:
        """Incidents matching every filter (time on last_seen: since inclusive, until exclusive),
        most recently seen first; `limit` capped at 10,000."""
        where: list[ColumnElement[bool]] = []
        if state is not None:
            where.append(incidents.c.state == state.value)
        if rule_id is not None:
            where.append(incidents.c.rule_id == rule_id)
        if kind is not None:
            where.append(incidents.c.kind == kind)
        if since is not None:
            where.append(incidents.c.last_seen >= since)
        if until is not None:
            where.append(incidents.c.last_seen < until)
        if camera_id is not None:
            if self.db.dialect == "postgresql":
                where.append(type_coerce(incidents.c.camera_ids, JSONB).contains([camera_id]))
            else:
                each = func.json_each(incidents.c.camera_ids).table_valued("value")
                where.append(select(literal(1)).select_from(each).where(each.c.value == camera_id).exists())
        stmt = (
            select(incidents)
            .where(and_(*where) if where else literal(True))
            .order_by(incidents.c.last_seen.desc(), incidents.c.incident_id)
            .limit(max(0, min(limit, MAX_PAGE)))
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [incident_record(r) for r in rows]

    async def active_incidents_with_sources(self, since: float) -> list[ActiveIncident]:
        """Open and acknowledged incidents last seen at or after `since`, oldest first, each with
        the sources of its events found in the register: what fusion needs to go on
        de-duplicating them after a restart."""
        active = incidents.c.state.in_([IncidentState.OPEN.value, IncidentState.ACKNOWLEDGED.value])
        stmt = (
            select(incidents)
            .where(active, incidents.c.last_seen >= since)
            .order_by(incidents.c.last_seen, incidents.c.incident_id)
            .limit(MAX_PAGE)
        )
        async with self.db.engine.connect() as conn:
            found = [incident_record(r).incident for r in (await conn.execute(stmt)).all()]
            wanted = sorted({e for inc in found for e in inc.event_ids})
            cols = select(events.c.event_id, events.c.rule_id, events.c.camera_id, events.c.track_id, events.c.object_class)
            sources = {
                r.event_id: EventSource(
                    r.rule_id or "", r.camera_id, int(r.track_id) if r.track_id is not None else None, r.object_class
                )
                for r in await rows_in(conn, cols, events.c.event_id, wanted)
            }
        return [ActiveIncident(inc, tuple(sources[e] for e in inc.event_ids if e in sources)) for inc in found]

    async def list_deliveries_by_id(self, ids: Collection[int]) -> list[DeliveryRecord]:
        async with self.db.engine.connect() as conn:
            rows = (
                await conn.execute(select(alert_deliveries).where(alert_deliveries.c.id.in_(tuple(ids))))
            ).all()
        return [_delivery(r) for r in rows]

    async def list_deliveries(
        self, *, incident_id: str | None = None, state: DeliveryState | None = None, limit: int = 100
    ) -> list[DeliveryRecord]:
        """Deliveries by id; filter by incident and/or state (e.g. DeliveryState.DEAD: the dead letters)."""
        where: list[ColumnElement[bool]] = []
        if incident_id is not None:
            where.append(alert_deliveries.c.incident_id == incident_id)
        if state is not None:
            where.append(alert_deliveries.c.state == state)
        stmt = (
            select(alert_deliveries)
            .where(and_(*where) if where else literal(True))
            .order_by(alert_deliveries.c.id)
            .limit(max(0, min(limit, MAX_PAGE)))
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_delivery(r) for r in rows]
