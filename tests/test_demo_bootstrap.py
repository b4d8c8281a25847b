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
