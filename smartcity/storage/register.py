"""Reading the register for the API: rule events with keyset pagination, count series."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from smartcity.storage.db import Database
from smartcity.storage.tables import counts, events


async def page_events(
    db: Database,
    *,
    camera_ids: Sequence[str] | None,
    rule_id: str | None = None,
    kind: str | None = None,
    object_class: str | None = None,
    since: float | None = None,
    until: float | None = None,
    types: Sequence[str] = ("rule_event",),
    after: tuple[float, str] | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Newest first; `after` is the (t, event_id) of the last row of the previous page."""
    q = sa.select(events).where(events.c.type.in_(list(types)))
    if camera_ids is not None:
        q = q.where(events.c.camera_id.in_(list(camera_ids)))
    if rule_id is not None:
        q = q.where(events.c.rule_id == rule_id)
    if kind is not None:
        q = q.where(events.c.kind == kind)
    if object_class is not None:
        q = q.where(events.c.object_class == object_class)
    if since is not None:
        q = q.where(events.c.t >= since)
    if until is not None:
        q = q.where(events.c.t < until)
    if after is not None:
        t, eid = after
        q = q.where(sa.or_(events.c.t < t, sa.and_(events.c.t == t, events.c.event_id < eid)))
    q = q.order_by(events.c.t.desc(), events.c.event_id.desc()).limit(limit)
    async with db.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(q)]


async def count_series(
    db: Database,
    *,
    camera_id: str,
    rule_id: str | None,
    object_class: str | None,
    direction: str | None,
    bucket_s: int,
    since: float,
    until: float,
) -> list[dict[str, Any]]:
    """Crossings per (bucket start, class, direction), rolled up from the stored buckets."""
    q = sa.select(counts).where(
        counts.c.camera_id == camera_id, counts.c.bucket_start >= since, counts.c.bucket_start < until
    )
    if rule_id is not None:
        q = q.where(counts.c.rule_id == rule_id)
    if object_class is not None:
        q = q.where(counts.c.object_class == object_class)
    if direction is not None:
        q = q.where(counts.c.direction == direction)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    agg: dict[tuple[float, str, str, str], int] = {}
    for r in rows:
        start = float(r.bucket_start) - float(r.bucket_start) % bucket_s
        key = (start, r.rule_id, r.object_class, r.direction)
        agg[key] = agg.get(key, 0) + int(r.n)
    return [
        {"bucket_start": k[0], "rule_id": k[1], "object_class": k[2], "direction": k[3], "n": n}
        for k, n in sorted(agg.items())
    ]

