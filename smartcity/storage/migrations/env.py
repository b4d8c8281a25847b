"""Alembic environment of smartcity: runs the packaged migrations on a given or a new async connection.

`smartcity.storage.db.migrate()` passes a synchronous facade of its own AsyncConnection in
`config.attributes["connection"]` (already inside a transaction of the running event loop).
Used from the `alembic` command line instead, this module opens its own async engine from
`sqlalchemy.url` and drives it with `asyncio.run`, which is safe there: no loop is running.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from smartcity.storage.tables import metadata

config = context.config


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place: later migrations use batch mode there.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_new_engine(url: str) -> None:
    from smartcity.storage.db import Database

    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_configure_and_run)
    finally:
        await db.dispose()


def _run_offline(url: str) -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    given = config.attributes.get("connection")
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        if not url:
            raise RuntimeError("offline migrations need sqlalchemy.url")
        _run_offline(url)
    elif given is not None:
        _configure_and_run(given)
    else:
        if not url:
            raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
        asyncio.run(_run_on_new_engine(url))


_main()
