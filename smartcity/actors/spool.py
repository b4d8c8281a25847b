"""Durable, ordered outbox of one camera-group actor (SQLite file on the actor's node).

An event is appended (and fsync'd by SQLite) before anyone can pull it; it is removed
only when the server acknowledges that it is committed to the database. A restarted
actor reopens the same file and serves the unacknowledged events again with the same
sequence numbers and ids, so a pull cursor stays valid across an actor restart and
nothing produced before a crash is lost. Pure stdlib: no Ray, no asyncio.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartcity.core.files import private_dir, touch_private


@dataclass(frozen=True, slots=True)
class SpooledEvent:
    seq: int
    body: dict[str, Any]


class SpoolFull(Exception):
    """The spool holds `max_events` unacknowledged events."""


class EventSpool:
    def __init__(self, path: Path, *, max_events: int = 1_000_000) -> None:
        private_dir(path.parent)  # events of the cameras: for the server's user only
        touch_private(path)  # SQLite gives -wal and -shm the database file's mode
        self.path = path
        self.max_events = max_events
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
        row = self._db.execute("SELECT MAX(seq) FROM spool").fetchone()
        meta = self._db.execute("SELECT v FROM meta WHERE k='last_seq'").fetchone()
        self._last_seq = max(row[0] or 0, meta[0] if meta else 0)
        self._pending = self._db.execute("SELECT COUNT(*) FROM spool").fetchone()[0]

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def pending(self) -> int:
        return self._pending

    def append(self, bodies: list[dict[str, Any]], *, force: bool = False) -> list[int]:
        """Persist events in order and return their sequence numbers.

        Raises SpoolFull when the spool is at capacity, unless `force` (events that must
        never be dropped may exceed the bound; the caller decides).
        """
        if not bodies:
            return []
        with self._lock:
            if not force and self._pending + len(bodies) > self.max_events:
                raise SpoolFull(f"spool {self.path.name} holds {self._pending} unacknowledged events")
            first = self._last_seq + 1
            seqs = list(range(first, first + len(bodies)))
            rows = []
            for seq, body in zip(seqs, bodies, strict=True):
                body = dict(body)
                body["seq"] = seq
                rows.append((seq, json.dumps(body, separators=(",", ":"))))
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO spool (seq, body) VALUES (?, ?)", rows)
            self._db.execute(
                "INSERT INTO meta (k, v) VALUES ('last_seq', ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
                (seqs[-1],),
            )
            self._db.execute("COMMIT")
            self._last_seq = seqs[-1]
            self._pending += len(bodies)
            return seqs

    def read(self, after: int, limit: int) -> list[SpooledEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM spool WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        return [SpooledEvent(seq, json.loads(body)) for seq, body in rows]

    def ack(self, upto: int) -> int:
        """Forget every event with seq <= upto (committed by the server). Returns how many."""
        with self._lock:
            cur = self._db.execute("DELETE FROM spool WHERE seq <= ?", (upto,))
            n = cur.rowcount
            self._pending -= n
            return n

    def close(self) -> None:
        with self._lock:
            self._db.close()
