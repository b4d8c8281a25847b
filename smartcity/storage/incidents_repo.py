"""Reading incidents for the API: filters, camera scope and keyset pages, in SQL on both dialects.

Pages are ordered by (last_seen, incident_id) descending; a cursor is the pair of the last row
of the previous page, so equal `last_seen` values are neither skipped nor repeated. Scope
(the cameras a user may see) is applied in the query: an incident is visible when any of its
cameras is. Reads the `incidents` table directly, so it works whether or not alerting runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, array

from smartcity.core.events import IncidentState
from smartcity.core.incidents import IncidentRecord
from smartcity.storage.db import Database, rows_in
from smartcity.storage.outbox import incident_record
from smartcity.storage.tables import events, incidents, rules

MAX_PAGE = 10_000


class IncidentRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _touches(self, cameras: Sequence[str]) -> sa.ColumnElement[bool]:
        """The incident involves at least one of `cameras`."""
        if self.db.dialect == "postgresql":
            overlap: sa.ColumnElement[bool] = sa.type_coerce(incidents.c.camera_ids, JSONB).has_any(array(list(cameras)))
            return overlap
        each = sa.func.json_each(incidents.c.camera_ids).table_valued("value")
        return sa.select(sa.literal(1)).select_from(each).where(each.c.value.in_(list(cameras))).exists()

    async def page(
        self,
        *,
        visible_cameras: Sequence[str] | None,
        camera_id: str | None = None,
        state: IncidentState | None = None,
        rule_id: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after: tuple[float, str] | None = None,
        limit: int = 50,
    ) -> list[IncidentRecord]:
        """Most recently seen first. `visible_cameras` None: no scope; `since` inclusive,
        `until` exclusive (on last_seen); `after`: (last_seen, incident_id) of the previous page."""
        if visible_cameras is not None and not visible_cameras:
            return []
        q = sa.select(incidents)
        if visible_cameras is not None:
            q = q.where(self._touches(visible_cameras))
        if camera_id is not None:
            q = q.where(self._touches([camera_id]))
        if state is not None:
            q = q.where(incidents.c.state == state.value)
        if rule_id is not None:
            q = q.where(incidents.c.rule_id == rule_id)
        if kind is not None:
            q = q.where(incidents.c.kind == kind)
        if since is not None:
            q = q.where(incidents.c.last_seen >= since)
        if until is not None:
            q = q.where(incidents.c.last_seen < until)
        if after is not None:
            t, iid = after
            q = q.where(
                sa.or_(incidents.c.last_seen < t, sa.and_(incidents.c.last_seen == t, incidents.c.incident_id < iid))
            )
        q = q.order_by(incidents.c.last_seen.desc(), incidents.c.incident_id.desc()).limit(max(0, min(limit, MAX_PAGE)))
        async with self.db.engine.connect() as conn:
            return [incident_record(r) for r in await conn.execute(q)]

    async def get(self, incident_id: str) -> IncidentRecord | None:
        async with self.db.engine.connect() as conn:
            r = (await conn.execute(sa.select(incidents).where(incidents.c.incident_id == incident_id))).first()
        return incident_record(r) if r is not None else None

    async def first_evidence(self, event_id_lists: Sequence[Sequence[str]]) -> list[str | None]:
        """For each list of an incident's event ids: the first one with an evidence snapshot in
        the register (None when none has one, or it was removed by retention). One query."""
        wanted = sorted({e for ids in event_id_lists for e in ids})
        q = sa.select(events.c.event_id).where(events.c.evidence_path.is_not(None))
        async with self.db.engine.connect() as conn:
            with_evidence = {r.event_id for r in await rows_in(conn, q, events.c.event_id, wanted)}
        return [next((e for e in ids if e in with_evidence), None) for ids in event_id_lists]

    async def cameras_of(self, incident_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Incident id -> its cameras (for scoping rows that only name an incident)."""
        if not incident_ids:
            return {}
        q = sa.select(incidents.c.incident_id, incidents.c.camera_ids).where(incidents.c.incident_id.in_(list(set(incident_ids))))
        async with self.db.engine.connect() as conn:
            return {r.incident_id: tuple(r.camera_ids or ()) for r in await conn.execute(q)}

    async def owners(self, event_ids: Sequence[str], rule_ids: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
        """(event id -> camera, rule id -> camera) for the ids found: what a user scoped to some
        cameras may see of an incident that spans others. Ids not found are left out."""
        by_event: dict[str, str] = {}
        by_rule: dict[str, str] = {}
        async with self.db.engine.connect() as conn:
            if event_ids:
                q = sa.select(events.c.event_id, events.c.camera_id)
                by_event = {r.event_id: r.camera_id for r in await rows_in(conn, q, events.c.event_id, sorted(set(event_ids)))}
            if rule_ids:
                q = sa.select(rules.c.id, rules.c.camera_id)
                by_rule = {r.id: r.camera_id for r in await rows_in(conn, q, rules.c.id, sorted(set(rule_ids)))}
        return by_event, by_rule
