"""Storage fixtures: one database of its own per test, on SQLite and on PostgreSQL.

On PostgreSQL each test gets a fresh database created next to the run's session database
(CREATE DATABASE costs ~0.1 s), so tests never see each other's rows or schema changes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from smartcity.storage.db import Database, migrate


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
async def storage_url(db_url: str) -> AsyncIterator[str]:
    """A URL to an empty database that belongs to this test alone."""
    if db_url.startswith("sqlite"):
        yield db_url
        return
    session_db = make_url(db_url)
    name = f"{session_db.database}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_plain_dsn(db_url), timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield session_db.set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_plain_dsn(db_url), timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def db(storage_url: str) -> AsyncIterator[Database]:
    """A migrated database of this test's own; disposed after the test."""
    await migrate(storage_url)
    database = Database(storage_url)
    try:
        yield database
    finally:
        await database.dispose()
