"""The GraphQL tests' server: `smartcity`'s app under uvicorn with one logged-in client per user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from api_helpers import USERS, Api, Client, running_server


@pytest.fixture
async def api(tmp_path: Path, storage_url: str) -> AsyncIterator[Api]:
    async with running_server(tmp_path, storage_url) as (base, server):
        clients: dict[str, Client] = {}
        for name in USERS:
            c = Client(base)
            await c.login(name)
            clients[name] = c
        clients["anonymous"] = Client(base)
        try:
            yield base, server, clients
        finally:
            for c in clients.values():
                await c.close()
