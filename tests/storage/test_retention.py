"""Retention: old events, evidence and closed incidents go, counts and open incidents stay, the purge is audited."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from smartcity.core.events import CountBucket, Incident, IncidentState, RuleEvent, Severity
from smartcity.storage.db import Database
from smartcity.storage.evidence import EvidenceStore
from smartcity.storage.outbox import NewDelivery, Outbox
from smartcity.storage.retention import DAY_S, purge_expired
from smartcity.storage.tables import alert_deliveries, audit_log, counts, events, incidents
from smartcity.storage.writer import EventWriter

NOW = time.time()


def _ev(age_days: float, evidence: str | None) -> RuleEvent:
    return RuleEvent(camera_id="c", t=NOW - age_days * DAY_S, rule_id="r", rule_type="zone", kind="k", evidence_path=evidence)


def _inc(iid: str, age_days: float, state: IncidentState) -> Incident:
    t = NOW - age_days * DAY_S
    return Incident(camera_id="c", t=t, incident_id=iid, rule_id="r", kind="k", severity=Severity.LOW, state=state,
                    first_seen=t, last_seen=t)


async def _count(db: Database, table: object) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_purge_deletes_only_what_is_older_than_the_retention(db: Database, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "old.jpg").write_bytes(b"x")
    (evidence / "new.jpg").write_bytes(b"y")
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"z")
    orphan = evidence / "orphan.jpg"
    orphan.write_bytes(b"o")
    os.utime(orphan, (NOW - 40 * DAY_S, NOW - 40 * DAY_S))
    old, new = _ev(31, "old.jpg"), _ev(29, "new.jpg")
    sneaky = _ev(40, str(outside))
    bucket = CountBucket(camera_id="c", t=NOW - 90 * DAY_S, rule_id="r", object_class="car", direction="in",
                         bucket_start=NOW - 90 * DAY_S, bucket_s=3600, n=12)
    await EventWriter(db).write([old, new, sneaky, bucket])
    outbox = Outbox(db)
    await outbox.commit(
        [_inc("closed-old", 31, IncidentState.RESOLVED), _inc("open-old", 31, IncidentState.OPEN),
         _inc("closed-new", 1, IncidentState.DISMISSED)],
        [NewDelivery("closed-old", "sms", "+1", "k1", NOW), NewDelivery("closed-new", "sms", "+1", "k2", NOW)],
        NOW - 31 * DAY_S,
    )
    store = EvidenceStore(evidence, db)
    report = await purge_expired(db, retention_days=30, now=NOW, evidence=store, batch=1)
    assert (report.events, report.incidents, report.deliveries, report.evidence_files) == (2, 1, 1, 2)
    async with db.engine.connect() as conn:
        left = set((await conn.execute(select(events.c.event_id))).scalars())
        inc_left = set((await conn.execute(select(incidents.c.incident_id))).scalars())
        keys = set((await conn.execute(select(alert_deliveries.c.idempotency_key))).scalars())
        audit = (await conn.execute(select(audit_log))).mappings().all()
    assert left == {new.event_id}
    assert inc_left == {"open-old", "closed-new"}
    assert keys == {"k2"}
    assert await _count(db, counts) == 1  # anonymous counts are kept
    assert not (evidence / "old.jpg").exists() and (evidence / "new.jpg").exists() and not orphan.exists()
    assert outside.exists()  # never deletes outside the evidence directory
    assert len(audit) == 1 and audit[0]["actor"] == "retention" and audit[0]["after"]["events"] == 2
    again = await purge_expired(db, retention_days=30, now=NOW, evidence=store)
    assert (again.events, again.incidents, again.evidence_files) == (0, 0, 0)
    assert await _count(db, audit_log) == 1  # nothing deleted, nothing logged


async def test_retention_days_must_be_positive(db: Database) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        await purge_expired(db, retention_days=0, now=NOW)
