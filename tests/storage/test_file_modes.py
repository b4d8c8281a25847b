"""What the server writes to disk is for its own user only (0700 folders, 0600 files),
whatever the umask: the database and its -wal/-shm, the data folder, spools, detections logs,
evidence pictures."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from smartcity.actors.spool import EventSpool
from smartcity.app import Server
from smartcity.core.config import load_settings
from smartcity.core.events import CameraHealth, CameraState
from smartcity.core.files import private_dir, write_private
from smartcity.sources.detlog import DetectionLogWriter
from smartcity.storage.db import Database, migrate
from smartcity.storage.durable_spool import DurableSpool, SpoolConfig
from smartcity.storage.tables import audit_log
from smartcity.storage.writer import EventWriter


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def lax_umask() -> Iterator[None]:
    """The common default umask, which leaves new files readable by every local user."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


async def test_sqlite_database_files_and_new_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new-folder" / "city.db"
    url = f"sqlite+aiosqlite:///{path}"
    await migrate(url)
    db = Database(url)
    try:
        async with db.engine.begin() as conn:  # WAL mode: -wal and -shm exist while connected
            await conn.execute(sa.insert(audit_log).values(at=0.0, actor="t", action="x", target="y"))
        files = [path, path.with_name("city.db-wal"), path.with_name("city.db-shm")]
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert mode(path.parent) == 0o700
    finally:
        await db.dispose()


async def test_a_database_left_readable_by_an_earlier_version_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    await migrate(url)
    path.chmod(0o644)
    db = Database(url)
    await db.dispose()
    assert mode(path) == 0o600


async def test_server_data_folder_and_spool_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    settings = load_settings(
        overrides={"database": {"url": f"sqlite+aiosqlite:///{data}/s.db"}, "storage": {"data_dir": str(data)}},
        environ={},
    )
    server = Server(settings, start_ray=False)
    await server.start()
    try:
        assert mode(data) == 0o700
        assert mode(data / "s.db") == 0o600
        assert mode(data / "db-spool") == 0o700
        assert mode(data / "secret.key") == 0o600
    finally:
        await server.stop()


def test_actor_spool_and_detections_log_are_private(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path / "spool" / "g1.sqlite")
    try:
        spool.append([CameraHealth(camera_id="c", t=0.0, group="g1", state=CameraState.ONLINE)])
        assert mode(tmp_path / "spool") == 0o700
        assert mode(tmp_path / "spool" / "g1.sqlite") == 0o600
        assert mode(tmp_path / "spool" / "g1.sqlite-wal") == 0o600
    finally:
        spool.close()
    with DetectionLogWriter(tmp_path / "detections" / "cam.jsonl") as log:
        log.write("cam", 0.0, 640, 480, [])
    assert mode(tmp_path / "detections") == 0o700
    assert mode(tmp_path / "detections" / "cam.jsonl") == 0o600


async def test_durable_spool_folder_is_private(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/w.db")
    try:
        DurableSpool(EventWriter(db), SpoolConfig(directory=tmp_path / "db-spool"))
        assert mode(tmp_path / "db-spool") == 0o700
    finally:
        await db.dispose()


def test_private_helpers_tighten_what_exists(tmp_path: Path) -> None:
    folder = tmp_path / "evidence"
    folder.mkdir(mode=0o755)
    picture = folder / "e.jpg"
    picture.write_bytes(b"old")
    picture.chmod(0o644)
    private_dir(folder, dedicated=True)
    write_private(picture, b"jpeg")
    assert (mode(folder), mode(picture), picture.read_bytes()) == (0o700, 0o600, b"jpeg")


def test_a_folder_the_server_does_not_own_keeps_its_mode(tmp_path: Path) -> None:
    """A detections log or an actor spool named in an existing folder (a user's, or /tmp) does not
    tighten that folder: writing a log to /tmp once made /tmp 0700 and locked every other user
    out of it. A shared (sticky) folder is never tightened, even when named as the data folder."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o755)
    with DetectionLogWriter(shared / "cam.jsonl") as log:
        log.write("cam", 0.0, 640, 480, [])
    spool = EventSpool(home / "g1.sqlite")
    spool.close()
    private_dir(shared, dedicated=True)
    assert (mode(shared), mode(home)) == (0o1777, 0o755)
    assert mode(shared / "cam.jsonl") == 0o600
