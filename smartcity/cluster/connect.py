"""How a server of the cluster names itself and opens its own PostgreSQL connections (the
election's lock session, the feed's appender and reader)."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any


def default_server_id() -> str:
    """A server's default name in a cluster: its host name and process id."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{socket.gethostname()}-{os.getpid()}")[:64]


def connector(dsn: str, server_id: str, timeout_s: float = 10.0) -> Callable[[], Awaitable[Any]]:
    """Opens an asyncpg connection to `dsn` (libpq form) named after the server in
    pg_stat_activity, where an administrator sees which server holds the leader lock."""

    async def connect() -> Any:
        import asyncpg

        return await asyncpg.connect(
            dsn, timeout=timeout_s, server_settings={"application_name": f"smartcity:{server_id}"[:63]}
        )

    return connect
