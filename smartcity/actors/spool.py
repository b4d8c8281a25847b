"""Durable, ordered outbox of one camera-group actor (SQLite file on the actor's node).

An event, with the evidence snapshot taken with it, is appended (and fsync'd by SQLite) before
anyone can pull it; it is removed only when the server acknowledges that it is committed to the
database (and its snapshot written). A restarted actor reopens the same file and serves the
unacknowledged events again with the same sequence numbers, ids and snapshots, so a pull cursor
stays valid across an actor restart and nothing produced before a crash is lost. No Ray, no
asyncio: reads hand out typed `EventEnvelope`s.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from smartcity.core.errors import ValidationFailed
from smartcity.core.events import CameraHealth, Event, EventEnvelope, event_from_dict
from smartcity.core.files import private_dir, touch_private

log = logging.getLogger(__name__)

# Outboxes written before the envelope carried the snapshot base64 in the body under this key
# and the sequence number in the body: still read, so that an upgrade loses nothing.
_LEGACY_EVIDENCE_KEY = "evidence_jpeg_b64"
_LEGACY_SEQ_KEY = "seq"


class SpoolFull(Exception):
    """The spool holds `max_events` unacknowledged events."""


def envelope_from_row(seq: int, body: dict[str, Any], evidence: bytes | None) -> EventEnvelope:
    """Rebuild a spooled event; camera health carries the outbox's sequence number (ordering)."""
    legacy = body.pop(_LEGACY_EVIDENCE_KEY, None)
    if evidence is None and isinstance(legacy, str):
        evidence = base64.b64decode(legacy)
    body.pop(_LEGACY_SEQ_KEY, None)
    event = event_from_dict(body)
    if isinstance(event, CameraHealth):
        event = dataclasses.replace(event, seq=seq)
    return EventEnvelope(event, seq, evidence)


class EventSpool:
    def __init__(self, path: Path, *, max_events: int = 1_000_000) -> None:
        private_dir(path.parent)  # events and pictures of the cameras: for the server's user only
        touch_private(path)  # SQLite gives -wal and -shm the database file's mode
        self.path = path
        self.max_events = max_events
        self.unreadable = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY, body TEXT NOT NULL, evidence BLOB)")
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(spool)")}
        if "evidence" not in columns:  # an outbox of an earlier version
            self._db.execute("ALTER TABLE spool ADD COLUMN evidence BLOB")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
        row = self._db.execute("SELECT MAX(seq) FROM spool").fetchone()
        meta = self._db.execute("SELECT v FROM meta WHERE k='last_seq'").fetchone()
        self._last_seq = max(row[0] or 0, meta[0] if meta else 0)
        self._pending = int(self._db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def pending(self) -> int:
        return self._pending

    def append(
        self, events: Sequence[Event], *, evidence: Mapping[str, bytes] | None = None, force: bool = False
    ) -> list[int]:
        """Persist events in order, each with its snapshot in `evidence` (by event id), and return
        their sequence numbers.

        Raises SpoolFull when the spool is at capacity, unless `force` (events that must
        never be dropped may exceed the bound; the caller decides).
        """
        if not events:
            return []
        with self._lock:
            if not force and self._pending + len(events) > self.max_events:
                raise SpoolFull(f"spool {self.path.name} holds {self._pending} unacknowledged events")
            first = self._last_seq + 1
            seqs = list(range(first, first + len(events)))
            rows = [
                (seq, json.dumps(e.to_dict(), separators=(",", ":")), evidence.get(e.event_id) if evidence else None)
                for seq, e in zip(seqs, events, strict=True)
            ]
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO spool (seq, body, evidence) VALUES (?, ?, ?)", rows)
            self._db.execute(
                "INSERT INTO meta (k, v) VALUES ('last_seq', ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
                (seqs[-1],),
            )
            self._db.execute("COMMIT")
            self._last_seq = seqs[-1]
            self._pending += len(events)
            return seqs

    def read(self, after: int, limit: int) -> list[EventEnvelope]:
        """Up to `limit` unacknowledged events with seq > after, in order.

        A row that no longer reads as an event (written by another version) is logged, counted in
        `unreadable` and removed, so that it neither blocks the cursor nor comes back."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body, evidence FROM spool WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        out: list[EventEnvelope] = []
        bad: list[int] = []
        for seq, body, evidence in rows:
            try:
                out.append(envelope_from_row(seq, json.loads(body), evidence))
            except (ValidationFailed, ValueError, TypeError) as exc:
                log.error("spool %s: event %d unreadable, dropped: %s", self.path.name, seq, exc)
                bad.append(seq)
        if bad:
            with self._lock:
                n = self._db.executemany("DELETE FROM spool WHERE seq = ?", [(s,) for s in bad]).rowcount
                self._pending -= n
                self.unreadable += n
        return out

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
