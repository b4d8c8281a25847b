"""The cluster's event feed: every server appends the events its own bus publishes (the leader:
camera events, incidents, console alerts; any server: the incident moves its operators make) to
one ordered table in PostgreSQL, and publishes the other servers' events on its bus, in order,
marked remote (`core.bus`). So each server's live subscribers see every event once, in the
order it was appended: per camera, the order its actor numbered them.

Why PostgreSQL (rather than Redis streams or NATS, which run here too): every server already
depends on it and nothing more has to be run, secured and backed up for a city; an append is
durable and ordered in one transaction; a server whose connection drops (or that restarts within
`retention_s`) reads on from its position instead of losing what was said meanwhile, which core
NATS and plain LISTEN/NOTIFY payloads would not give. NOTIFY only wakes the readers at once; the
rows carry the events (a NOTIFY payload is limited to 8 kB). A few hundred events per second of a
city are small work for PostgreSQL, batched as they are here.

Order: positions come from one counter row updated in the appending transaction, so appends are
serialised, positions have no gaps and commit in position order: a reader never skips a row
that commits later under a smaller position. Rows older than `retention_s` are deleted.

Nothing lost on the way out: `flushed()` resolves once everything this server's bus queued for
the feed so far is appended; the leader's bridge waits for it (with the writer and fusion)
before it acknowledges a batch to its camera actor, so that a leader killed after an
acknowledgement has already fanned the batch out, and one killed before leaves it in the
actor's outbox for the next leader (whose repeats the buses drop by event id).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from smartcity.core.aio import cancel_and_wait, raise_if_cancelling, wait_for
from smartcity.core.bus import EventBus, Overflow, Subscription
from smartcity.core.errors import SubscriptionClosed, ValidationFailed
from smartcity.core.events import (
    CameraHealth,
    ConsoleAlert,
    CountBucket,
    Event,
    Incident,
    RuleEvent,
    event_from_dict,
)
from smartcity.core.supervisor import TaskSupervisor

log = logging.getLogger(__name__)

# what live subscribers, status boards and the leader's channels read
FEED_TYPES: tuple[type[Event], ...] = (RuleEvent, CameraHealth, CountBucket, Incident, ConsoleAlert)
CHANNEL = "smartcity_feed"
_DDL_LOCK = 0x5C17_0DD2
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cluster_feed (pos BIGINT PRIMARY KEY, origin TEXT NOT NULL,"
    " at TIMESTAMPTZ NOT NULL DEFAULT now(), body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS cluster_feed_at ON cluster_feed (at)",
    "CREATE TABLE IF NOT EXISTS cluster_feed_head (id INT PRIMARY KEY CHECK (id = 1), pos BIGINT NOT NULL)",
    "INSERT INTO cluster_feed_head (id, pos) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
)
PRUNE_EVERY_S = 30.0

Connect = Callable[[], Awaitable[Any]]


class ClusterFeed:
    """This server's side of the feed: `start()` under a supervisor, `stop()` after the bus's
    producers have stopped (what is queued is appended first, within the timeout)."""

    def __init__(
        self,
        connect: Connect,
        bus: EventBus,
        server_id: str,
        *,
        types: Sequence[type[Event]] = FEED_TYPES,
        poll_s: float = 1.0,
        batch: int = 1000,
        retention_s: float = 600.0,
        queue: int = 50_000,
    ) -> None:
        self._connect = connect
        self.bus = bus
        self.server_id = server_id
        self.types = tuple(types)
        self.poll_s = poll_s
        self.batch = batch
        self.retention_s = retention_s
        self._queue = queue
        self._sub: Subscription[Event] | None = None
        self._out_task: asyncio.Task[None] | None = None
        self._appended = 0
        self._barriers: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self.position = 0  # last feed position read
        self.sent = 0
        self.received = 0
        self.missed = 0  # positions pruned before this server read them
        self.unreadable = 0
        self._failing: set[str] = set()
        self._watchers: list[tuple[type[Event], Callable[[Event], None]]] = []
        self._pending: list[Event] = []  # taken from the queue, not appended yet
        self._next_prune = 0.0

    async def start(self, supervisor: TaskSupervisor) -> None:
        """Create the tables if needed, read on from the current end (live events only), and
        start the tasks that append and read."""
        conn = await self._connect()
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
                # only where missing: CREATE INDEX IF NOT EXISTS would lock the table that the other
                # servers append to, and deadlock with an append holding the head row
                if await conn.fetchval("SELECT to_regclass('cluster_feed_head')") is None:
                    for ddl in _SCHEMA:
                        await conn.execute(ddl)
            self.position = int(await conn.fetchval("SELECT pos FROM cluster_feed_head WHERE id = 1"))
        finally:
            await conn.close()
        self._sub = self.bus.subscribe(
            "cluster-feed", self.types, maxsize=self._queue, overflow=Overflow.BLOCK, remote=False
        )
        self._out_task = supervisor.start("cluster-feed-out", self._append_loop, restart=True)
        supervisor.start("cluster-feed-in", self._read_loop, restart=True)

    async def catch_up(self, timeout_s: float = 10.0) -> bool:
        """Wait until this server has read every event appended so far (a new leader, before it
        pulls from the actors: what the old leader fanned out comes first, in order). False when
        the reader did not get there within `timeout_s` (logged)."""
        conn = await wait_for(self._connect(), timeout_s)
        try:
            head = int(await conn.fetchval("SELECT pos FROM cluster_feed_head WHERE id = 1"))
        finally:
            await conn.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self._wake.set()
        while self.position < head:
            if loop.time() > deadline:
                log.error("cluster feed: still %d events behind after %.0f s", head - self.position, timeout_s)
                return False
            await asyncio.sleep(0.05)
        return True

    def watch(self, event_type: type[Event], handler: Callable[[Event], None]) -> Callable[[], None]:
        """Call `handler` (synchronous, quick) with each event of `event_type` that another server
        published, before it goes on this bus; returns the undo. A failing handler is logged."""
        entry = (event_type, handler)
        self._watchers.append(entry)
        return lambda: self._watchers.remove(entry) if entry in self._watchers else None

    def flushed(self) -> asyncio.Future[None]:
        """Resolved once every event queued for the feed until now is appended."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sub = self._sub
        target = 0 if sub is None else sub.delivered + sub.qsize()
        if self._appended >= target:
            fut.set_result(None)
        else:
            self._barriers.append((target, fut))
        return fut

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop taking events and append what is queued (bounded by `timeout_s`); call before the
        supervisor stops, after the bus's producers stopped."""
        if self._sub is None:
            return
        self._sub.close("cluster feed stopping")  # the append loop drains the queue, then ends
        task = self._out_task
        if task is None:
            return
        try:
            await wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:  # still in the actors' outboxes: the next leader fans them out
            log.error("cluster feed: %d events not appended at stop", self._sub.qsize())
            await cancel_and_wait(task)
        except Exception:
            log.exception("cluster feed failed while stopping")

    # ---- both ------------------------------------------------------------------------------
    async def _on_connection(self, what: str, step: Callable[[Any], Awaitable[None]], *, listen: bool = False) -> None:
        """Run `step(conn)` for ever on a connection of its own, reconnecting with a backoff when
        the database goes away (said once, and once when it is back); ends when the feed stops."""
        conn: Any = None
        delay = 0.1
        try:
            while True:
                raise_if_cancelling()
                try:
                    if conn is None or conn.is_closed():
                        conn = await wait_for(self._connect(), 10)
                        if listen:
                            await conn.add_listener(CHANNEL, self._notified)
                    await step(conn)
                except (asyncio.CancelledError, SubscriptionClosed):
                    raise
                except Exception as exc:  # what a step holds, it keeps for the next try
                    self._failed(what, exc)
                    if conn is not None:
                        conn.terminate()
                        conn = None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                self._recovered(what)
                delay = 0.1
        except SubscriptionClosed:  # stopping, and the queue is empty
            return
        finally:
            if conn is not None:
                conn.terminate()

    # ---- out -------------------------------------------------------------------------------
    async def _append_loop(self) -> None:
        await self._on_connection("append", self._append_step)

    async def _append_step(self, conn: Any) -> None:
        sub = self._sub
        assert sub is not None
        if not self._pending:
            self._pending = await sub.get_batch(self.batch)
        await self._append(conn, self._pending)
        self._appended += len(self._pending)
        self.sent += len(self._pending)
        self._pending = []
        self._release_barriers()
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY_S
            await conn.execute("DELETE FROM cluster_feed WHERE at < now() - make_interval(secs => $1)", self.retention_s)

    async def _append(self, conn: Any, events: Sequence[Event]) -> None:
        bodies = [json.dumps(e.to_dict(), separators=(",", ":")) for e in events]
        async with conn.transaction():
            last = int(
                await conn.fetchval("UPDATE cluster_feed_head SET pos = pos + $1 WHERE id = 1 RETURNING pos", len(bodies))
            )
            first = last - len(bodies) + 1
            await conn.execute(
                "INSERT INTO cluster_feed (pos, origin, body) SELECT p, $2, b FROM unnest($1::bigint[], $3::text[])"
                " AS t(p, b)",
                list(range(first, last + 1)),
                self.server_id,
                bodies,
            )
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(last))

    def _release_barriers(self) -> None:
        if not self._barriers:
            return
        keep = []
        for target, fut in self._barriers:
            if self._appended >= target:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((target, fut))
        self._barriers = keep

    # ---- in --------------------------------------------------------------------------------
    async def _read_loop(self) -> None:
        await self._on_connection("read", self._read_step, listen=True)

    async def _read_step(self, conn: Any) -> None:
        if await self._read_once(conn) < self.batch:
            self._wake.clear()
            try:
                await wait_for(self._wake.wait(), self.poll_s)
            except TimeoutError:
                pass

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _read_once(self, conn: Any) -> int:
        rows = await conn.fetch(
            "SELECT pos, origin, body FROM cluster_feed WHERE pos > $1 ORDER BY pos LIMIT $2", self.position, self.batch
        )
        if rows and int(rows[0]["pos"]) != self.position + 1:
            gap = int(rows[0]["pos"]) - self.position - 1
            self.missed += gap
            log.error("cluster feed: %d events were pruned before this server read them (away > %.0f s)",
                      gap, self.retention_s)
        for row in rows:
            if row["origin"] != self.server_id:
                event = self._decode(int(row["pos"]), row["body"])
                if event is not None and isinstance(event, self.types):
                    self.received += 1
                    self._tell_watchers(event)
                    await self.bus.publish(event, remote=True)
            self.position = int(row["pos"])
        return len(rows)

    def _tell_watchers(self, event: Event) -> None:
        for event_type, handler in self._watchers:
            if isinstance(event, event_type):
                try:
                    handler(event)
                except Exception:
                    log.exception("cluster feed: watcher of %s failed on %s", event_type.type, event.event_id)

    def _decode(self, pos: int, body: str) -> Event | None:
        try:
            return event_from_dict(json.loads(body))
        except (ValidationFailed, ValueError, TypeError) as exc:  # a newer server's event type
            self.unreadable += 1
            log.error("cluster feed: event at %d unreadable, skipped: %s", pos, exc)
            return None

    def _failed(self, what: str, exc: BaseException) -> None:
        if what not in self._failing:
            self._failing.add(what)
            log.error("cluster feed: %s failing, retrying: %s: %s", what, type(exc).__name__, exc)

    def _recovered(self, what: str) -> None:
        if what in self._failing:
            self._failing.discard(what)
            log.warning("cluster feed: %s recovered", what)
