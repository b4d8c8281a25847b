"""The waste tables on SQLite and PostgreSQL: a reading stored once per message id, the levels
and series that collections reset, plans newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from smartcity.extensions.context import ExtensionTables
from smartcity.extensions.waste import FillReading
from smartcity.extensions.waste import store as st
from smartcity.extensions.waste.tables import metadata, readings
from smartcity.storage.db import Database, MigrationBranch, migrate

BRANCH = MigrationBranch("waste", Path(__file__).resolve().parents[3] / "smartcity/extensions/waste/migrations")


def reading(bin_id: str, level: float, t: float, mid: str) -> FillReading:
    return FillReading(bin_id, level, datetime.fromtimestamp(t, UTC), mid, "native")


async def test_store_round_trip(storage_url: str) -> None:
    await migrate(storage_url, [BRANCH])
    db = Database(storage_url)
    try:
        tables = ExtensionTables(db.engine, metadata)
        assert await st.add_reading(tables, reading("B1", 0.2, 1000.0, "a"), 1.0)
        assert not await st.add_reading(tables, reading("B1", 0.9, 2000.0, "a"), 2.0)  # same id: refused
        assert await st.add_reading(tables, reading("B1", 0.5, 3000.0, "b"), 3.0)  # the connection is fine after it
        assert await st.add_reading(tables, reading("B2", 0.7, 3500.0, "c"), 3.0)
        async with db.engine.connect() as conn:
            assert (await conn.execute(sa.select(sa.func.count()).select_from(readings))).scalar_one() == 3
        await st.add_collection(tables, "B1", 4000.0, "crew-7", "http")
        assert await st.latest_levels(tables) == {"B1": (0.0, 4000.0), "B2": (0.7, 3500.0)}
        assert await st.series(tables, 0.0) == {"B1": [(1000.0, 0.2), (3000.0, 0.5), (4000.0, 0.0)], "B2": [(3500.0, 0.7)]}
        assert await st.series(tables, 3200.0) == {"B1": [(4000.0, 0.0)], "B2": [(3500.0, 0.7)]}

        first = await st.save_plan(tables, "schedule", "2026-05-05", {"routes": [], "unvisited": []}, 10.0)
        second = await st.save_plan(tables, "demand", "2026-05-05", {"routes": [], "unvisited": [], "km": 1.5}, 11.0)
        assert [p.id for p in await st.plans(tables)] == [second.id, first.id]
        assert await st.plans(tables, trigger="schedule") == [first]
        assert (await st.plans(tables, 1))[0].body["km"] == 1.5
    finally:
        await db.dispose()
