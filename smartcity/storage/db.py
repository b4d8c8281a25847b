"""Database connection (async engine, sessions) and schema migrations (Alembic, packaged inside smartcity).

`Database` wraps one SQLAlchemy AsyncEngine for either SQLite (aiosqlite: embedded default) or
PostgreSQL (asyncpg: production). The Alembic configuration is built in code from the packaged
`migrations/` directory, so no alembic.ini is needed at run time; migrations run on a connection
of the caller's event loop through `AsyncConnection.run_sync` (never a nested `asyncio.run`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import ColumnElement, Connection, Row, Select, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from smartcity.core.errors import SmartcityError
from smartcity.core.files import PRIVATE_DIR, tighten, touch_private

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Serialises concurrent `migrate()` calls of several server processes on one PostgreSQL database.
_PG_MIGRATION_LOCK = 0x5C17_0001

Dialect = Literal["sqlite", "postgresql"]


class SchemaError(SmartcityError):
    """The database schema does not match what this version of smartcity expects."""


class MigrationsPending(SchemaError):
    """The database is behind the code's head revision; run `smartcity migrate`."""

    def __init__(self, current: str | None, head: str, *, branch: str | None = None) -> None:
        where = current if current is not None else "none (empty database)"
        of = f"extension {branch!r}: its tables are" if branch else "database schema is"
        super().__init__(
            f"{of} at revision {where} but this version needs {head}: "
            "run `smartcity migrate` (or set database.migrate_on_start)"
        )
        self.current = current
        self.head = head
        self.branch = branch


class Database:
    """One async engine and its session factory.

    `session` is an `async_sessionmaker`: `async with db.session() as s: ...`.
    On SQLite each new connection gets WAL journaling, synchronous=NORMAL, enforced foreign
    keys and a busy timeout (30 s: a burst of concurrent writes on a loaded machine queues
    for SQLite's single write lock; 5 s was seen to fail 2 of 120 concurrent mutations at a
    load average of 25), and transactions are begun explicitly (so DDL is transactional):
    `engine.begin()` (writes) with BEGIN IMMEDIATE, `engine.connect()` (reads) deferred.
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 5,
        sqlite_busy_timeout_ms: int = 30000,
    ) -> None:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise SchemaError(f"unsupported database {backend!r}: use sqlite+aiosqlite or postgresql+asyncpg")
        self.url = url
        self.dialect: Dialect = "sqlite" if backend == "sqlite" else "postgresql"
        # parameters (a password hash, a user's input) never reach an exception's text or the log
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                _private_sqlite_file(Path(database).expanduser())
                kwargs.update(pool_size=pool_size, max_overflow=pool_size)
            else:
                # An in-memory database lives in one connection: share it.
                kwargs.update(poolclass=StaticPool)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            self.engine = _SqliteEngine(self.engine.sync_engine)
            _configure_sqlite(self.engine, sqlite_busy_timeout_ms)
        self.session: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )

    def __repr__(self) -> str:
        return f"<Database {self.engine.url!r}>"

    async def dispose(self) -> None:
        """Close every pooled connection (the engine stays usable and reconnects on demand)."""
        await self.engine.dispose()


def _private_sqlite_file(path: Path) -> None:
    """The database file 0600 before SQLite opens it: SQLite gives its -wal and -shm files the
    database file's mode. A missing folder is created 0700; an existing one is left as it is
    (it may be shared), but database files left readable by an earlier version are tightened."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    touch_private(path)
    for extra in ("-wal", "-shm", "-journal"):
        tighten(path.with_name(path.name + extra))


_IMMEDIATE = "smartcity_sqlite_immediate"


class _SqliteEngine(AsyncEngine):
    """`engine.begin()` is how this code opens a write transaction (reads use
    `engine.connect()`): on SQLite it begins with BEGIN IMMEDIATE, which waits (busy timeout)
    for the write lock at once. A deferred BEGIN reads under a shared lock, and its later write
    fails at once with "database is locked" when another writer committed meanwhile: SQLite
    cannot upgrade a stale snapshot, and the busy timeout does not apply to that case."""

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.connect() as conn:
            await conn.execution_options(**{_IMMEDIATE: True})
            async with conn.begin():
                yield conn


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module (which would not begin a
        # transaction before DDL), and emit BEGIN ourselves in the "begin" hook below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_IMMEDIATE) else "BEGIN")


@dataclass(frozen=True, slots=True)
class MigrationBranch:
    """An extension's own tables: an Alembic branch whose revisions live in `versions`; its
    first revision has no down_revision and `branch_labels = (label,)`."""

    label: str
    versions: Path


def alembic_config(url: str | None = None, branches: Sequence[MigrationBranch] = ()) -> Config:
    """The Alembic configuration of the packaged migrations (plus `branches`), built without an ini file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if branches:
        locations = [MIGRATIONS_DIR / "versions", *(b.versions for b in branches)]
        cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations))
    if url is not None:
        # ConfigParser interpolation: a literal % in a password must be doubled.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this version (extension branches aside)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise SchemaError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def branch_head(branch: MigrationBranch) -> str:
    """The newest revision of an extension's branch."""
    script = ScriptDirectory.from_config(alembic_config(branches=[branch]))
    try:
        rev = script.get_revision(f"{branch.label}@head")
    except CommandError as exc:
        raise SchemaError(f"extension migrations in {branch.versions}: no branch labelled {branch.label!r} ({exc})") from None
    if rev is None:
        raise SchemaError(f"extension migrations in {branch.versions}: no revision found")
    return rev.revision


async def migrate(url: str, branches: Sequence[MigrationBranch] = (), *, known: Sequence[MigrationBranch] = ()) -> str:
    """Upgrade the database at `url` to the head revision, then each of `branches` (extensions'
    tables) to its head; returns the core head. `known`: further branches whose revisions the
    database may hold (extensions registered but not configured now), so that Alembic finds them."""
    db = Database(url)
    every = list({b.label: b for b in (*known, *branches)}.values())
    try:
        async with db.engine.begin() as conn:
            if db.dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            await conn.run_sync(_upgrade, url, every, [f"{b.label}@head" for b in branches])
    finally:
        await db.dispose()
    head = head_revision()
    log.info("database migrated to revision %s%s", head, "".join(f", {b.label} to {branch_head(b)}" for b in branches))
    return head


def _upgrade(connection: Connection, url: str, every: list[MigrationBranch], targets: list[str]) -> None:
    cfg = alembic_config(url, every)
    # env.py runs the migrations on this connection, inside the caller's transaction.
    cfg.attributes["connection"] = connection
    # by revision, not "head": with extension branches there are several heads
    for target in (head_revision(), *targets):
        command.upgrade(cfg, target)


def _current(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


async def current_heads(db: Database) -> tuple[str, ...]:
    """Every revision the database is at: the core one and one per extension branch."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)


async def current_revision(db: Database) -> str | None:
    """The core revision the database is at, or None for a database never migrated."""
    heads = await current_heads(db)
    core = ScriptDirectory.from_config(alembic_config())
    ours = [h for h in heads if _known(core, h)]
    return ours[0] if ours else (heads[0] if heads else None)


async def check_migrations(db: Database, branches: Sequence[MigrationBranch] = ()) -> None:
    """Raise MigrationsPending when the database is behind the code or one of `branches`
    (SchemaError when ahead/unknown)."""
    heads = await current_heads(db)
    head = head_revision()
    core = ScriptDirectory.from_config(alembic_config())
    if head not in heads:
        ours = [h for h in heads if _known(core, h)]
        if not heads:
            raise MigrationsPending(None, head)
        if not ours:
            raise SchemaError(
                f"database schema is at revision {heads[0]}, unknown to this version (head {head}): "
                "was it migrated by a newer smartcity?"
            )
        raise MigrationsPending(ours[0], head)
    for branch in branches:
        want = branch_head(branch)
        if want not in heads:
            script = ScriptDirectory.from_config(alembic_config(branches=[branch]))
            behind = [h for h in heads if _known(script, h) and not _known(core, h)]
            raise MigrationsPending(behind[0] if behind else None, want, branch=branch.label)


IN_CHUNK = 500
"""Values per `IN (...)` list: bounded statements whatever the number of ids."""


async def rows_in(conn: AsyncConnection, stmt: Select[Any], column: ColumnElement[Any], values: list[Any]) -> list[Row[Any]]:
    """Rows of `stmt` whose `column` is one of `values`, fetched IN_CHUNK values at a time."""
    out: list[Row[Any]] = []
    for start in range(0, len(values), IN_CHUNK):
        out.extend((await conn.execute(stmt.where(column.in_(values[start : start + IN_CHUNK])))).all())
    return out


def libpq_dsn(url: str) -> str:
    """The libpq connection string of a `postgresql+asyncpg://` URL (for psycopg, pg tools)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
