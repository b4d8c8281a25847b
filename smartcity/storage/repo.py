"""Repositories the server reads and writes through: cameras and groups, the events register.

They return frozen dataclasses or plain dicts, never ORM rows, so callers hold no session
and no lazy-loading surprise crosses an API boundary. Times are unix seconds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from smartcity.core.config import CameraConfig, CameraGroupConfig
from smartcity.storage.audit_repo import append as audit_append
from smartcity.storage.db import Database
from smartcity.storage.tables import camera_groups, cameras, events

MAX_EVENTS_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class CameraRow:
    id: str
    name: str
    url: str = field(repr=False)  # may hold a password: never in a log line or an error
    group: str
    enabled: bool
    analysis_fps: float
    site: str
    privacy_zones: tuple[tuple[tuple[float, float], ...], ...] = ()
    view_mode: str | None = None


@dataclass(frozen=True, slots=True)
class CameraGroupRow:
    name: str
    description: str


def _camera(r: Row[Any]) -> CameraRow:
    return CameraRow(
        id=r.id,
        name=r.name,
        url=r.url,
        group=r.group_name,
        enabled=bool(r.enabled),
        analysis_fps=float(r.analysis_fps),
        site=r.site,
        privacy_zones=tuple(tuple((float(p[0]), float(p[1])) for p in poly) for poly in (r.privacy_zones or [])),
        view_mode=r.view_mode,
    )


class MissingCameras(StrEnum):
    """What an inventory import does to the cameras of its groups that it does not list."""

    KEEP = "keep"
    DISABLE = "disable"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class CamerasImported:
    """Camera ids an import created, updated, and found absent (kept, disabled or deleted)."""

    created: tuple[str, ...]
    updated: tuple[str, ...]
    absent: tuple[str, ...]
    missing: MissingCameras


class CameraRepo:
    """Cameras and camera groups. Configured cameras are upserted at start; API-made ones stay."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, table: Any) -> Any:
        return pg_insert(table) if self.db.dialect == "postgresql" else sqlite_insert(table)

    async def _ensure_groups(self, conn: AsyncConnection, groups: dict[str, str | None]) -> None:
        """Create missing groups; a description given as None leaves an existing one unchanged."""
        described = [{"name": n, "description": d} for n, d in groups.items() if d is not None]
        bare = [{"name": n, "description": ""} for n, d in groups.items() if d is None]
        if described:
            stmt = self._insert(camera_groups)
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["name"], set_={"description": stmt.excluded.description}
                ),
                described,
            )
        if bare:
            await conn.execute(
                self._insert(camera_groups).on_conflict_do_nothing(index_elements=["name"]), bare
            )

    async def _upsert_cameras(self, conn: AsyncConnection, configs: Sequence[CameraConfig]) -> None:
        now = time.time()
        rows = [
            {
                "id": c.id,
                "name": c.name,
                "url": c.url,
                "group_name": c.group,
                "enabled": c.enabled,
                "analysis_fps": c.analysis_fps,
                "site": c.site,
                "created_at": now,
                "updated_at": now,
            }
            for c in configs
        ]
        stmt = self._insert(cameras)
        updated = ("name", "url", "group_name", "enabled", "analysis_fps", "site", "updated_at")
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["id"], set_={k: getattr(stmt.excluded, k) for k in updated}
            ),
            rows,
        )

    async def sync_from_config(
        self, groups: Sequence[CameraGroupConfig], cameras: Sequence[CameraConfig]
    ) -> None:
        """Upsert the configured groups and cameras (one transaction); deletes nothing."""
        wanted: dict[str, str | None] = {g.name: g.description for g in groups}
        for c in cameras:
            wanted.setdefault(c.group, None)
        async with self.db.engine.begin() as conn:
            if wanted:
                await self._ensure_groups(conn, wanted)
            if cameras:
                await self._upsert_cameras(conn, cameras)

    async def upsert_camera(self, camera: CameraConfig) -> CameraRow:
        """Create or replace one camera (its group is created if missing); returns the stored row."""
        async with self.db.engine.begin() as conn:
            await self._ensure_groups(conn, {camera.group: None})
            await self._upsert_cameras(conn, [camera])
            row = (await conn.execute(select(cameras).where(cameras.c.id == camera.id))).one()
        return _camera(row)

    async def import_cameras(self, configs: Sequence[CameraConfig], missing: MissingCameras) -> CamerasImported:
        """Upsert every camera of an inventory in one transaction; the cameras of the groups it
        names that it does not list are kept, disabled or deleted (with their rules) per `missing`."""
        ids = {c.id for c in configs}
        groups = {c.group for c in configs}
        async with self.db.engine.begin() as conn:
            existing = {r.id: r.group_name for r in (await conn.execute(select(cameras.c.id, cameras.c.group_name)))}
            await self._ensure_groups(conn, dict.fromkeys(groups))
            await self._upsert_cameras(conn, configs)
            absent = sorted(cid for cid, group in existing.items() if group in groups and cid not in ids)
            if absent and missing is MissingCameras.DISABLE:
                await conn.execute(
                    update(cameras).where(cameras.c.id.in_(absent)).values(enabled=False, updated_at=time.time())
                )
            elif absent and missing is MissingCameras.DELETE:
                await conn.execute(delete(cameras).where(cameras.c.id.in_(absent)))
        return CamerasImported(
            created=tuple(sorted(ids - set(existing))),
            updated=tuple(sorted(ids & set(existing))),
            absent=tuple(absent),
            missing=missing,
        )

    async def list_cameras(self) -> list[CameraRow]:
        """Every camera, ordered by id."""
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(select(cameras).order_by(cameras.c.id))).all()
        return [_camera(r) for r in rows]

    async def get_camera(self, camera_id: str) -> CameraRow | None:
        """One camera, or None when there is no camera with that id."""
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(select(cameras).where(cameras.c.id == camera_id))).one_or_none()
        return _camera(row) if row is not None else None

    async def set_privacy(
        self, camera_id: str, zones: Sequence[Sequence[tuple[float, float]]], view_mode: str | None, *, actor: str
    ) -> CameraRow | None:
        """Replace a camera's privacy zones and view mode, audited in the same transaction
        (before and after); None when there is no such camera."""
        zones_json = [[[x, y] for x, y in poly] for poly in zones]
        async with self.db.engine.begin() as conn:
            row = (await conn.execute(select(cameras).where(cameras.c.id == camera_id))).one_or_none()
            if row is None:
                return None
            before = _camera(row)
            await conn.execute(
                cameras.update()
                .where(cameras.c.id == camera_id)
                .values(privacy_zones=zones_json, view_mode=view_mode, updated_at=time.time())
            )
            await audit_append(
                conn, at=time.time(), actor=actor, action="camera.privacy", target=f"camera:{camera_id}",
                before={"zones": [[list(p) for p in poly] for poly in before.privacy_zones], "view_mode": before.view_mode},
                after={"zones": zones_json, "view_mode": view_mode},
            )
            after = (await conn.execute(select(cameras).where(cameras.c.id == camera_id))).one()
        return _camera(after)

    async def list_groups(self) -> list[CameraGroupRow]:
        """Every camera group, ordered by name."""
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(select(camera_groups).order_by(camera_groups.c.name))).all()
        return [CameraGroupRow(name=r.name, description=r.description) for r in rows]


class EventRepo:
    """Read side of the append-only events register (the writer owns the write side)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _filters(
        camera_id: str | None,
        type: str | None,
        rule_id: str | None,
        since: float | None,
        until: float | None,
    ) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if camera_id is not None:
            where.append(events.c.camera_id == camera_id)
        if type is not None:
            where.append(events.c.type == type)
        if rule_id is not None:
            where.append(events.c.rule_id == rule_id)
        if since is not None:
            where.append(events.c.t >= since)
        if until is not None:
            where.append(events.c.t < until)
        return where

    async def list_events(
        self,
        *,
        camera_id: str | None = None,
        type: str | None = None,
        rule_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Events matching every given filter, newest first; `since` inclusive, `until` exclusive.

        Each dict holds the `events` columns (payload decoded). `limit` is capped at 10,000.
        """
        if limit < 0:
            raise ValueError("limit must be >= 0")
        stmt = (
            select(events)
            .where(*self._filters(camera_id, type, rule_id, since, until))
            .order_by(events.c.t.desc(), events.c.event_id.desc())
            .limit(min(limit, MAX_EVENTS_PAGE))
        )
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [dict(r) for r in rows]

    async def count_events(
        self,
        *,
        camera_id: str | None = None,
        type: str | None = None,
        rule_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> int:
        """How many events match every given filter (same filters as list_events)."""
        stmt = (
            select(func.count())
            .select_from(events)
            .where(*self._filters(camera_id, type, rule_id, since, until))
        )
        async with self.db.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())


async def upsert_group(db: Database, name: str, description: str) -> CameraGroupRow:
    """Create a camera group or change its description."""
    async with db.engine.begin() as conn:
        await CameraRepo(db)._ensure_groups(conn, {name: description})
    return CameraGroupRow(name, description)
