"""The `waste` extension's database reads and writes (its own tables, through the context's connections)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from smartcity.core.jsonvalue import JsonValue
from smartcity.extensions.context import ExtensionTables

from . import tables as tb
from .bins import Bin
from .planner import Plan
from .plans import plan_from_json
from .sensors import FillReading

Series = dict[str, list[tuple[float, float]]]  # bin id -> (unix t, level) in time order


@dataclass(frozen=True, slots=True)
class StoredPlan:
    id: int
    created_at: float
    trigger: str
    day: str  # local ISO date
    body: dict[str, JsonValue]

    @property
    def plan(self) -> Plan:
        return plan_from_json(self.body)


async def sync_bins(db: ExtensionTables, registry: Sequence[Bin], now: float) -> list[Bin]:
    """The configured bins replace the table's `config` rows (readings of removed bins are kept);
    returns the bins added through the API, which stay. A configured id takes over an API bin."""
    configured = [b.id for b in registry]
    async with db.begin() as conn:
        await conn.execute(sa.delete(tb.bins).where(tb.bins.c.origin == "config", tb.bins.c.id.not_in(configured)))
        await conn.execute(sa.delete(tb.bins).where(tb.bins.c.origin == "api", tb.bins.c.id.in_(configured)))
        await _upsert(conn, registry, "config", now)
        rows = (await conn.execute(sa.select(tb.bins.c.body).where(tb.bins.c.origin == "api").order_by(tb.bins.c.id))).all()
    return [Bin.model_validate_json(r.body) for r in rows]


async def _upsert(conn: AsyncConnection, bins: Sequence[Bin], origin: str, now: float) -> None:
    have = {r[0] for r in (await conn.execute(sa.select(tb.bins.c.id).where(tb.bins.c.id.in_([b.id for b in bins])))).all()}
    for b in bins:
        values = {"body": b.model_dump_json(), "updated_at": now, "origin": origin}
        if b.id in have:
            await conn.execute(sa.update(tb.bins).where(tb.bins.c.id == b.id).values(**values))
        else:
            await conn.execute(sa.insert(tb.bins).values(id=b.id, **values))


async def save_api_bins(db: ExtensionTables, bins: Sequence[Bin], actor: str, via: str, now: float) -> None:
    """Add or replace bins of origin `api`, audited in the same transaction."""
    async with db.begin() as conn:
        await _upsert(conn, bins, "api", now)
        ids = [b.id for b in bins]
        await db.audit(conn, actor=actor, action=f"bins.{via}", target=f"bins:{len(ids)}", after={"ids": list[JsonValue](ids[:100])})


async def delete_api_bin(db: ExtensionTables, bin_id: str, actor: str, before: Bin) -> None:
    async with db.begin() as conn:
        await conn.execute(sa.delete(tb.bins).where(tb.bins.c.id == bin_id, tb.bins.c.origin == "api"))
        await db.audit(conn, actor=actor, action="bins.remove", target=f"bin:{bin_id}", before=json.loads(before.model_dump_json()))


async def add_reading(db: ExtensionTables, r: FillReading, now: float) -> bool:
    """Store a reading; False when its message id is already stored (a redelivery)."""
    try:
        async with db.begin() as conn:
            await conn.execute(
                sa.insert(tb.readings).values(
                    message_id=r.message_id, bin_id=r.bin_id, level=r.level, t=r.t.timestamp(), source=r.source, received_at=now
                )
            )
    except IntegrityError:
        return False
    return True


async def add_collection(db: ExtensionTables, bin_id: str, t: float, reported_by: str, via: str) -> None:
    async with db.begin() as conn:
        await conn.execute(sa.insert(tb.collections).values(bin_id=bin_id, t=t, reported_by=reported_by[:64], via=via))


async def series(db: ExtensionTables, since: float) -> Series:
    """Each bin's levels since `since`: its readings, and a level 0 at each collection."""
    out: Series = defaultdict(list)
    async with db.connect() as conn:
        rows = (await conn.execute(sa.select(tb.readings.c.bin_id, tb.readings.c.t, tb.readings.c.level).where(tb.readings.c.t >= since))).all()
        for bin_id, t, level in rows:
            out[bin_id].append((float(t), float(level)))
        emptied = (await conn.execute(sa.select(tb.collections.c.bin_id, tb.collections.c.t).where(tb.collections.c.t >= since))).all()
        for bin_id, t in emptied:
            out[bin_id].append((float(t), 0.0))
    for points in out.values():
        points.sort()
    return dict(out)


async def latest_levels(db: ExtensionTables) -> dict[str, tuple[float, float]]:
    """Each bin's last known (level, unix t): its newest reading or collection (level 0)."""
    out: dict[str, tuple[float, float]] = {}
    async with db.connect() as conn:
        newest = sa.select(tb.readings.c.bin_id, sa.func.max(tb.readings.c.t).label("t")).group_by(tb.readings.c.bin_id).subquery()
        q = sa.select(tb.readings.c.bin_id, tb.readings.c.t, tb.readings.c.level).join(
            newest, sa.and_(tb.readings.c.bin_id == newest.c.bin_id, tb.readings.c.t == newest.c.t)
        )
        for bin_id, t, level in (await conn.execute(q)).all():
            out[bin_id] = (float(level), float(t))
        q2 = sa.select(tb.collections.c.bin_id, sa.func.max(tb.collections.c.t)).group_by(tb.collections.c.bin_id)
        for bin_id, t in (await conn.execute(q2)).all():
            if bin_id not in out or float(t) >= out[bin_id][1]:
                out[bin_id] = (0.0, float(t))
    return out


async def save_plan(db: ExtensionTables, trigger: str, day: str, body: dict[str, JsonValue], now: float) -> StoredPlan:
    async with db.begin() as conn:
        res = await conn.execute(sa.insert(tb.plans).values(created_at=now, trigger=trigger, day=day, body=json.dumps(body)))
        pk = res.inserted_primary_key
        assert pk is not None
    return StoredPlan(int(pk[0]), now, trigger, day, body)


def _stored(pk: int, created_at: float, trigger: str, day: str, text: str) -> StoredPlan:
    body = json.loads(text)
    if not isinstance(body, dict):
        raise ValueError(f"plan {pk}: body is not an object")
    return StoredPlan(int(pk), float(created_at), str(trigger), str(day), body)


async def plans(db: ExtensionTables, limit: int = 10, day: str | None = None, trigger: str | None = None) -> list[StoredPlan]:
    """The newest plans first."""
    q = sa.select(tb.plans.c.id, tb.plans.c.created_at, tb.plans.c.trigger, tb.plans.c.day, tb.plans.c.body)
    if day is not None:
        q = q.where(tb.plans.c.day == day)
    if trigger is not None:
        q = q.where(tb.plans.c.trigger == trigger)
    async with db.connect() as conn:
        rows = (await conn.execute(q.order_by(tb.plans.c.id.desc()).limit(limit))).all()
    return [_stored(*r) for r in rows]
