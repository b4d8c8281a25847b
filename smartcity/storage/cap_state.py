"""The `cap_dispatches` table: emergency dispatch state per incident, so that an operator's
confirm or cancel after a server restart still sends the right Update or Cancel to the targets
that got the Alert (implements `core.dispatch_state.DispatchStateStore`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from smartcity.core.dispatch_state import DispatchRecord
from smartcity.storage.db import Database
from smartcity.storage.tables import cap_dispatches

_COLUMNS = ("alert", "event_ids", "targets", "latest", "followed", "active", "waiting", "updated_at")


def _record(r: Any) -> DispatchRecord:
    return DispatchRecord(
        incident_id=r.incident_id,
        alert=r.alert,
        event_ids=tuple(r.event_ids or ()),
        targets=tuple(r.targets or ()),
        latest=r.latest,
        followed=tuple(r.followed or ()),
        active=bool(r.active),
        waiting=tuple(int(i) for i in r.waiting or ()),
        updated_at=float(r.updated_at),
    )


class CapStateRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = pg_insert if db.dialect == "postgresql" else sqlite_insert

    async def save(self, record: DispatchRecord) -> None:
        values = {
            "incident_id": record.incident_id,
            "alert": None if record.alert is None else dict(record.alert),
            "event_ids": list(record.event_ids),
            "targets": sorted(record.targets),
            "latest": None if record.latest is None else dict(record.latest),
            "followed": sorted(record.followed),
            "active": record.active,
            "waiting": sorted(record.waiting),
            "updated_at": record.updated_at,
        }
        stmt = self._insert(cap_dispatches).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["incident_id"], set_={c: stmt.excluded[c] for c in _COLUMNS}
        )
        async with self.db.engine.begin() as conn:
            await conn.execute(stmt)

    async def get(self, incident_id: str) -> DispatchRecord | None:
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(cap_dispatches).where(cap_dispatches.c.incident_id == incident_id))
            ).first()
        return None if row is None else _record(row)

    async def recent(self, limit: int) -> list[DispatchRecord]:
        q = sa.select(cap_dispatches).order_by(cap_dispatches.c.updated_at.desc()).limit(max(0, limit))
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [_record(r) for r in rows]
