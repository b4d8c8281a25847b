"""The database under concurrent writers and when it fails: on SQLite, concurrent mutations
(and `smartcity users create` next to a running server) wait for the write lock instead of
failing with "database is locked"; an unexpected database error answers the client with an
error id, never the SQL, its parameters or the driver's message, and the log has no parameters."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from api_helpers import Client, running_server

ZONE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
CREATE_RULE = """
mutation($id: ID, $name: String!) {
  createRule(id: $id, input: {cameraId: "cam-p", type: "dwell", name: $name, classes: ["car"],
             params: {zone: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]], threshold_s: 30}}) {
    __typename
    ... on Rule { id }
  }
}"""
N = 120


async def test_concurrent_mutations_and_cli_on_sqlite_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/city.db"
    async with running_server(tmp_path, url) as (base, _server):
        admin = Client(base)
        await admin.login("admin")
        try:
            cli_config = tmp_path / "cli.yaml"
            cli_config.write_text(f"database:\n  url: {url}\n", encoding="utf-8")
            env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCITY_")}
            cli = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "smartcity.cli", "users", "create", "chief", "--role", "admin",
                "--password-stdin", "--config", str(cli_config),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                cwd=tmp_path, env=env,
            )  # fmt: skip
            cli_out = asyncio.ensure_future(cli.communicate(b"another long password\n"))
            bodies = await asyncio.gather(
                *(admin.gql(CREATE_RULE, id=f"r{i}", name=f"rule {i}") for i in range(N))
            )
            out, err = await cli_out
        finally:
            await admin.close()
        failures = [b for b in bodies if b.get("errors") or b["data"]["createRule"]["__typename"] != "Rule"]
        assert failures == [], f"{len(failures)} of {N} failed, first: {failures[:1]}"
        assert cli.returncode == 0, err.decode()
        assert b"locked" not in err
        rules = (await Client(base, admin.token).gql("{ rules(cameraId: \"cam-p\") { id } }"))["data"]["rules"]
        assert len(rules) == N


async def test_database_error_answers_an_error_id_without_sql(
    tmp_path: Path, storage_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret_name = "leaky-name-8c1f"
    async with running_server(tmp_path, storage_url) as (base, server):
        assert server.db is not None
        async with server.db.engine.begin() as conn:  # the database refuses every new rule
            if server.db.dialect == "sqlite":
                await conn.execute(
                    sa.text("CREATE TRIGGER no_rules BEFORE INSERT ON rules BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
                )
            else:
                await conn.execute(
                    sa.text(
                        "CREATE FUNCTION no_rules() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$ "
                        "LANGUAGE plpgsql"
                    )
                )
                await conn.execute(sa.text("CREATE TRIGGER no_rules BEFORE INSERT ON rules FOR EACH ROW EXECUTE FUNCTION no_rules()"))
        admin = Client(base)
        await admin.login("admin")
        try:
            with caplog.at_level(logging.INFO):
                body = await admin.gql(CREATE_RULE, id="r1", name=secret_name)
        finally:
            await admin.close()
    assert body["data"] is None
    (error,) = body["errors"]
    error_id = error["extensions"]["error_id"]
    assert len(error_id) >= 8
    assert error_id in error["message"]
    text = str(body)
    for leak in ("INSERT", "rules", "disk on fire", secret_name, "sqlite", "asyncpg", "Error"):
        assert leak not in text, f"{leak!r} reached the client: {text}"
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged, "the error id is logged"
    log_text = "\n".join(caplog.text.splitlines())
    assert "disk on fire" in "\n".join(r.getMessage() + str(r.exc_text or "") for r in logged)
    assert secret_name not in log_text, "SQL parameters are not logged"
