"""Storage fixtures: one database of its own per test, on SQLite and on PostgreSQL.

On PostgreSQL each test gets a fresh database created next to the run's session database
(CREATE DATABASE costs ~0.1 s), so tests never see each other's rows or schema changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from smartcity.storage.db import Database, migrate


@pytest.fixture
async def db(storage_url: str) -> AsyncIterator[Database]:
    """A migrated database of this test's own; disposed after the test."""
    await migrate(storage_url)
    database = Database(storage_url)
    try:
        yield database
    finally:
        await database.dispose()
