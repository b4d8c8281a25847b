"""Evidence clips on the server side: the bridge files a clip pulled from an actor next to its
event's still (and does not register it as an event), finds it through the still, and retention
deletes it with the still."""

from __future__ import annotations

import time
from pathlib import Path

from smartcity.actors.clip import clip_event_id
from smartcity.actors.runtime import unpack_envelopes
from smartcity.core.events import EventEnvelope, EvidenceClip, RuleEvent, Severity
from smartcity.storage.db import Database
from smartcity.storage.evidence import EvidenceStore, has_clip
from smartcity.storage.retention import DAY_S, purge_expired
from smartcity.storage.writer import EventWriter

CLIP = b"\x1a\x45\xdf\xa3 a webm"


def _fall(t: float) -> RuleEvent:
    return RuleEvent(camera_id="hall", t=t, rule_id="f", rule_type="fall", kind="fall", severity=Severity.CRITICAL)


def _clip_of(ev: RuleEvent) -> EvidenceClip:
    return EvidenceClip(
        event_id=clip_event_id(ev.event_id), camera_id=ev.camera_id, t=ev.t, of_event_id=ev.event_id,
        kind=ev.kind, start_t=ev.t - 5, end_t=ev.t + 5, frames=50,
    )


async def test_clip_is_filed_next_to_its_still_found_and_expired_with_it(db: Database, tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "evidence", db)
    now = time.time()
    fall = _fall(now - 40 * DAY_S)
    # the event with its still first, its clip seconds later in another pull
    [stored], lost = await unpack_envelopes([EventEnvelope(fall, 1, b"\xff\xd8 jpeg")], store)
    assert lost == 0 and isinstance(stored, RuleEvent) and stored.evidence_path
    await EventWriter(db).write([stored])
    assert await store.find_clip(fall.event_id) is None and not await has_clip(db, fall.event_id)
    delivered, lost = await unpack_envelopes(
        [EventEnvelope(_clip_of(fall), 2, CLIP), EventEnvelope(_clip_of(_fall(now)), 3, None)], store
    )
    assert delivered == [] and lost == 1  # filed, not registered; a clip without bytes is lost
    found = await store.find_clip(fall.event_id)
    assert found is not None and found.camera_id == "hall" and found.path.read_bytes() == CLIP
    assert found.path == Path(stored.evidence_path).with_suffix(".webm")
    assert found.path.stat().st_mode & 0o077 == 0  # the server user's only, like the stills
    assert await has_clip(db, fall.event_id)
    report = await purge_expired(db, retention_days=30, now=now, evidence=store)
    assert report.events == 1 and report.evidence_files == 2
    assert not found.path.exists() and not found.path.with_suffix(".jpg").exists()
    assert await store.find_clip(fall.event_id) is None
