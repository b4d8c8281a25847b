"""The command line, run as a user would (`python -m smartcity.cli ...`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from smartcity.core.passwords import verify_password
from smartcity.storage.db import Database, head_revision
from smartcity.storage.tables import audit_log, users


def run(args: list[str], cwd: Path, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if env is None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_")}
    return subprocess.run(
        [sys.executable, "-m", "smartcity.cli", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_check_config_lists_every_error_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "server: {port: -1}\n"
        "database: {url: 'mysql://db/x'}\n"
        "cameras:\n"
        "  - {id: a, url: 'rtsp://cam/1'}\n"
        "  - {id: b, url: 'rtsp://cam/2', analysis_fps: 500}\n"
        "  - {id: c, url: 'gopher://x', extra: 1}\n"
    )
    r = run(["check-config", str(bad)], tmp_path)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[:-1] == [
        "server.port: Input should be greater than or equal to 0",
        "database.url: Value error, unsupported database driver 'mysql'; use sqlite+aiosqlite:// or postgresql+asyncpg://",
        "cameras[1].analysis_fps: Input should be less than or equal to 60",
        "cameras[2].url: Value error, unsupported scheme 'gopher': use rtsp, http(s), file or demo",
        "cameras[2].extra: unknown field",
    ]
    assert lines[-1] == f"{bad}: 5 error(s)"


def test_check_config_ok(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("cameras: [{id: a, url: 'rtsp://cam/1'}]\n")
    r = run(["check-config", str(good)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "OK (1 cameras" in r.stdout


def test_serve_refuses_invalid_config_with_the_same_messages(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: {port: 70000}\n")
    r = run(["serve", "--config", str(bad)], tmp_path)
    assert r.returncode == 2
    assert "server.port: Input should be less than or equal to 65535" in r.stderr
    assert "refusing to start" in r.stderr


async def test_migrate_then_create_admin(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database: {{url: 'sqlite+aiosqlite:///{tmp_path}/db.sqlite'}}\n")
    r = run(["migrate", "--config", str(cfg)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"revision {head_revision()}" in r.stdout
    r = run(["users", "create", "chief", "--role", "admin", "--password-stdin", "--config", str(cfg)], tmp_path, "s3cret-enough-pw\n")
    assert r.returncode == 0, r.stderr
    assert "created admin 'chief'" in r.stdout
    r = run(["users", "create", "chief", "--password-stdin", "--config", str(cfg)], tmp_path, "s3cret-enough-pw\n")
    assert r.returncode == 1
    assert "already exists" in r.stderr
    r = run(["users", "create", "bob", "--password-stdin", "--config", str(cfg)], tmp_path, "short\n")
    assert r.returncode == 1
    assert "password: must be at least 10" in r.stderr

    db = Database(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    try:
        async with db.engine.connect() as conn:
            row = (await conn.execute(sa.select(users.c.username, users.c.role, users.c.password_hash))).one()
            audit = (await conn.execute(sa.select(audit_log.c.actor, audit_log.c.action))).all()
    finally:
        await db.dispose()
    assert row.username == "chief"
    assert row.role == "admin"
    assert verify_password("s3cret-enough-pw", row.password_hash)
    assert [tuple(a) for a in audit] == [("cli", "user.create")]


@pytest.mark.parametrize("cmd", [["users", "create", "x", "--role", "king"]])
def test_bad_arguments_are_refused(tmp_path: Path, cmd: list[str]) -> None:
    r = run(cmd, tmp_path)
    assert r.returncode == 2
    assert "invalid choice: 'king'" in r.stderr


def _with_example_extension(tmp_path: Path) -> dict[str, str]:
    """The environment of a Python where a third-party package registers the tests' example
    extension through the `smartcity.extensions` entry point (a dist-info folder on the path)."""
    site = tmp_path / "site"
    dist = site / "smartcity_example-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: smartcity-example\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[smartcity.extensions]\nexample = example_extension\n")
    tests_ext = Path(__file__).resolve().parent.parent / "extensions"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), str(tests_ext), env.get("PYTHONPATH", "")) if p)
    return env


async def test_migrate_applies_the_configured_extensions_tables(tmp_path: Path) -> None:
    env = _with_example_extension(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"database: {{url: 'sqlite+aiosqlite:///{tmp_path}/db.sqlite'}}\nextensions: [{{type: example}}]\n")
    r = run(["migrate", "--config", str(cfg)], tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"database at revision {head_revision()}", "extension example at revision example_0001"]
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    try:
        async with db.engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT count(*) FROM example_seen"))).scalar_one() == 0
    finally:
        await db.dispose()

    cfg.write_text("extensions: [{type: exampel}]\n")
    r = run(["check-config", str(cfg)], tmp_path, env=env)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == "extensions[0].type: unknown extension type 'exampel' (known: example, signals, waste)"
