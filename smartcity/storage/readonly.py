"""`core.readonly.ReadOnlyStore` over the database: the repositories' read side, as typed views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from smartcity.core.events import Incident, IncidentState, RuleEvent, Severity
from smartcity.core.readonly import MAX_READ, CameraInfo, CountPoint
from smartcity.storage.db import Database
from smartcity.storage.incidents_repo import IncidentRepo
from smartcity.storage.register import count_series
from smartcity.storage.repo import CameraRepo, EventRepo


class StoredReads:
    """Read-only queries for extensions; holds the database so that they never do."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def cameras(self) -> Sequence[CameraInfo]:
        rows = await CameraRepo(self._db).list_cameras()
        return [CameraInfo(r.id, r.name, r.group, r.site, r.enabled) for r in rows]

    async def rule_events(
        self,
        *,
        camera_id: str | None = None,
        rule_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> Sequence[RuleEvent]:
        rows = await EventRepo(self._db).list_events(
            camera_id=camera_id,
            type=RuleEvent.type,
            rule_id=rule_id,
            since=since,
            until=until,
            limit=max(0, min(limit, MAX_READ)),
        )
        return [
            RuleEvent(
                event_id=r["event_id"],
                camera_id=r["camera_id"],
                t=float(r["t"]),
                rule_id=r["rule_id"] or "",
                rule_type=r["rule_type"] or "",
                kind=r["kind"] or "",
                object_class=r["object_class"],
                track_id=r["track_id"],
                severity=Severity(r["severity"]) if r["severity"] else Severity.INFO,
                payload=dict(r["payload"] or {}),
                evidence_path=r["evidence_path"],
            )
            for r in rows
        ]

    async def counts(
        self, *, camera_id: str, since: float, until: float, bucket_s: int = 3600, rule_id: str | None = None
    ) -> Sequence[CountPoint]:
        if bucket_s < 1:
            raise ValueError("bucket_s must be >= 1")
        series = await count_series(
            self._db,
            camera_id=camera_id,
            rule_id=rule_id,
            object_class=None,
            direction=None,
            bucket_s=bucket_s,
            since=since,
            until=until,
        )
        return [
            CountPoint(float(p["bucket_start"]), str(p["rule_id"]), str(p["object_class"]), str(p["direction"]), int(p["n"]))
            for p in series
        ]

    async def incidents(
        self, *, state: IncidentState | None = None, since: float | None = None, limit: int = 100
    ) -> Sequence[Incident]:
        records = await IncidentRepo(self._db).page(
            visible_cameras=None,
            state=state,
            since=since,
            limit=max(0, min(limit, MAX_READ)),
        )
        return [
            replace(
                r.incident,
                acknowledged_by=r.acknowledged_by,
                acknowledged_at=r.acknowledged_at,
                resolved_by=r.resolved_by,
                resolved_at=r.resolved_at,
                comment=r.comment,
            )
            for r in records
        ]
