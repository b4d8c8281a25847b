"""Shared fixtures: a fresh PostgreSQL database per run, and leak checks after every test.

A test that leaves an asyncio task, a thread, a child process or a Ray actor running fails.
PostgreSQL tests skip on a laptop without PostgreSQL but fail when CI=true.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import psutil
import pytest
from sqlalchemy.engine import make_url

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
# the default detector installed by scripts/setup.sh (`smartcity models install`)
os.environ.setdefault("SMARTCITY_MODEL_DIR", str(ROOT / "models"))

# CI runs the same property-test examples every time (a new counterexample is found locally,
# where the random search runs, and becomes a regression test)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    _hypothesis_settings.load_profile("ci")

PG_ADMIN_DSN = os.environ.get("SMARTCITY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Threads that libraries start once per process and keep (not owned by a test).
_PERSISTENT_THREAD_PREFIXES = ("ray_", "ThreadPoolExecutor", "asyncio_", "pymp", "grpc", "Thread-")


def _thread_names() -> set[str]:
    return {
        f"{t.name}#{t.ident}"
        for t in threading.enumerate()
        if t.is_alive() and t is not threading.main_thread()
    }


def _is_library_thread(name: str) -> bool:
    return name.startswith(_PERSISTENT_THREAD_PREFIXES) or "ray" in name.lower()


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=False) if p.status() != psutil.STATUS_ZOMBIE}


def _ray_actors() -> set[str]:
    try:
        import ray
    except ImportError:
        return set()
    if not ray.is_initialized():
        return set()
    return {f"{a['namespace']}/{a['name']}" for a in ray.util.list_named_actors(all_namespaces=True)}


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves threads, child processes or Ray actors behind."""
    threads_before = _thread_names()
    children_before = _children()
    actors_before = _ray_actors()
    yield
    deadline = time.monotonic() + 5.0
    while True:
        new_threads = {t for t in _thread_names() - threads_before if not _is_library_thread(t)}
        new_children = _children() - children_before
        # Ray's own daemons, or a server, started by a session fixture are not the test's.
        if "ray_session" in request.fixturenames or "console_server" in request.fixturenames:
            new_children = set()
        new_actors = _ray_actors() - actors_before
        if not (new_threads or new_children or new_actors) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    problems = []
    if new_threads:
        problems.append(f"threads left running: {sorted(new_threads)}")
    if new_children:
        procs = []
        for pid in new_children:
            try:
                procs.append(f"{pid}:{psutil.Process(pid).name()}")
            except psutil.NoSuchProcess:
                continue
        if procs:
            problems.append(f"child processes left running: {procs}")
    if new_actors:
        problems.append(f"Ray actors left running: {sorted(new_actors)}")
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail an async test that leaves asyncio tasks pending on its loop."""
    yield
    current = asyncio.current_task()
    # up to 5 s: a library's own teardown (aiortc closing its transports) runs late on a loaded machine
    for _ in range(100):
        pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if not pending:
            return
        await asyncio.sleep(0.05)
    names = sorted(f"{t.get_name()} ({getattr(t.get_coro(), '__qualname__', '?')})" for t in pending)
    for t in pending:
        t.cancel()
    pytest.fail(f"asyncio tasks left running: {names}")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    name = f"smartcity_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required when CI=true but unavailable at {PG_ADMIN_DSN}: {exc}")
        pytest.skip(f"PostgreSQL unavailable at {PG_ADMIN_DSN}: {exc}")
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """Run a storage test on both SQLite (file in tmp) and PostgreSQL (fresh database)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/test.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray for the whole run (starting Ray costs seconds); shut down at the end."""
    import ray

    from smartcity.actors.runtime import start_ray, stop_ray
    from smartcity.core.config import RayConfig

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    start_ray(RayConfig(num_cpus=2, object_store_mb=128, namespace="smartcity-test"))
    yield
    if started:
        stop_ray()


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
async def storage_url(db_url: str) -> AsyncIterator[str]:
    """A URL to an empty database that belongs to this test alone."""
    if db_url.startswith("sqlite"):
        yield db_url
        return
    session_db = make_url(db_url)
    name = f"{session_db.database}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_plain_dsn(db_url), timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield session_db.set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_plain_dsn(db_url), timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
