"""An extension's own tables through its Alembic branch: migrated after the core schema,
checked at start, and harmless to a database once the extension is no longer configured."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from smartcity.storage.db import (
    Database,
    MigrationBranch,
    MigrationsPending,
    branch_head,
    check_migrations,
    current_heads,
    current_revision,
    head_revision,
    migrate,
)

EXAMPLE = MigrationBranch("example", Path(__file__).parent / "example_migrations")


async def test_branch_is_migrated_and_checked(storage_url: str) -> None:
    assert branch_head(EXAMPLE) == "example_0001"
    assert await migrate(storage_url) == head_revision()  # core only
    db = Database(storage_url)
    try:
        await check_migrations(db)  # the core schema is complete
        with pytest.raises(MigrationsPending) as info:
            await check_migrations(db, [EXAMPLE])
        assert info.value.branch == "example"
        assert info.value.head == "example_0001"
        assert "extension 'example'" in str(info.value)

        assert await migrate(storage_url, [EXAMPLE]) == head_revision()
        await check_migrations(db, [EXAMPLE])
        assert sorted(await current_heads(db)) == sorted([head_revision(), "example_0001"])
        assert await current_revision(db) == head_revision()
        async with db.engine.begin() as conn:
            await conn.execute(sa.text("INSERT INTO example_seen (event_id, camera_id, t) VALUES ('e1', 'c1', 1.5)"))
        async with db.engine.connect() as conn:
            assert (await conn.execute(sa.text("SELECT event_id FROM example_seen"))).scalars().all() == ["e1"]

        # no longer configured but still registered: migrating and checking the core goes on
        assert await migrate(storage_url, known=[EXAMPLE]) == head_revision()
        await check_migrations(db)
        assert sorted(await current_heads(db)) == sorted([head_revision(), "example_0001"])
    finally:
        await db.dispose()
