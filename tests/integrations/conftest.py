"""Integration fixtures: a migrated PostgreSQL database per test, the loopback Twilio server,
an ASGI server for the status-callback route."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import uvicorn
from sqlalchemy.engine import make_url
from starlette.applications import Starlette
from twilio_loopback import LoopbackTwilio

from smartcity.storage.db import Database, migrate

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "loopback-auth-token-0123456789"


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AsgiServer:
    """Uvicorn serving an app on a free loopback port inside the test's event loop."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"))
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> AsgiServer:
        self.task = asyncio.get_running_loop().create_task(self.server.serve())
        while not self.server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task
