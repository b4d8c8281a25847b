"""The real app with the `waste` extension configured (no Ray), signed-in clients and a small city."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from smartcity.app import Server, create_app
from smartcity.core.config import load_settings
from smartcity.extensions.waste import WasteExtension
from smartcity.storage.users import create_user, list_users

PASSWORD = "correct horse battery"
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { ... on LoginSuccess { token } } }"
DEPOT = {"id": "D1", "lat": 48.85, "lon": 2.35}


def city(n: int = 12, **extra: object) -> dict[str, object]:
    """A `waste` config entry: `n` bins on a small grid around one depot, two small trucks, 1 s of PyVRP."""
    bins = [
        {
            "id": f"B{i:02d}",
            "lat": 48.85 + 0.004 * (i % 4 - 1.5),
            "lon": 2.35 + 0.004 * (i // 4 - 1),
            "capacity_l": 1000,
            # half the bins may only be emptied early in the morning
            "access": {"start": "06:00:00", "end": "09:00:00"} if i % 2 else {"start": "06:00:00", "end": "23:00:00"},
            "service_s": 120,
        }
        for i in range(n)
    ]
    entry: dict[str, object] = {
        "type": "waste",
        "bins": bins,
        "depots": [DEPOT],
        "trucks": [
            {"id": "T-res", "depot": "D1", "stream": "residual", "capacity_l": 3000, "count": 2,
             "shift": {"start": "06:00:00", "end": "14:00:00"}},
        ],
        "planner": {"time_limit_s": 1.0},
        "schedule": {"enabled": False, "timezone": "Europe/Paris"},
    }
    entry.update(extra)
    return entry


@contextlib.asynccontextmanager
async def running(db_file: Path, entry: dict[str, object]) -> AsyncIterator[tuple[Server, httpx.AsyncClient, WasteExtension]]:
    """The app on `db_file` (SQLite: a second `running` on the same file is a restart)."""
    settings = load_settings(
        overrides={
            "database": {"url": f"sqlite+aiosqlite:///{db_file}"},
            "storage": {"data_dir": str(db_file.parent / "data")},
            "extensions": [entry],
        },
        environ={},
    )
    app = create_app(settings, with_ray=False)
    server: Server = app.state.server
    async with app.router.lifespan_context(app):
        assert server.db is not None
        if not any(u.username == "chief" for u in await list_users(server.db)):
            await create_user(server.db, "chief", PASSWORD, "operator", [], actor="test")
            await create_user(server.db, "boss", PASSWORD, "admin", [], actor="test")
            await create_user(server.db, "watcher", PASSWORD, "viewer", [], actor="test")
        host = server.extensions
        assert host is not None and host.running == ["waste"], host.failed if host else None
        ext = next(r.extension for r in host._running if r.name == "waste")
        assert isinstance(ext, WasteExtension)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            yield server, client, ext


async def token(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    r = await client.post("/graphql", json={"query": LOGIN, "variables": {"u": username, "p": PASSWORD}})
    return {"authorization": f"Bearer {r.json()['data']['login']['token']}"}


async def gql(client: httpx.AsyncClient, query: str, headers: dict[str, str], variables: dict[str, object] | None = None) -> dict[str, Any]:
    r = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert not body.get("errors"), body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def native(bin_id: str, level: float, t: float, message_id: str) -> dict[str, object]:
    return {"bin_id": bin_id, "level": level, "t": iso(t), "message_id": message_id}
