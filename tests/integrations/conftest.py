"""Integration fixtures: a migrated PostgreSQL database per test and the loopback Twilio server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alert_helpers import ACCOUNT_SID, AUTH_TOKEN
from sqlalchemy.engine import make_url
from twilio_loopback import LoopbackTwilio

from smartcity.storage.db import Database, migrate


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
async def pg_db_url(pg_url: str) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database of this test alone."""
    base = make_url(pg_url)
    name = f"{base.database}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_plain(pg_url), timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = base.set(database=name).render_as_string(hide_password=False)
    await migrate(url)
    try:
        yield url
    finally:
        admin = await asyncpg.connect(_plain(pg_url), timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def pg_db(pg_db_url: str) -> AsyncIterator[Database]:
    db = Database(pg_db_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def twilio_server() -> AsyncIterator[LoopbackTwilio]:
    server = LoopbackTwilio(ACCOUNT_SID, AUTH_TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
