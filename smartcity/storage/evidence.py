"""Evidence files: where an event's snapshot is written, how it is found again for the API, and
how it expires. Pictures of people: the folder is the server user's only (0700, files 0600), and
a path is only ever read or deleted inside the evidence folder, whatever a database row says.

Layout: `<root>/<camera>/<UTC day of the event>/<event id>.jpg`, names made filesystem-safe; an
event's clip (WebM, people pixelated) is the same path with `.webm`, written seconds later, found
through its still and deleted with it. Implements `core.evidence.EvidenceSink` for the event bridge.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from smartcity.core.events import EvidenceClip, RuleEvent
from smartcity.core.evidence import CLIP_SUFFIX
from smartcity.core.files import PRIVATE_DIR, private_dir, write_private
from smartcity.storage.db import Database
from smartcity.storage.tables import events

log = logging.getLogger(__name__)

_NAME_MAX = 128


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    """An event's evidence snapshot as it is on disk: whose camera it shows, and the file."""

    event_id: str
    camera_id: str
    path: Path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:_NAME_MAX] or "_"


async def has_clip(db: Database, event_id: str) -> bool:
    """Whether the event's clip was written next to its still (the route serving it checks that
    the file lies inside the evidence folder)."""
    async with db.engine.connect() as conn:
        path = (
            await conn.execute(sa.select(events.c.evidence_path).where(events.c.event_id == event_id))
        ).scalar()
    if not path:
        return False
    return await asyncio.to_thread(Path(path).with_suffix(CLIP_SUFFIX).is_file)


class EvidenceStore:
    """The evidence folder `root` and the events table that points into it."""

    def __init__(self, root: Path, db: Database) -> None:
        self.root = root.resolve()
        self.db = db

    def path_for(self, event: RuleEvent) -> Path:
        return self._file(event.camera_id, event.t, event.event_id, ".jpg")

    def clip_path_for(self, clip: EvidenceClip) -> Path:
        return self._file(clip.camera_id, clip.t, clip.of_event_id, CLIP_SUFFIX)

    def _file(self, camera_id: str, t: float, event_id: str, suffix: str) -> Path:
        day = time.strftime("%Y-%m-%d", time.gmtime(t))
        return self.root / _safe(camera_id) / day / f"{_safe(event_id)}{suffix}"

    def inside(self, path: Path) -> bool:
        """Whether `path` (links resolved) lies in the evidence folder."""
        return path.resolve().is_relative_to(self.root)

    async def save(self, event: RuleEvent, jpeg: bytes) -> Path:
        """Write the snapshot of `event` (replacing one written before: a redelivery) and return
        its path once the file is complete (written aside, then renamed into place)."""
        return await self._write(self.path_for(event), jpeg)

    async def save_clip(self, clip: EvidenceClip, data: bytes) -> Path:
        """Write the clip of `clip.of_event_id` next to its still (same rules as `save`)."""
        return await self._write(self.clip_path_for(clip), data)

    async def _write(self, path: Path, data: bytes) -> Path:
        def write() -> None:
            private_dir(self.root, dedicated=True)
            path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
            tmp = path.with_suffix(".tmp")
            write_private(tmp, data)
            tmp.replace(path)

        await asyncio.to_thread(write)
        return path

    async def find(self, event_id: str) -> EvidenceFile | None:
        """The evidence of an event, if the event has one and its file exists inside the folder."""
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(events.c.camera_id, events.c.evidence_path).where(events.c.event_id == event_id)
                )
            ).first()
        if row is None or not row.evidence_path:
            return None
        path = Path(row.evidence_path)

        def inside_and_present() -> bool:
            return self.inside(path) and path.exists()

        if not await asyncio.to_thread(inside_and_present):
            return None
        return EvidenceFile(event_id, row.camera_id, path)

    async def find_clip(self, event_id: str) -> EvidenceFile | None:
        """The clip of an event, if its still is there and the clip was written next to it."""
        still = await self.find(event_id)
        if still is None:
            return None
        clip = still.path.with_suffix(CLIP_SUFFIX)
        if not await asyncio.to_thread(clip.is_file):
            return None
        return EvidenceFile(event_id, still.camera_id, clip)

    async def delete(self, paths: Sequence[str]) -> int:
        """Delete the files of expired events (relative paths are taken from the folder); a path
        outside the folder is left alone and logged. Returns how many files went."""
        return await asyncio.to_thread(self._delete, list(paths))

    def _delete(self, paths: list[str]) -> int:
        n = 0
        for p in paths:
            path = Path(p) if os.path.isabs(p) else self.root / p
            if not self.inside(path):
                log.warning("evidence path %s is outside %s, left alone", p, self.root)
                continue
            for file in (path, path.with_suffix(CLIP_SUFFIX)):  # the still and its clip
                try:
                    file.unlink()
                    n += 1
                except FileNotFoundError:
                    pass
        return n

    async def sweep(self, cutoff: float) -> int:
        """Delete files last written before `cutoff` (unix seconds) that no row pointed to (e.g.
        written just before a crash, the event never committed). Returns how many went."""
        return await asyncio.to_thread(self._sweep, cutoff)

    def _sweep(self, cutoff: float) -> int:
        n = 0
        if not self.root.is_dir():
            return 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                path = Path(dirpath) / name
                try:
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        n += 1
                except FileNotFoundError:
                    continue
        return n
