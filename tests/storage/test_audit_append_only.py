"""The audit log cannot be rewritten, even by SQL that bypasses the application."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from smartcity.storage.db import Database
from smartcity.storage.tables import audit_log


async def test_audit_rows_cannot_be_updated_or_deleted(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(sa.insert(audit_log).values(at=1.0, actor="a", action="x", target="t", before=None, after=None))
    for stmt in (sa.update(audit_log).values(actor="someone else"), sa.delete(audit_log)):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with db.engine.begin() as conn:
                await conn.execute(stmt)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(sa.select(audit_log.c.actor))).scalars().all()
    assert rows == ["a"]
