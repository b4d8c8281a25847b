"""The bridge's side of evidence (no Ray): a pulled snapshot is written through the evidence sink
before its event is handed on, and the event points at the complete file; a snapshot that
cannot be written leaves its event stored without one, counted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from smartcity.actors.runtime import unpack_envelopes
from smartcity.core.events import CameraHealth, CameraState, EventEnvelope, RuleEvent
from smartcity.storage.db import Database
from smartcity.storage.evidence import EvidenceStore


class ReadOnlyDisk:
    """An evidence sink whose disk refuses every write."""

    async def save(self, event: RuleEvent, jpeg: bytes) -> Path:
        raise OSError(30, "Read-only file system")


def _batch() -> list[EventEnvelope]:
    shot = RuleEvent(camera_id="c", t=1.0, rule_id="r", rule_type="dwell", kind="dwell_exceeded")
    plain = RuleEvent(camera_id="c", t=2.0, rule_id="r", rule_type="dwell", kind="dwell_exceeded")
    health = CameraHealth(camera_id="c", t=3.0, group="g", state=CameraState.ONLINE, seq=3)
    return [EventEnvelope(shot, 1, b"\xff\xd8jpeg"), EventEnvelope(plain, 2), EventEnvelope(health, 3)]


async def test_snapshots_are_written_before_their_events_are_handed_on(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/e.db")  # the store's lookups are not used here
    try:
        batch = _batch()
        events, lost = await unpack_envelopes(batch, EvidenceStore(tmp_path / "evidence", db))
    finally:
        await db.dispose()
    assert lost == 0
    assert [e.event_id for e in events] == [env.event.event_id for env in batch]
    shot = events[0]
    assert isinstance(shot, RuleEvent) and shot.evidence_path is not None
    assert await asyncio.to_thread(Path(shot.evidence_path).read_bytes) == b"\xff\xd8jpeg"
    assert events[1:] == [batch[1].event, batch[2].event]  # nothing attached to the others


async def test_a_snapshot_that_cannot_be_written_leaves_its_event_without_one() -> None:
    batch = _batch()
    events, lost = await unpack_envelopes(batch, ReadOnlyDisk())
    assert lost == 1 and events == [env.event for env in batch]
    events, lost = await unpack_envelopes(batch, None)
    assert lost == 1 and events == [env.event for env in batch]
