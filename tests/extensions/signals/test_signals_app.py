"""The `signals` extension in the real app (no Ray, SQLite): camera rule events through the bus
drive the junction's status in GraphQL; an operator switches it to active (commands reach a
gateway through real Mosquitto), forces the fixed plan, and every action is in the log that
survives a restart; a viewer cannot act; stopping the server releases the junction."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from signals_kit import junction_dict

from smartcity.app import Server, create_app
from smartcity.core.config import load_settings
from smartcity.core.events import RuleEvent
from smartcity.storage.audit_repo import AuditRepo
from smartcity.storage.users import create_user, list_users

PASSWORD = "correct horse battery"
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { ... on LoginSuccess { token } } }"
STATUS = "{ signalJunctions { id mode controller fallback phase recommendation forcedFixed laneGroups { id queue fresh } signalGroups { id state } } }"


def entry(topic: str) -> dict[str, Any]:
    j = junction_dict(adapter={"type": "mqtt", "topic": topic, "client_id": f"sc-{uuid.uuid4().hex[:8]}"})
    return {"type": "signals", "junctions": [j], "tick_s": 0.2, "stale_after_s": 3.0}


@contextlib.asynccontextmanager
async def running(db_file: Path, ext: dict[str, Any]) -> AsyncIterator[tuple[Server, httpx.AsyncClient]]:
    settings = load_settings(
        overrides={
            "database": {"url": f"sqlite+aiosqlite:///{db_file}"},
            "storage": {"data_dir": str(db_file.parent / "d")},
            "extensions": [ext],
        },
        environ={},
    )
    app = create_app(settings, with_ray=False)
    server: Server = app.state.server
    async with app.router.lifespan_context(app):
        assert server.db is not None
        if not any(u.username == "chief" for u in await list_users(server.db)):
            await create_user(server.db, "chief", PASSWORD, "operator", [], actor="test")
            await create_user(server.db, "watcher", PASSWORD, "viewer", [], actor="test")
        assert server.extensions is not None and server.extensions.running == ["signals"], (
            server.extensions.failed
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as client:
            yield server, client


async def token(client: httpx.AsyncClient, user: str) -> dict[str, str]:
    r = await client.post("/graphql", json={"query": LOGIN, "variables": {"u": user, "p": PASSWORD}})
    return {"authorization": f"Bearer {r.json()['data']['login']['token']}"}


async def gql(client: httpx.AsyncClient, q: str, headers: dict[str, str]) -> dict[str, Any]:
    r = await client.post("/graphql", json={"query": q}, headers=headers)
    body: dict[str, Any] = r.json()
    return body


async def set_config(
    client: httpx.AsyncClient, headers: dict[str, str], junction: dict[str, Any]
) -> dict[str, Any]:
    q = 'mutation($c: String!) { setSignalJunctionConfig(junction: "j1", configJson: $c) { mode configJson } }'
    r = await client.post(
        "/graphql", json={"query": q, "variables": {"c": json.dumps(junction)}}, headers=headers
    )
    body: dict[str, Any] = r.json()
    return body


def sample(camera: str, rule: str, mean: float) -> RuleEvent:
    return RuleEvent(
        camera_id=camera,
        t=time.time(),
        rule_id=rule,
        rule_type="occupancy",
        kind="occupancy_sample",
        payload={"mean": mean, "max": mean, "min": mean, "frames": 5},
    )


async def until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + 20.0
    while True:
        got = await check()
        if got:
            return got
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_operator_switches_modes_forces_the_plan_and_it_is_audited(tmp_path: Path) -> None:
    topic = f"smartcity-test/signals/{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"t-{uuid.uuid4().hex[:8]}") as broker:
        await broker.subscribe(f"{topic}/#", qos=1)
        async with running(tmp_path / "db.sqlite", entry(topic)) as (server, client):
            chief, watcher = await token(client, "chief"), await token(client, "watcher")
            j = (await gql(client, STATUS, chief))["data"]["signalJunctions"][0]
            assert j["mode"] == "advisory" and j["controller"] == "fixed" and "stale" in j["fallback"]

            async def fed() -> dict[str, Any] | None:
                await server.bus.publish(sample("cam-n", "q-n", 6.0))
                await server.bus.publish(sample("cam-e", "q-e", 1.0))
                await server.bus.publish(
                    RuleEvent(
                        camera_id="cam-n",
                        t=time.time(),
                        rule_id="c-n",
                        rule_type="line_count",
                        kind="crossing",
                        payload={"direction": "in"},
                    )
                )
                got = (await gql(client, STATUS, chief))["data"]["signalJunctions"][0]
                return got if got["controller"] == "max_pressure" else None

            j = await until(fed, "fresh camera data should give control to max-pressure")
            assert j["fallback"] is None and {lg["id"]: lg["queue"] for lg in j["laneGroups"]}["north"] == 6.0

            denied = await gql(
                client, 'mutation { setSignalMode(junction: "j1", mode: "active") { mode } }', watcher
            )
            assert denied.get("errors") and not (denied.get("data") or {}).get("setSignalMode")
            got = await gql(
                client, 'mutation { setSignalMode(junction: "j1", mode: "active") { mode } }', chief
            )
            assert got["data"]["setSignalMode"]["mode"] == "active"
            async with asyncio.timeout(20):  # the gateway receives the commanded aspects
                async for msg in broker.messages:
                    if str(msg.topic) == topic:
                        doc = json.loads(bytes(msg.payload))  # type: ignore[arg-type]
                        assert doc["junction"] == "j1" and set(doc["states"]) == {"ns", "ew", "ped"}
                        break
            got = await gql(
                client,
                'mutation { forceSignalFixedPlan(junction: "j1", on: true) { forcedFixed controller } }',
                chief,
            )
            assert got["data"]["forceSignalFixedPlan"]["forcedFixed"] is True
            bad = await gql(
                client, 'mutation { setSignalMode(junction: "nowhere", mode: "active") { mode } }', chief
            )
            assert "unknown junction 'nowhere'" in bad["errors"][0]["message"]
            # a new configuration through the API: refused with the reason, or stored, audited and applied
            new = entry(topic)["junctions"][0]
            new["phases"] = [{"id": "NSEW", "groups": ["ns", "ew"]}, {"id": "PED", "groups": ["ped"]}]
            bad = await set_config(client, chief, new)
            assert "'ns' and 'ew' conflict" in bad["errors"][0]["message"]
            new = entry(topic)["junctions"][0]
            new["signal_groups"][1]["max_green_s"] = 35
            got = await set_config(client, chief, new)
            cfg = json.loads(got["data"]["setSignalJunctionConfig"]["configJson"])
            assert cfg["signal_groups"][1]["max_green_s"] == 35
            # every operator action is in the server's audit log too
            audited = [(e.actor, e.action, e.target) for e in await AuditRepo(server.db).page(action="signals.")]
            assert audited == [
                ("chief", "signals.config", "junction:j1"),
                ("chief", "signals.force_fixed", "junction:j1"),
                ("chief", "signals.mode", "junction:j1"),
            ]
        async with asyncio.timeout(20):  # the server stopped: the junction is handed back to its own plan
            async for msg in broker.messages:
                if str(msg.topic) == f"{topic}/release":
                    assert json.loads(bytes(msg.payload)) == {"junction": "j1"}  # type: ignore[arg-type]
                    break

    async with running(tmp_path / "db.sqlite", entry(topic)) as (
        server,
        client,
    ):  # a restart keeps what operators did
        chief = await token(client, "chief")
        j = (await gql(client, STATUS, chief))["data"]["signalJunctions"][0]
        assert j["mode"] == "active" and j["forcedFixed"] is True and j["fallback"] == "forced by an operator"
        cfg = (await gql(client, "{ signalJunctions { configJson } }", chief))["data"]["signalJunctions"][0]
        assert json.loads(cfg["configJson"])["signal_groups"][1]["max_green_s"] == 35
        log = (await gql(client, '{ signalActions(junction: "j1") { actor action before after } }', chief))[
            "data"
        ]["signalActions"]
        assert log[0]["action"] == "config" and log[0]["before"] != log[0]["after"]
        assert log[1:] == [
            {"actor": "chief", "action": "force_fixed", "before": "off", "after": "on"},
            {"actor": "chief", "action": "mode", "before": "advisory", "after": "active"},
        ]


@pytest.mark.parametrize("bad", [{"tick_s": 0}, {"junctions": []}, {"colour": 1}])
def test_bad_extension_config_is_refused(bad: dict[str, Any]) -> None:
    from smartcity.core.errors import ConfigError
    from smartcity.extensions.registry import parse_extensions

    with pytest.raises(ConfigError) as err:
        parse_extensions([{**entry("x"), **bad}])
    assert "extensions[0]" in str(err.value)
