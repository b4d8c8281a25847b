"""Extensions in the real app (no Ray): the example extension counts published rule events,
writes its own table, pushes signal states through the video control, answers in GraphQL and
over HTTP under /ext/example/; a failing one and one with a missing dependency are left out
while the server runs; everything stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from example_extension import Example, seen
from failing_extensions import Clash, Failing
from testkit import RecordingVideo

from smartcity.app import Server, create_app
from smartcity.core.config import load_settings
from smartcity.core.events import RuleEvent
from smartcity.core.video import SignalPush, SignalState
from smartcity.extensions.registry import discover
from smartcity.storage.users import create_user

PASSWORD = "correct horse battery"
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { ... on LoginSuccess { token } } }"


@contextlib.asynccontextmanager
async def running(tmp_path: Path, extensions: list[dict[str, object]]) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    settings = load_settings(
        overrides={
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/db.sqlite"},
            "storage": {"data_dir": str(tmp_path / "data")},
            "extensions": extensions,
        },
        environ={},
    )
    app = create_app(settings, with_ray=False)
    server: Server = app.state.server
    server.video = RecordingVideo()
    async with app.router.lifespan_context(app):
        assert server.db is not None
        await create_user(server.db, "chief", PASSWORD, "admin", [], actor="test")
        await create_user(server.db, "watcher", PASSWORD, "viewer", [], actor="test")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            yield server, client


async def token(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    r = await client.post("/graphql", json={"query": LOGIN, "variables": {"u": username, "p": PASSWORD}})
    return {"authorization": f"Bearer {r.json()['data']['login']['token']}"}


async def gql(client: httpx.AsyncClient, query: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = await client.post("/graphql", json={"query": query}, headers=headers or {})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_example_extension_end_to_end(tmp_path: Path) -> None:
    discover("ext_fixture_pkg")  # finds needs_missing, whose dependency is not installed
    Example.instances.clear()
    Failing.instances.clear()
    Clash.instances.clear()
    config: list[dict[str, object]] = [
        {"type": "failing"},
        {"type": "example", "signal_rule": "red-7"},
        {"type": "needs_missing"},
        {"type": "clash"},
    ]
    async with running(tmp_path, config) as (server, client):
        host = server.extensions
        assert host is not None
        assert host.running == ["example"]
        assert host.failed["failing"] == "RuntimeError: the outside system is not there"
        assert "'smartcity_test_no_such_dependency'" in host.failed["needs_missing"]
        assert "Query.me" in host.failed["clash"]
        health = await server.health()
        assert health["status"] == "healthy"
        assert health["extensions"]["running"] == ["example"]
        assert sorted(health["extensions"]["failed"]) == ["clash", "failing", "needs_missing"]
        # the failing one's subscription was undone; the example's is live
        names = [s.name for s in server.bus.subscriptions]
        assert not any(n.startswith("ext:failing") for n in names)
        assert any(n.startswith("ext:example:rule_event") for n in names)

        events = [
            RuleEvent(camera_id="cam-1", t=1_700_000_000.0 + i, rule_id="r1", rule_type="line_crossing", kind="crossed")
            for i in range(3)
        ]
        await server.bus.publish_many(events)
        admin = await token(client, "chief")
        viewer = await token(client, "watcher")
        for _ in range(500):  # handler and writer run in their own tasks
            state = (await client.get("/ext/example/state", headers=admin)).json()
            if state["count"] == 3 and state["stored"] == 3:
                break
            await asyncio.sleep(0.02)
        assert state == {"count": 3, "stored": 3, "caller": "chief"}

        assert (await gql(client, "{ exampleCount }", admin))["data"] == {"exampleCount": 3}
        assert (await gql(client, "{ exampleCount }", viewer))["data"] == {"exampleCount": 3}
        anonymous = await gql(client, "{ exampleCount }")
        assert anonymous.get("data") is None
        assert "not authenticated" in anonymous["errors"][0]["message"]
        refused = await gql(client, "mutation { exampleReset }", viewer)
        assert "operator or admin" in refused["errors"][0]["message"]
        assert (await gql(client, "{ me { username } }", admin))["data"] == {"me": {"username": "chief"}}

        assert (await client.get("/ext/example/state")).status_code == 401
        assert (await client.post("/ext/example/reset", headers=viewer)).status_code == 403
        assert (await client.get("/ext/failing/state", headers=admin)).status_code == 404
        # the app's security headers apply under /ext/ too
        r = await client.get("/ext/example/state", headers=admin)
        assert "content-security-policy" in {k.lower() for k in r.headers}

        assert server.db is not None
        async with server.db.engine.connect() as conn:
            rows = (await conn.execute(sa.select(seen.c.event_id, seen.c.camera_id).order_by(seen.c.t))).all()
        assert [tuple(r) for r in rows] == [(e.event_id, "cam-1") for e in events]
        video = server.video
        assert isinstance(video, RecordingVideo)
        assert video.pushes == [SignalPush("cam-1", "red-7", SignalState.RED, e.t) for e in events]

        assert (await gql(client, "mutation { exampleReset }", admin))["data"] == {"exampleReset": 3}
        ext = Example.instances[-1]
        assert ext.ctx is not None
        assert ext.ctx.supervisor.running  # its listener task
    assert ext.stopped
    assert ext.ctx.supervisor.running == []
    assert host.running == []
    assert Failing.instances[-1].stopped is False  # a failed start is undone, not stopped
    assert Clash.instances[-1].stopped is True  # started, then refused for its GraphQL: stopped


async def test_unknown_type_is_a_config_error_naming_the_known_ones(tmp_path: Path) -> None:
    import example_extension  # noqa: F401 - registers "example"

    from smartcity.core.errors import ConfigError
    from smartcity.settings_check import check_settings

    settings = load_settings(overrides={"extensions": [{"type": "nope"}, {"type": "example", "colour": 1}]}, environ={})
    with pytest.raises(ConfigError) as info:
        check_settings(settings)
    unknown = next(e for e in info.value.errors if e.startswith("extensions[0]"))
    assert unknown.startswith("extensions[0].type: unknown extension type 'nope' (known: ")
    assert "example" in unknown
    assert "extensions[1].colour: unknown field" in info.value.errors
    with pytest.raises(ConfigError):
        create_app(settings, with_ray=False)
