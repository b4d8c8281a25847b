"""Outbox of one camera-group actor in PostgreSQL: the same ordered, acknowledged outbox as
`actors.spool` (SQLite on the actor's node), kept off the node, so that a group restarted on
another node after its node died serves the unacknowledged events of the dead one, with the
same sequence numbers, ids and snapshots: nothing lost, nothing numbered twice.

Why PostgreSQL (and not Redis streams or NATS JetStream, which also run here): a cluster's
servers share PostgreSQL already; an append, its sequence numbers and the owner check commit
in one transaction, fsync'd; acknowledged rows are deleted, so the table holds only what the
server has not committed yet (seconds of events in normal operation).

Fencing: opening the outbox takes it over (`epoch` + 1). An append by an older owner (an
actor cut off from the cluster but still running) finds its epoch superseded and raises
`OutboxFenced` instead of numbering events that the new owner numbers too.

Synchronous (psycopg): called from the actor's event loop exactly where the SQLite outbox is;
a loopback or LAN commit takes about a millisecond, a few times a second per camera.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from smartcity.actors.spool import SpoolFull, envelope_from_row
from smartcity.core.errors import ValidationFailed
from smartcity.core.events import Event, EventEnvelope

log = logging.getLogger(__name__)

_LOCK_KEY = 0x5C0B0C5  # serialises the CREATE TABLEs of actors that start together
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS actor_outbox (grp TEXT NOT NULL, seq BIGINT NOT NULL, body TEXT NOT NULL,"
    " evidence BYTEA, PRIMARY KEY (grp, seq))",
    "CREATE TABLE IF NOT EXISTS actor_outbox_owner (grp TEXT PRIMARY KEY, epoch BIGINT NOT NULL,"
    " last_seq BIGINT NOT NULL)",
)


class OutboxFenced(Exception):
    """A newer actor took this group's outbox over: this one must stop producing."""


class OutboxUnavailable(Exception):
    """PostgreSQL cannot be reached: the events were not recorded (the caller keeps them)."""


class PostgresOutbox:
    """The outbox of group `group` in the database at `dsn` (a libpq connection string)."""

    def __init__(self, dsn: str, group: str, *, max_events: int = 1_000_000) -> None:
        self.group = group
        self.max_events = max_events
        self.unreadable = 0
        self._dsn = dsn
        self._lock = threading.Lock()
        self._db = self._connect()
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            for ddl in _SCHEMA:
                self._db.execute(ddl)
            row = self._db.execute(
                "INSERT INTO actor_outbox_owner (grp, epoch, last_seq) VALUES (%s, 1, 0) ON CONFLICT (grp)"
                " DO UPDATE SET epoch = actor_outbox_owner.epoch + 1 RETURNING epoch, last_seq",
                (group,),
            ).fetchone()
            assert row is not None
            self.epoch, self._last_seq = int(row[0]), int(row[1])
            count = self._db.execute("SELECT COUNT(*) FROM actor_outbox WHERE grp = %s", (group,)).fetchone()
            self._pending = int(count[0]) if count else 0

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(
            self._dsn,
            autocommit=True,
            connect_timeout=5,
            application_name=f"smartcity-outbox:{self.group}"[:63],
        )

    def _usable(self) -> None:
        """Reconnect after the database went away (a restart, a fail-over); OutboxUnavailable if
        it is still away."""
        import psycopg

        if not self._db.closed and not self._db.broken:
            return
        try:
            self._db = self._connect()
        except psycopg.OperationalError as exc:
            raise OutboxUnavailable(f"outbox of {self.group}: {exc}") from exc

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def pending(self) -> int:
        return self._pending

    def append(
        self, events: Sequence[Event], *, evidence: Mapping[str, bytes] | None = None, force: bool = False
    ) -> list[int]:
        """Persist events in order (with their snapshots by event id); their sequence numbers.

        Raises SpoolFull at capacity unless `force`, OutboxFenced when a newer actor owns the group.
        """
        if not events:
            return []
        import psycopg

        with self._lock:
            if not force and self._pending + len(events) > self.max_events:
                raise SpoolFull(f"outbox of {self.group} holds {self._pending} unacknowledged events")
            self._usable()
            try:
                last = self._append(events, evidence)
            except psycopg.OperationalError as exc:  # nothing committed: the caller keeps the events
                raise OutboxUnavailable(f"outbox of {self.group}: {exc}") from exc
            seqs = list(range(last - len(events) + 1, last + 1))
            self._last_seq = last
            self._pending += len(events)
            return seqs

    def _append(self, events: Sequence[Event], evidence: Mapping[str, bytes] | None) -> int:
        with self._db.transaction():
            row = self._db.execute(
                "UPDATE actor_outbox_owner SET last_seq = last_seq + %s WHERE grp = %s AND epoch = %s"
                " RETURNING last_seq",
                (len(events), self.group, self.epoch),
            ).fetchone()
            if row is None:
                raise OutboxFenced(
                    f"outbox of {self.group} was taken over by a newer actor (epoch > {self.epoch})"
                )
            last = int(row[0])
            seqs = range(last - len(events) + 1, last + 1)
            with self._db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO actor_outbox (grp, seq, body, evidence) VALUES (%s, %s, %s, %s)",
                    [
                        (self.group, seq, _body(e), evidence.get(e.event_id) if evidence else None)
                        for seq, e in zip(seqs, events, strict=True)
                    ],
                )
        return last

    def read(self, after: int, limit: int) -> list[EventEnvelope]:
        """Up to `limit` unacknowledged events with seq > after, in order (unreadable rows are
        logged, counted and removed, as in the SQLite outbox)."""
        with self._lock:
            self._usable()
            rows = self._db.execute(
                "SELECT seq, body, evidence FROM actor_outbox WHERE grp = %s AND seq > %s ORDER BY seq LIMIT %s",
                (self.group, after, limit),
            ).fetchall()
        out: list[EventEnvelope] = []
        bad: list[int] = []
        for seq, body, evidence in rows:
            try:
                out.append(
                    envelope_from_row(
                        int(seq), json.loads(body), None if evidence is None else bytes(evidence)
                    )
                )
            except (ValidationFailed, ValueError, TypeError) as exc:
                log.error("outbox %s: event %d unreadable, dropped: %s", self.group, seq, exc)
                bad.append(int(seq))
        if bad:
            with self._lock:
                cur = self._db.execute(
                    "DELETE FROM actor_outbox WHERE grp = %s AND seq = ANY(%s)", (self.group, bad)
                )
                self._pending -= cur.rowcount
                self.unreadable += cur.rowcount
        return out

    def ack(self, upto: int) -> int:
        """Forget every event with seq <= upto (committed by the server). Returns how many."""
        with self._lock:
            self._usable()
            cur = self._db.execute(
                "DELETE FROM actor_outbox WHERE grp = %s AND seq <= %s", (self.group, upto)
            )
            n: int = cur.rowcount
            self._pending = max(0, self._pending - n)
            return n

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _body(event: Event) -> str:
    data: dict[str, Any] = event.to_dict()
    return json.dumps(data, separators=(",", ":"))
