"""A real uvicorn server running the app in the test's event loop, and GraphQL clients over
HTTP (httpx) and WebSocket (graphql-transport-ws with the `websockets` library)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import websockets
from testkit import free_port

from smartcity.app import Server, create_app
from smartcity.cli import uvicorn_config
from smartcity.core.config import load_settings
from smartcity.storage.users import create_user

USERS = {
    # name: (role, groups)
    "admin": ("admin", []),
    "police-op": ("operator", ["police"]),
    "police-viewer": ("viewer", ["police"]),
    "tech-op": ("operator", ["technical"]),
}
PASSWORD = "correct horse battery"
# one TLS context for every client (the servers are plain http on loopback): httpx would load
# the CA bundle again for each of the suite's hundreds of clients
_TLS = ssl.create_default_context()


@contextlib.asynccontextmanager
async def running_server(
    tmp: Path, db_url: str, *, with_ray: bool = False, extra: dict[str, Any] | None = None
) -> AsyncIterator[tuple[str, Server]]:
    port = free_port()
    overrides: dict[str, Any] = {
        # gc_tuning off: its start-up collection would scan the whole test process's heap at
        # every one of the suite's server starts (the server process of `smartcity serve` keeps it)
        "server": {"port": port, "subscription_queue": 8, "gc_tuning": False},
        "database": {"url": db_url},
        "storage": {"data_dir": str(tmp / "data")},
        "camera_groups": [{"name": "police"}, {"name": "technical"}],
        "cameras": [
            {"id": "cam-p", "url": "rtsp://10.9.9.9/p", "group": "police", "enabled": False},
            {"id": "cam-t", "url": "rtsp://10.9.9.9/t", "group": "technical", "enabled": False},
        ],
    }
    for key, value in (extra or {}).items():  # a section given in `extra` adds to ours
        base = overrides.get(key)
        overrides[key] = {**base, **value} if isinstance(base, dict) and isinstance(value, dict) else value
    settings = load_settings(overrides=overrides, environ={})
    app = create_app(settings, with_ray=with_ray)
    server: Server = app.state.server
    uv = uvicorn.Server(uvicorn_config(app, settings, log_level="warning"))  # as `smartcity serve` runs it
    uv.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # pytest keeps its handlers
    task = asyncio.create_task(uv.serve())
    while not uv.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        assert server.db is not None
        for name, (role, groups) in USERS.items():
            await create_user(server.db, name, PASSWORD, role, groups, actor="test")
        yield f"http://127.0.0.1:{port}", server
    finally:
        uv.should_exit = True
        await task


class Client:
    """`local_address`: the loopback address it connects from (127.0.0.2, ...: another client
    for the server); `headers`: sent with every request (e.g. X-Forwarded-For)."""

    def __init__(
        self, base: str, token: str | None = None, *, local_address: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.base = base
        self.token = token
        transport = httpx.AsyncHTTPTransport(local_address=local_address, verify=_TLS) if local_address else None
        self.http = httpx.AsyncClient(base_url=base, timeout=30, transport=transport, headers=headers, verify=_TLS)

    async def close(self) -> None:
        await self.http.aclose()

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        r = await self.http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def login(self, username: str, password: str = PASSWORD) -> str:
        body = await self.gql(
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) "
            "{ __typename ... on LoginSuccess { token } ... on LoginFailed { message retryAfterS } } }",
            u=username,
            p=password,
        )
        res = body["data"]["login"]
        assert res["__typename"] == "LoginSuccess", res
        token: str = res["token"]
        self.token = token
        return token


async def connect_ws(base: str, token: str | None, *, rcvbuf: int | None = None) -> Any:
    """A graphql-transport-ws client; `rcvbuf` shrinks its socket's receive buffer (a client
    that stops reading then pushes back on the server after a few kilobytes)."""
    sock = None
    if rcvbuf is not None:
        host, port = base.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    ws = await websockets.connect(
        base.replace("http", "ws") + "/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        sock=sock,
        max_queue=4,
        compression=None,  # payloads stay their real size on the wire
    )
    payload = {"authorization": f"Bearer {token}"} if token else {}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    return ws


async def subscribe(ws: Any, sub_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
    msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert msg["type"] == "connection_ack", msg
    await ws.send(json.dumps({"id": sub_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}}))


def graphql_subscriptions(server: Server) -> int:
    """How many GraphQL subscriptions the server's bus holds now."""
    return sum(1 for sub in server.bus.subscriptions if sub.name.startswith("graphql:"))


async def until_subscribed(server: Server, count: int, limit_s: float = 30) -> None:
    """Wait until the server holds `count` GraphQL subscriptions. An event published before a
    subscription reaches the bus is not the subscriber's; a fixed 0.3 s sleep lost the first events
    under load, and the read then timed out."""
    deadline = time.monotonic() + limit_s
    while graphql_subscriptions(server) < count:
        assert time.monotonic() < deadline, f"{graphql_subscriptions(server)} of {count} subscriptions after {limit_s} s"
        await asyncio.sleep(0.05)


async def next_message(ws: Any, limit_s: float = 10) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), limit_s))
        if msg["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        return msg


Api = tuple[str, Server, dict[str, Client]]
"""What the `api` fixture (conftest.py) yields: base URL, the server, a client per user."""
