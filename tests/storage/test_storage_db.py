"""Database wrapper and packaged Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from smartcity.storage.db import (
    Database,
    MigrationsPending,
    SchemaError,
    check_migrations,
    current_revision,
    head_revision,
    migrate,
)
from smartcity.storage.tables import cameras, metadata

EXPECTED_TABLES = {
    "alembic_version",
    "camera_groups",
    "cameras",
    "rules",
    "events",
    "cap_dispatches",
    "incidents",
    "counts",
    "alert_deliveries",
    "users",
    "user_groups",
    "audit_log",
}


async def test_unmigrated_database_is_reported_pending(storage_url: str) -> None:
    db = Database(storage_url)
    try:
        assert await current_revision(db) is None
        with pytest.raises(MigrationsPending) as info:
            await check_migrations(db)
        assert info.value.current is None
        assert info.value.head == head_revision()
        assert "none (empty database)" in str(info.value)
        assert head_revision() in str(info.value)
    finally:
        await db.dispose()


async def test_migrate_creates_every_table_and_is_idempotent(storage_url: str) -> None:
    head = head_revision()
    versions_dir = Path(__file__).parents[2] / "smartcity" / "storage" / "migrations" / "versions"
    assert head == max(p.name.split("_", 1)[0] for p in versions_dir.glob("[0-9]*_*.py"))  # the newest file
    assert await migrate(storage_url) == head
    assert await migrate(storage_url) == head  # a second run has nothing to do
    db = Database(storage_url)
    try:
        assert await current_revision(db) == head
        await check_migrations(db)  # does not raise
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        assert names == EXPECTED_TABLES
        assert versions == [head]
    finally:
        await db.dispose()


def _diff(conn: Connection) -> list[object]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
    return list(compare_metadata(ctx, metadata))


async def test_migrated_schema_matches_table_definitions(db: Database) -> None:
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
        index_names = await conn.run_sync(lambda c: {i["name"] for i in inspect(c).get_indexes("events")})
    assert diff == []
    assert {"ix_events_camera_id_t", "ix_events_type_t", "ix_events_rule_id_t"} <= index_names


async def test_database_ahead_of_the_code_is_a_schema_error(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'ffffffff'"))
    with pytest.raises(SchemaError) as info:
        await check_migrations(db)
    assert not isinstance(info.value, MigrationsPending)
    assert "ffffffff" in str(info.value)


async def test_sqlite_connection_settings_and_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "city.db"
    db = Database(f"sqlite+aiosqlite:///{path}", sqlite_busy_timeout_ms=1234)
    try:
        assert db.dialect == "sqlite"
        async with db.engine.connect() as conn:
            journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
            fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
            busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        assert path.parent.is_dir()
        assert (journal, sync, fks, busy) == ("wal", 1, 1, 1234)
    finally:
        await db.dispose()


async def test_sqlite_ddl_is_transactional(tmp_path: Path) -> None:
    """A failed transaction rolls back its DDL too (a failed migration leaves no half schema)."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/t.db")

    async def failing_migration() -> None:
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE half (x INTEGER)")
            raise RuntimeError("migration step failed")

    try:
        with pytest.raises(RuntimeError):
            await failing_migration()
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert names == []
    finally:
        await db.dispose()


async def test_foreign_keys_are_enforced(db: Database) -> None:
    async with db.engine.connect() as conn:
        with pytest.raises(Exception, match="(?i)foreign key"):
            await conn.execute(
                text(
                    "INSERT INTO cameras (id, name, url, group_name, enabled, analysis_fps, site, created_at, updated_at) "
                    "VALUES ('c1', '', 'demo://x', 'no-such-group', true, 5, '', 0, 0)"
                )
            )
        await conn.rollback()


def test_postgres_dialect_is_detected_without_connecting() -> None:
    db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert db.dialect == "postgresql"
    with pytest.raises(SchemaError, match="unsupported database"):
        Database("mysql+aiomysql://x@localhost/db")


async def test_session_factory_gives_async_sessions(db: Database) -> None:
    async with db.session() as session:
        assert isinstance(session, AsyncSession)
        got = (await session.execute(select(func.count()).select_from(cameras))).scalar_one()
    assert got == 0
