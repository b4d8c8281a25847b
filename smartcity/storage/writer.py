"""The batched, idempotent event writer: bus subscription -> one transaction per batch -> waiters.

Events are de-duplicated by `event_id`, so a redelivery after an actor restart or a bridge
retry is harmless (what goes to which table: smartcity.storage.bulk). A batch that fails is
retried with backoff until it commits: nothing is dropped, and while the writer retries the
bus blocks the producers (its subscription uses the BLOCK overflow policy). Callers that must
know an event is durable (the Ray bridge acknowledges actors only then) register
`expect(ids)` before publishing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from smartcity.core.bus import Subscription
from smartcity.core.errors import SubscriptionClosed
from smartcity.core.events import Event
from smartcity.storage.bulk import SortedBatch, bulk_writer_for
from smartcity.storage.db import Database

log = logging.getLogger(__name__)


class _Waiter:
    __slots__ = ("future", "pending")

    def __init__(self, future: asyncio.Future[None], pending: set[str]) -> None:
        self.future = future
        self.pending = pending


class EventWriter:
    """Writes events in batches, one transaction each; idempotent by event id.

    Stats: `committed` (rows newly inserted into `events` plus count and incident upserts),
    `duplicates` (events already stored, or repeated within a batch), `batches` (committed
    transactions), `failures` (failed attempts), `last_error` (text of the latest failure).
    """

    def __init__(
        self,
        db: Database,
        *,
        batch_size: int = 5000,
        max_wait_ms: float = 20.0,
        remember_ids: int = 10_000,
        max_backoff_s: float = 5.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must be >= 0")
        self.db = db
        self.batch_size = batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_backoff_s = max_backoff_s
        self.committed = 0
        self.duplicates = 0
        self.batches = 0
        self.failures = 0
        self.last_error: str | None = None
        self.failing = False
        self._outage = (0.0, 0)  # (monotonic start, failures before it) of the current outage
        self._backend = bulk_writer_for(db)
        self._waiters: dict[str, list[_Waiter]] = {}
        # Ids committed lately, so that an `expect()` that comes just after the commit resolves
        # (a redelivered id that is expected first resolves as a duplicate instead). 10,000 ids
        # hold ~1.3 MB; 100,000 (~13 MB) took the demo's ~3.5 events a second 8 hours to fill,
        # so the server grew all that time (bench/soak.py).
        self._remember = remember_ids
        self._recent: set[str] = set()
        self._recent_order: deque[str] = deque()

    def __repr__(self) -> str:
        return (
            f"<EventWriter committed={self.committed} duplicates={self.duplicates} "
            f"batches={self.batches} failures={self.failures}>"
        )

    @property
    def waiting(self) -> int:
        """How many event ids some `expect()` future is still waiting for."""
        return len(self._waiters)

    # ---------------------------------------------------------------- waiting for durability

    def expect(self, event_ids: Iterable[str]) -> asyncio.Future[None]:
        """A future resolved once every id is committed (or known as a duplicate) by this writer.

        Register before publishing. Ids committed before the call count only while they are
        among the last `remember_ids` committed. Cancelling the future drops the registration.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        pending = {eid for eid in event_ids if eid not in self._recent}
        if not pending:
            future.set_result(None)
            return future
        waiter = _Waiter(future, pending)
        for eid in pending:
            self._waiters.setdefault(eid, []).append(waiter)
        future.add_done_callback(lambda _f: self._forget(waiter))
        return future

    def _forget(self, waiter: _Waiter) -> None:
        for eid in waiter.pending:
            waiters = self._waiters.get(eid)
            if waiters is not None:
                try:
                    waiters.remove(waiter)
                except ValueError:
                    pass
                if not waiters:
                    del self._waiters[eid]
        waiter.pending = set()

    def _committed_ids(self, ids: list[str]) -> None:
        if self._remember:
            recent = self._recent
            fresh = [eid for eid in ids if eid not in recent]  # a redelivered id is kept once
            recent.update(fresh)
            self._recent_order.extend(fresh)
            overflow = len(self._recent_order) - self._remember
            if overflow > 0:
                popleft, discard = self._recent_order.popleft, self._recent.discard
                for _ in range(overflow):
                    discard(popleft())
        if not self._waiters:
            return
        for eid in ids:
            waiters = self._waiters.pop(eid, None)
            if waiters is None:
                continue
            for waiter in waiters:
                waiter.pending.discard(eid)
                if not waiter.pending and not waiter.future.done():
                    waiter.future.set_result(None)

    # ---------------------------------------------------------------- writing

    async def write(self, events: Sequence[Event]) -> int:
        """Write `events` in one transaction; returns how many `events` rows were new.

        Raises the database error (no retry here); resolves `expect()` waiters on success.
        """
        batch = SortedBatch.of(events)
        try:
            inserted = await self._backend.write(batch, time.time())
        except Exception as exc:
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise
        self._account(batch, inserted)
        return inserted

    def _account(self, batch: SortedBatch, inserted: int) -> None:
        self.batches += 1
        self.committed += inserted + len(batch.counts) + len(batch.incidents)
        self.duplicates += batch.repeated + (len(batch.events) - inserted)
        self._committed_ids(batch.ids)

    async def _write_until_committed(self, events: list[Event]) -> None:
        """Retry the batch with exponential backoff until it commits (logged once each way)."""
        batch = SortedBatch.of(events)
        delay = 0.05
        while True:
            try:
                inserted = await self._backend.write(batch, time.time())
            except Exception as exc:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                if not self.failing:
                    self.failing = True
                    self._outage = (time.monotonic(), self.failures - 1)
                    log.error(
                        "event writer: database write failed, retrying with backoff "
                        "(%d events held, producers blocked): %s",
                        len(events),
                        self.last_error,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            if self.failing:
                self.failing = False
                since, failures_before = self._outage
                log.warning(
                    "event writer: database writes recovered after %.1f s and %d failed attempt(s)",
                    time.monotonic() - since,
                    self.failures - failures_before,
                )
            self._account(batch, inserted)
            return

    async def _next_batch(self, sub: Subscription[Event]) -> list[Event]:
        """At least one event, then whatever arrives within max_wait, up to batch_size."""
        batch = await sub.get_batch(self.batch_size)
        if len(batch) >= self.batch_size or self.max_wait_s <= 0:
            return batch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while len(batch) < self.batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    first = await sub.get()
            except (TimeoutError, SubscriptionClosed):
                break
            batch.append(first)
            batch.extend(sub.get_nowait_batch(self.batch_size - len(batch)))
        return batch

    async def run(self, sub: Subscription[Any]) -> None:
        """Write everything `sub` delivers; returns once it is closed and drained."""
        while True:
            try:
                batch = await self._next_batch(sub)
            except SubscriptionClosed:
                return
            await self._write_until_committed(batch)
