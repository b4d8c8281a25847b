"""Leader election among the servers of a cluster: a PostgreSQL session-level advisory lock,
held by the leader on a connection of its own, plus a fencing epoch.

- A follower tries `pg_try_advisory_lock` every `interval_s`. The one that gets it bumps the
  epoch in `cluster_leader` (the fencing token: logged, in health, in the leader row), waits
  `2 x interval_s + 0.5` s (the longest an old leader whose session the server ended, by
  pg_terminate_backend or a restart, takes to notice and stop), checks it still holds the lock,
  runs its duties (`on_elected`) and records itself as the leader once they run.
- The leader checks its lock connection every `interval_s` (`SELECT 1`, bounded by `interval_s`).
  A failed check means the lock may be gone: it steps down at once (`on_deposed`) and competes
  again.
- A leader killed with SIGKILL closes its socket: PostgreSQL ends the session and frees the
  lock at once, and a follower takes over within `interval_s`. A leader cut off from the
  database (a partition, a machine that froze) is found dead by the server's TCP keepalives,
  which the lock session sets to at least `3 x interval_s + 3` s, while the cut-off leader stops
  itself within `2 x interval_s` of its last good check: the old leader is gone before the new
  one is elected. What a deposed leader might still touch is safe anyway: pulls and acknowledgements
  are idempotent, an actor started again takes its group's outbox over (`actors.pg_outbox`
  epoch), alert deliveries are claimed under leases with SKIP LOCKED and carry idempotency
  keys, and incident ids derive from their first event.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from smartcity.core.aio import raise_if_cancelling, wait_for

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x5C17_1EAD  # one lock per database: the servers sharing it form one cluster
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cluster_leader (id INT PRIMARY KEY CHECK (id = 1), epoch BIGINT NOT NULL,"
    " server_id TEXT NOT NULL, since TIMESTAMPTZ NOT NULL DEFAULT now())"
)
_DDL_LOCK = 0x5C17_0DD1  # serialises the CREATE TABLE of servers that start together

Connect = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Term:
    """One leadership: who, under which fencing epoch."""

    server_id: str
    epoch: int


class LeaderElection:
    """Runs until cancelled; `on_elected(term)` starts the leader's duties, `on_deposed()` stops them
    (also called when the election stops while leading)."""

    def __init__(
        self,
        connect: Connect,
        server_id: str,
        *,
        on_elected: Callable[[Term], Awaitable[None]],
        on_deposed: Callable[[], Awaitable[None]],
        interval_s: float = 1.0,
    ) -> None:
        self._connect = connect
        self.server_id = server_id
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self.interval_s = interval_s
        self.term: Term | None = None
        self.terms = 0  # how many times this server was elected
        self._conn: Any = None
        self._failing = False

    @property
    def leader(self) -> bool:
        return self.term is not None

    async def run(self) -> None:
        """Compete, lead, check; until cancelled. The owner then calls `release()`."""
        while True:
            raise_if_cancelling()
            try:
                if self.term is None:
                    await self._try_lead()
                elif not await self._still_leading():
                    await self._step_down("lost the leader lock")
                if self._failing:
                    self._failing = False
                    log.warning("cluster: election connection recovered")
            except (OSError, TimeoutError, ConnectionError) as exc:
                await self._lost_connection(exc)
            except Exception as exc:  # asyncpg's errors: the database refused or went away
                if type(exc).__module__.startswith("asyncpg"):
                    await self._lost_connection(exc)
                else:
                    raise
            await asyncio.sleep(self.interval_s)

    async def _lost_connection(self, exc: BaseException) -> None:
        if not self._failing:
            self._failing = True
            log.error("cluster: election connection failing: %s: %s", type(exc).__name__, exc)
        await self._close()
        if self.term is not None:
            await self._step_down("database unreachable")

    async def _session(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            conn = await wait_for(self._connect(), max(5.0, self.interval_s))
            try:
                # the server finds a vanished leader (no FIN: a partition) only after these, which
                # is later than the leader's own check fails (2 x interval): see the module doc
                idle = max(3, math.ceil(3 * self.interval_s))
                await conn.execute(
                    f"SET tcp_keepalives_idle = {idle}; SET tcp_keepalives_interval = 1;"
                    " SET tcp_keepalives_count = 3"
                )
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
                    if await conn.fetchval("SELECT to_regclass('cluster_leader')") is None:
                        await conn.execute(_SCHEMA)
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._conn

    async def _try_lead(self) -> None:
        conn = await self._session()
        got = await wait_for(conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK_KEY), self.interval_s * 5)
        if not got:
            return
        epoch = int(
            await conn.fetchval(
                "INSERT INTO cluster_leader (id, epoch, server_id) VALUES (1, 1, $1) ON CONFLICT (id) DO UPDATE"
                " SET epoch = cluster_leader.epoch + 1, server_id = $1, since = now() RETURNING epoch",
                f"{self.server_id} (starting)",
            )
        )
        term = Term(self.server_id, epoch)
        log.warning("cluster: %s elected leader (epoch %d); starting fusion, dispatch and the camera actors",
                    self.server_id, epoch)
        # an old leader whose session ended under it checks within interval + its timeout
        await asyncio.sleep(2 * self.interval_s + 0.5)
        await wait_for(conn.fetchval("SELECT 1"), self.interval_s * 5)  # still ours: the session lives
        self.term = term
        self.terms += 1
        try:
            await self._on_elected(term)
        except BaseException:
            await self._step_down("leader duties failed to start")
            raise
        await conn.execute(
            "UPDATE cluster_leader SET server_id = $1, since = now() WHERE id = 1 AND epoch = $2", self.server_id, epoch
        )
        log.warning("cluster: %s leads (epoch %d)", self.server_id, epoch)

    async def _still_leading(self) -> bool:
        conn = self._conn
        if conn is None or conn.is_closed():  # a new session would not hold the lock
            log.error("cluster: the leader's database session ended")
            return False
        try:
            await wait_for(conn.fetchval("SELECT 1"), self.interval_s)
        except (TimeoutError, OSError, ConnectionError) as exc:
            log.error("cluster: leader check failed: %s: %s", type(exc).__name__, exc)
            await self._close()
            return False
        return True

    async def _step_down(self, why: str) -> None:
        term, self.term = self.term, None
        if term is None:
            return
        log.error("cluster: %s steps down (epoch %d): %s", self.server_id, term.epoch, why)
        await self._on_deposed()
        # a session that may still hold the lock must not keep it while this server follows
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await wait_for(conn.close(), 2.0)
            except Exception:
                conn.terminate()

    async def release(self) -> None:
        """Stopping (after `run` was cancelled): the duties stop first, then the lock goes with
        the session, and a follower takes over."""
        if self.term is not None:
            term, self.term = self.term, None
            log.info("cluster: %s hands the leadership over (epoch %d)", self.server_id, term.epoch)
            try:
                await self._on_deposed()
            finally:
                await self._close()
        else:
            await self._close()
