"""Evidence files: written privately in the camera/day layout, found again only inside the
evidence folder and only while the file exists, deleted by retention only inside it."""

from __future__ import annotations

import calendar
import dataclasses
import stat
import time
from pathlib import Path

from smartcity.core.events import RuleEvent
from smartcity.storage.db import Database
from smartcity.storage.evidence import EvidenceFile, EvidenceStore
from smartcity.storage.writer import EventWriter

T = float(calendar.timegm((2026, 3, 4, 23, 30, 0)))  # late on 2026-03-04 UTC: the day is UTC's, not local


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _event(camera: str = "cam/1", *, evidence_path: str | None = None, event_id: str | None = None) -> RuleEvent:
    ev = RuleEvent(camera_id=camera, t=T, rule_id="r", rule_type="dwell", kind="dwell_exceeded", evidence_path=evidence_path)
    return ev if event_id is None else dataclasses.replace(ev, event_id=event_id)


async def test_save_writes_a_private_file_in_the_camera_day_layout_and_replaces_on_redelivery(
    db: Database, tmp_path: Path
) -> None:
    store = EvidenceStore(tmp_path / "evidence", db)
    ev = _event()
    path = await store.save(ev, b"first")
    assert path == (tmp_path / "evidence").resolve() / "cam_1" / "2026-03-04" / f"{ev.event_id}.jpg"
    assert (path.read_bytes(), _mode(path), _mode(path.parent), _mode(tmp_path / "evidence")) == (
        b"first", 0o600, 0o700, 0o700,
    )
    assert await store.save(ev, b"again") == path  # a redelivered event: same file, no leftover
    assert path.read_bytes() == b"again" and sorted(p.name for p in path.parent.iterdir()) == [path.name]


async def test_find_returns_the_file_only_inside_the_folder_and_while_it_exists(db: Database, tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "evidence", db)
    shot = _event("cam-a")
    path = await store.save(shot, b"jpeg")
    outside = tmp_path / "elsewhere.jpg"
    outside.write_bytes(b"not evidence")
    sneaky = _event("cam-a", evidence_path=str(outside))
    none = _event("cam-a")
    gone = _event("cam-a", evidence_path=str(store.root / "gone.jpg"))
    await EventWriter(db).write([_event("cam-a", event_id=shot.event_id, evidence_path=str(path)), sneaky, none, gone])
    assert await store.find(shot.event_id) == EvidenceFile(shot.event_id, "cam-a", path)
    assert await store.find(sneaky.event_id) is None
    assert await store.find(none.event_id) is None
    assert await store.find(gone.event_id) is None
    assert await store.find("no-such-event") is None


async def test_delete_and_sweep_stay_inside_the_folder(db: Database, tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "evidence", db)
    kept = await store.save(_event(), b"k")
    old = await store.save(_event(), b"o")
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"z")
    assert await store.delete([str(old), str(outside), str(store.root / "missing.jpg")]) == 1
    assert not old.exists() and kept.exists() and outside.exists()
    assert await store.sweep(cutoff=time.time() - 3600) == 0  # nothing is an hour old
    assert await store.sweep(cutoff=time.time() + 3600) == 1
    assert not kept.exists() and outside.exists()
