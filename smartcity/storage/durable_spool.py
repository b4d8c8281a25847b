"""Nothing lost while the database is away: a bounded on-disk spool around the EventWriter.

`DurableSpool.run(sub)` replaces `EventWriter.run(sub)`: it takes batches from the writer's bus
subscription and writes them; when a write fails, the batch goes to a segment file on local
disk (JSON lines, fsynced, renamed into place) and events keep flowing into the spool, in
order, while a retry loop drains the oldest segments into the database as soon as it answers.
The writer is idempotent by event id (counts and incidents by their own keys), so a segment
replayed after a crash or after a write whose outcome was unknown is stored exactly once.

Bounded: once the spool holds `max_bytes`, it stops taking from the bus (the BLOCK
subscription then pushes back on producers) until draining frees room. Segments left by a
previous process are drained first at start.

`expect(ids)` resolves once each event is durable: committed, or fsynced into the spool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from smartcity.core.bus import Subscription
from smartcity.core.errors import SubscriptionClosed
from smartcity.core.events import Event, event_from_dict
from smartcity.core.files import open_private, private_dir
from smartcity.core.waiters import IdWaiters
from smartcity.storage.writer import EventWriter

log = logging.getLogger(__name__)

SUFFIX = ".jsonl"


class SpoolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: Path = Field(Path("data/db-spool"), description="Directory of the spool segments (local disk).")
    max_bytes: int = Field(
        1 << 30, description="Largest spool on disk; beyond it the bus pushes back on producers.", ge=1 << 16, le=1 << 40
    )
    retry_initial_s: float = Field(0.2, description="First delay before retrying the database, seconds.", gt=0, le=60)
    retry_max_s: float = Field(5.0, description="Longest delay between database retries, seconds.", gt=0, le=600)


def _write_segment(path: Path, lines: list[str]) -> int:
    tmp = path.with_suffix(".tmp")
    data = ("\n".join(lines) + "\n").encode()
    with os.fdopen(open_private(tmp), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return len(data)


def _read_segment(path: Path) -> list[Event]:
    out: list[Event] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(event_from_dict(json.loads(line)))
    return out


class DurableSpool:
    """Writer sink that spills to disk while the database fails (see the module docstring).

    Stats: `spooled` events written to disk, `drained` events replayed from disk, `segments`
    and `bytes` on disk now.
    """

    def __init__(self, writer: EventWriter, cfg: SpoolConfig | None = None) -> None:
        self.writer = writer
        self.cfg = cfg or SpoolConfig()
        self.dir = self.cfg.directory
        private_dir(self.dir, dedicated=True)
        for stale in self.dir.glob("*.tmp"):  # a segment never renamed into place was never acknowledged
            stale.unlink()
        self._segments: deque[tuple[Path, int]] = deque(
            (p, p.stat().st_size) for p in sorted(self.dir.glob(f"*{SUFFIX}"))
        )
        self._seq = int(self._segments[-1][0].stem) + 1 if self._segments else 0
        self.bytes = sum(n for _, n in self._segments)
        self._waiters = IdWaiters()
        self._retry_at = 0.0
        self._delay = self.cfg.retry_initial_s
        self.spooled = 0
        self.drained = 0
        self._outage_since: float | None = None
        if self._segments:
            log.warning("database spool: %d segment(s) (%d bytes) left by a previous run, draining", len(self._segments), self.bytes)

    @property
    def segments(self) -> int:
        return len(self._segments)

    def expect(self, event_ids: Iterable[str]) -> asyncio.Future[None]:
        """A future resolved once each id is committed or fsynced into the spool."""
        return self._waiters.expect(event_ids)

    async def _spool(self, batch: Sequence[Event]) -> None:
        lines = [json.dumps(e.to_dict(), separators=(",", ":"), default=str) for e in batch]
        path = self.dir / f"{self._seq:016d}{SUFFIX}"
        self._seq += 1
        n = await asyncio.to_thread(_write_segment, path, lines)
        self._segments.append((path, n))
        self.bytes += n
        self.spooled += len(batch)
        self._waiters.done(e.event_id for e in batch)

    def _failed(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self.cfg.retry_max_s)
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.error("database unavailable (%s: %s): spooling events to %s", type(exc).__name__, exc, self.dir)

    def _recovered(self) -> None:
        self._delay = self.cfg.retry_initial_s
        if self._outage_since is not None and not self._segments:
            log.warning(
                "database back after %.1f s: spool drained (%d events spooled in all)",
                time.monotonic() - self._outage_since,
                self.spooled,
            )
            self._outage_since = None

    async def _write(self, batch: Sequence[Event]) -> bool:
        try:
            await self.writer.write(batch)
        except Exception as exc:
            self._failed(exc)
            return False
        self._waiters.done(e.event_id for e in batch)
        self._recovered()
        return True

    async def drain(self) -> bool:
        """Write spooled segments, oldest first, until one fails; True when the spool is empty."""
        while self._segments:
            path, n = self._segments[0]
            events = await asyncio.to_thread(_read_segment, path)
            try:
                await self.writer.write(events)
            except Exception as exc:
                self._failed(exc)
                return False
            self._segments.popleft()
            self.bytes -= n
            self.drained += len(events)
            await asyncio.to_thread(path.unlink)
            self._recovered()
        return True

    async def _take(self, sub: Subscription[Any], timeout_s: float | None) -> list[Event]:
        if timeout_s is None:
            return await sub.get_batch(self.writer.batch_size)
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                return await sub.get_batch(self.writer.batch_size)
        except TimeoutError:
            return []

    async def run(self, sub: Subscription[Any]) -> None:
        """Write (or spool) everything `sub` delivers; returns once it is closed, drained and
        (if the database answers) the spool is empty."""
        closed = False
        while True:
            if self._segments and time.monotonic() >= self._retry_at:
                await self.drain()
            if closed:
                return
            if self.bytes >= self.cfg.max_bytes:
                await asyncio.sleep(max(0.01, self._retry_at - time.monotonic()))
                continue
            wait = max(0.0, self._retry_at - time.monotonic()) if self._segments else None
            try:
                batch = await self._take(sub, wait)
                if batch and len(batch) < self.writer.batch_size:
                    batch.extend(sub.get_nowait_batch(self.writer.batch_size - len(batch)))
            except SubscriptionClosed:
                closed = True
                continue
            if not batch:
                continue
            if self._segments or not await self._write(batch):
                await self._spool(batch)  # keep order behind what is already spooled
