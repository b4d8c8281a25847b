"""`smartcity demo` creates an admin with a random password when there is no user yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.app import create_app
from smartcity.core.config import load_settings
from smartcity.storage.users import authenticate, list_users


async def test_demo_bootstraps_one_admin_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(
        overrides={"database": {"url": f"sqlite+aiosqlite:///{tmp_path}/d.db"}, "storage": {"data_dir": str(tmp_path)}},
        environ={},
    )
    for _ in range(2):
        server = create_app(settings, with_ray=False, bootstrap_admin=True).state.server
        await server.start()
        try:
            assert server.db is not None
            users = await list_users(server.db)
        finally:
            await server.stop()
    assert [(u.username, u.role) for u in users] == [("admin", "admin")]
    out = capsys.readouterr().out
    assert out.count("created user 'admin'") == 1
    password = out.split("password '", 1)[1].split("'", 1)[0]
    server = create_app(settings, with_ray=False).state.server
    await server.start()
    try:
        assert server.db is not None
        assert await authenticate(server.db, "admin", password) is not None
    finally:
        await server.stop()


async def test_demo_creates_its_rules_once_and_never_overrides_an_operator(tmp_path: Path) -> None:
    from smartcity.analytics import validate_rule
    from smartcity.analytics.shapes import rule_shapes
    from smartcity.core.config import demo_settings
    from smartcity.storage.rules_repo import RuleRepo

    settings = demo_settings(
        load_settings(
            overrides={"database": {"url": f"sqlite+aiosqlite:///{tmp_path}/d.db"}, "storage": {"data_dir": str(tmp_path)}},
            environ={},
        )
    )
    (demo,) = [c for c in settings.cameras if c.url.startswith("demo://")]

    async def start_demo() -> list[tuple[str, str, str, int]]:
        server = create_app(settings, with_ray=False, bootstrap_admin=True).state.server
        await server.start()
        try:
            assert server.db is not None
            rows = await RuleRepo(server.db).list_rules()
        finally:
            await server.stop()
        return [(r.id, r.camera_id, r.type, r.version) for r in rows]

    first = await start_demo()
    assert sorted((t, cam) for _, cam, t, _ in first) == [
        ("dwell", demo.id), ("line_count", demo.id), ("occupancy", demo.id)
    ]
    assert await start_demo() == first  # a restart neither duplicates nor rewrites them

    # an operator edits one rule and deletes another: a restart keeps their choices
    from smartcity.storage.db import Database

    db = Database(settings.database.url)
    try:
        repo = RuleRepo(db)
        line = next(r for r in await repo.list_rules() if r.type == "line_count")
        spec = {**line.spec(), "params": {**line.params, "in_name": "eastbound"}}
        clean = validate_rule(spec).model_dump(mode="json")
        await repo.save(clean, actor="alice", shapes=rule_shapes(clean["params"]))
        dwell = next(r for r in await repo.list_rules() if r.type == "dwell")
        await repo.delete(dwell.id, actor="alice")
    finally:
        await db.dispose()
    after = await start_demo()
    assert sorted(t for _, _, t, _ in after) == ["line_count", "occupancy"]
    assert (line.id, demo.id, "line_count", 2) in after
    # and once every rule of the demo camera is gone, the demo does not bring them back
    db = Database(settings.database.url)
    try:
        for r in await RuleRepo(db).list_rules():
            await RuleRepo(db).delete(r.id, actor="alice")
    finally:
        await db.dispose()
    assert await start_demo() == []
