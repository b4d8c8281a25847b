"""The audit log for the API: append an entry, read pages newest first with filters.

The log is append-only by construction: this repository (like every writer of `audit_log`)
only inserts; nothing in the product updates or deletes its rows, and no API exposes that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from smartcity.storage.db import Database
from smartcity.storage.tables import audit_log

MAX_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: float
    actor: str
    action: str
    target: str
    before: Any
    after: Any


async def append(conn: AsyncConnection, *, at: float, actor: str, action: str, target: str, before: Any, after: Any) -> None:
    """Record an entry inside the caller's transaction (with the change it describes)."""
    await conn.execute(
        sa.insert(audit_log).values(at=at, actor=actor[:64], action=action[:64], target=target, before=before, after=after)
    )


class AuditRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, *, at: float, actor: str, action: str, target: str, before: Any = None, after: Any = None) -> None:
        async with self.db.engine.begin() as conn:
            await append(conn, at=at, actor=actor, action=action, target=target, before=before, after=after)

    async def page(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: float | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditRow]:
        """Newest first; `action` matches exactly or, ending in '.', as a prefix ('rule.');
        `before_id`: the id of the last entry of the previous page."""
        q = sa.select(audit_log)
        if actor is not None:
            q = q.where(audit_log.c.actor == actor)
        if action is not None:
            q = q.where(audit_log.c.action.startswith(action, autoescape=True) if action.endswith(".") else audit_log.c.action == action)
        if target is not None:
            q = q.where(audit_log.c.target == target)
        if since is not None:
            q = q.where(audit_log.c.at >= since)
        if before_id is not None:
            q = q.where(audit_log.c.id < before_id)
        q = q.order_by(audit_log.c.id.desc()).limit(max(0, min(limit, MAX_PAGE)))
        async with self.db.engine.connect() as conn:
            return [AuditRow(int(r.id), float(r.at), r.actor, r.action, r.target, r.before, r.after) for r in await conn.execute(q)]
