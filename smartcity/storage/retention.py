"""Retention: deletes events, evidence snapshots and closed incident details older than the
configured number of days (default 30). Anonymous aggregated counts are kept. Each purge is
logged and written to the audit log (actor `retention`).

Open and acknowledged incidents are kept whatever their age: an operator still has to close
them. Evidence files go through the `EvidenceStore`, which only ever deletes inside its folder.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from sqlalchemy import delete, select

from smartcity.core.clock import Clock
from smartcity.storage.db import Database
from smartcity.storage.evidence import EvidenceStore
from smartcity.storage.tables import alert_deliveries, audit_log, cap_dispatches, events, incidents

log = logging.getLogger(__name__)

DAY_S = 86_400.0
CLOSED_STATES = ("resolved", "dismissed")


@dataclass(frozen=True, slots=True)
class RetentionReport:
    cutoff: float
    events: int
    evidence_files: int
    incidents: int
    deliveries: int


async def purge_expired(
    db: Database, *, retention_days: int, now: float, evidence: EvidenceStore | None = None, batch: int = 5000
) -> RetentionReport:
    """Delete what is older than `retention_days` before `now`, in batches; returns the counts."""
    if retention_days < 1:
        raise ValueError("retention_days must be >= 1")
    cutoff = now - retention_days * DAY_S
    n_events = n_files = n_incidents = n_deliveries = 0
    while True:
        async with db.engine.begin() as conn:
            rows = (
                await conn.execute(select(events.c.event_id, events.c.evidence_path).where(events.c.t < cutoff).limit(batch))
            ).all()
            if not rows:
                break
            await conn.execute(delete(events).where(events.c.event_id.in_([r.event_id for r in rows])))
        n_events += len(rows)
        paths = [r.evidence_path for r in rows if r.evidence_path]
        if paths and evidence is not None:
            n_files += await evidence.delete(paths)
    while True:
        async with db.engine.begin() as conn:
            ids = (
                await conn.execute(
                    select(incidents.c.incident_id)
                    .where(incidents.c.last_seen < cutoff, incidents.c.state.in_(CLOSED_STATES))
                    .limit(batch)
                )
            ).scalars().all()
            if not ids:
                break
            n_deliveries += (
                await conn.execute(delete(alert_deliveries).where(alert_deliveries.c.incident_id.in_(ids)))
            ).rowcount or 0
            await conn.execute(delete(cap_dispatches).where(cap_dispatches.c.incident_id.in_(ids)))
            await conn.execute(delete(incidents).where(incidents.c.incident_id.in_(ids)))
        n_incidents += len(ids)
    if evidence is not None:
        n_files += await evidence.sweep(cutoff)
    report = RetentionReport(cutoff, n_events, n_files, n_incidents, n_deliveries)
    if n_events or n_files or n_incidents or n_deliveries:
        async with db.engine.begin() as conn:
            await conn.execute(
                audit_log.insert().values(
                    at=now, actor="retention", action="retention.purge", target="events,evidence,incidents",
                    before=None, after={**asdict(report), "retention_days": retention_days},
                )
            )
        log.info(
            "retention: deleted %d events, %d evidence files, %d incidents and %d alert deliveries older than %d days",
            n_events, n_files, n_incidents, n_deliveries, retention_days,
        )
    return report


async def run_retention(
    db: Database, clock: Clock, *, retention_days: int, evidence: EvidenceStore | None, interval_s: float = 3600.0
) -> None:
    """Purge at start and then every `interval_s` (a supervised task); a failed purge is logged
    and tried again at the next interval."""
    while True:
        try:
            await purge_expired(db, retention_days=retention_days, now=clock.time(), evidence=evidence)
        except Exception as exc:
            log.error("retention: purge failed, will retry in %.0f s: %s: %s", interval_s, type(exc).__name__, exc)
        await clock.sleep(interval_s)
