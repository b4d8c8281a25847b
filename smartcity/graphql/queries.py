"""Queries of the operator API: cameras and groups, rules and rule types, the register of
events, incidents, count series, alert deliveries, users and the audit log.

Everything is scoped: a camera outside the caller's camera groups does not exist for them,
nor do its rules, events, incidents, counts or alert deliveries.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from smartcity.analytics import RULE_TYPES
from smartcity.analytics.registry import params_schema
from smartcity.core.events import IncidentState
from smartcity.core.incidents import DeliveryState
from smartcity.graphql.access import (
    decode_cursor,
    encode_cursor,
    principal,
    sees_camera,
    services,
    visible_cameras,
)
from smartcity.graphql.incident_scope import scoped_incidents
from smartcity.graphql.results import page_size, user_out
from smartcity.graphql.types import (
    AlertDelivery,
    AuditEntry,
    Camera,
    CameraGroup,
    CountPoint,
    IncidentConnection,
    IncidentEdge,
    IncidentType,
    PageInfo,
    Rule,
    RuleEventConnection,
    RuleEventEdge,
    RuleEventType,
    RuleType,
    User,
    ts_,
)
from smartcity.storage.audit_repo import AuditRepo
from smartcity.storage.incidents_repo import IncidentRepo
from smartcity.storage.register import count_series, page_events
from smartcity.storage.users import list_users

BUCKETS = (60, 900, 3600, 86400)
MAX_SERIES_DAYS = 400


def _in_scope(cams: dict[str, str], camera_id: strawberry.ID | None) -> list[str]:
    return [c for c in ([str(camera_id)] if camera_id is not None else list(cams)) if c in cams]


@strawberry.type
class Query:
    @strawberry.field(description="The authenticated user.")
    def me(self, info: Info[Any, Any]) -> User:
        p = principal(info)
        return User(id=p.user_id, username=p.username, role=p.role, groups=sorted(p.groups or []), disabled=False)

    @strawberry.field(description="Cameras in the caller's scope, ordered by id.")
    async def cameras(self, info: Info[Any, Any], group: str | None = None) -> list[Camera]:
        p = principal(info)
        s = services(info)
        return [
            Camera.from_row(r, s.status.get(r.id))
            for r in await s.cameras.list_cameras()
            if p.sees_group(r.group) and (group is None or r.group == group)
        ]

    @strawberry.field(description="One camera by id (null when unknown or outside the caller's scope).")
    async def camera(self, info: Info[Any, Any], id: strawberry.ID) -> Camera | None:
        s = services(info)
        row = await s.cameras.get_camera(str(id))
        if row is None or not principal(info).sees_group(row.group):
            return None
        return Camera.from_row(row, s.status.get(row.id))

    @strawberry.field(description="Camera groups in the caller's scope, with their cameras.")
    async def camera_groups(self, info: Info[Any, Any]) -> list[CameraGroup]:
        p = principal(info)
        s = services(info)
        cams = await s.cameras.list_cameras()
        return [
            CameraGroup(
                name=g.name,
                description=g.description,
                cameras=[Camera.from_row(c, s.status.get(c.id)) for c in cams if c.group == g.name],
            )
            for g in await s.cameras.list_groups()
            if p.sees_group(g.name)
        ]

    @strawberry.field(description="Rules of the cameras in scope (optionally one camera), with geometry and schedule.")
    async def rules(self, info: Info[Any, Any], camera_id: strawberry.ID | None = None) -> list[Rule]:
        ids = _in_scope(await visible_cameras(info), camera_id)
        return [Rule.from_row(r) for r in await services(info).rules.list_rules(camera_ids=ids)]

    @strawberry.field(description="One rule by id (null when unknown or outside the caller's scope).")
    async def rule(self, info: Info[Any, Any], id: strawberry.ID) -> Rule | None:
        row = await services(info).rules.get(str(id))
        if row is None or not await sees_camera(info, row.camera_id):
            return None
        return Rule.from_row(row)

    @strawberry.field(description="Every registered rule type with the JSON schema of its parameters.")
    def rule_types(self, info: Info[Any, Any]) -> list[RuleType]:

        principal(info)
        return [
            RuleType(
                name=name,
                default_classes=list(cls.default_classes),
                severity=cls.severity.value,
                params_schema=JSON(params_schema(cls)),
                produces_counts=cls.produces_counts,
                accepts_signals=cls.accepts_signals,
                colour=cls.colour,
            )
            for name, cls in sorted(RULE_TYPES.items())
        ]

    @strawberry.field(description="The register of rule events, newest first (Relay-style pages).")
    async def events(
        self,
        info: Info[Any, Any],
        camera_id: strawberry.ID | None = None,
        rule_id: str | None = None,
        kind: str | None = None,
        object_class: str | None = None,
        since: float | None = None,
        until: float | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> RuleEventConnection:
        n = page_size(first, info)
        ids = _in_scope(await visible_cameras(info), camera_id)
        key = None
        if after is not None:
            t, eid = decode_cursor(after, 2)
            key = (float(t), eid)
        rows = await page_events(
            services(info).db,
            camera_ids=ids,
            rule_id=rule_id,
            kind=kind,
            object_class=object_class,
            since=since,
            until=until,
            after=key,
            limit=n + 1,
        )
        edges = [RuleEventEdge(cursor=encode_cursor(repr(float(r["t"])), r["event_id"]), node=RuleEventType.from_row(r)) for r in rows[:n]]
        return RuleEventConnection(
            edges=edges, page_info=PageInfo(has_next_page=len(rows) > n, end_cursor=edges[-1].cursor if edges else None)
        )

    @strawberry.field(description="Incidents, most recently seen first (Relay-style pages), filtered by state, camera, rule, kind, time.")
    async def incidents(
        self,
        info: Info[Any, Any],
        state: str | None = None,
        camera_id: strawberry.ID | None = None,
        rule_id: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> IncidentConnection:
        n = page_size(first, info)
        cams = await visible_cameras(info)
        key = None
        if after is not None:
            t, iid = decode_cursor(after, 2)
            key = (float(t), iid)
        if (camera_id is not None and str(camera_id) not in cams) or (
            state is not None and state not in {s.value for s in IncidentState}
        ):
            rows = []  # a camera out of scope, or no such state: no such incidents
        else:
            rows = await IncidentRepo(services(info).db).page(
                visible_cameras=list(cams),
                camera_id=str(camera_id) if camera_id is not None else None,
                state=IncidentState(state) if state is not None else None,
                rule_id=rule_id,
                kind=kind,
                since=since,
                until=until,
                after=key,
                limit=n + 1,
            )
        shown = await scoped_incidents(services(info).db, principal(info), rows[:n], cams)
        edges = [
            IncidentEdge(cursor=encode_cursor(repr(r.incident.last_seen), r.incident.incident_id), node=node)
            for r, node in zip(rows[:n], shown, strict=True)
            if node is not None
        ]
        return IncidentConnection(
            edges=edges, page_info=PageInfo(has_next_page=len(rows) > n, end_cursor=edges[-1].cursor if edges else None)
        )

    @strawberry.field(
        description="One incident by id (as sent in SMS, webhook and MQTT alerts), or null when it does not "
        "exist or involves none of the caller's cameras."
    )
    async def incident(self, info: Info[Any, Any], id: strawberry.ID) -> IncidentType | None:
        cams = await visible_cameras(info)
        db = services(info).db
        rec = await IncidentRepo(db).get(str(id))
        return None if rec is None else (await scoped_incidents(db, principal(info), [rec], cams))[0]

    @strawberry.field(description="Count time series of a camera, rolled up to `bucketS` seconds (60, 900, 3600 or 86400).")
    async def counts(
        self,
        info: Info[Any, Any],
        camera_id: strawberry.ID,
        since: float,
        until: float,
        bucket_s: int = 3600,
        rule_id: str | None = None,
        object_class: str | None = None,
        direction: str | None = None,
    ) -> list[CountPoint]:
        if not await sees_camera(info, str(camera_id)):
            return []
        if bucket_s not in BUCKETS:
            raise ValueError(f"bucketS: one of {', '.join(map(str, BUCKETS))}")
        if until <= since or until - since > MAX_SERIES_DAYS * 86400:
            raise ValueError(f"until: after since, and at most {MAX_SERIES_DAYS} days later")
        rows = await count_series(
            services(info).db,
            camera_id=str(camera_id),
            rule_id=rule_id,
            object_class=object_class,
            direction=direction,
            bucket_s=bucket_s,
            since=since,
            until=until,
        )
        return [
            CountPoint(
                bucket_start=ts_(r["bucket_start"]),
                rule_id=r["rule_id"],
                object_class=r["object_class"],
                direction=r["direction"],
                n=r["n"],
            )
            for r in rows
        ]

    @strawberry.field(description="Alert deliveries of incidents in scope (operators and admins), e.g. state: dead.")
    async def alert_deliveries(
        self, info: Info[Any, Any], incident_id: str | None = None, state: str | None = None, first: int = 100
    ) -> list[AlertDelivery]:
        p = principal(info)
        if not p.can_operate:
            raise PermissionError("alert deliveries: operator or admin role needed")
        s = services(info)
        if s.outbox is None or (state is not None and state not in {d.value for d in DeliveryState}):
            return []  # no such state: no such deliveries
        wanted = DeliveryState(state) if state is not None else None
        rows = await s.outbox.list_deliveries(incident_id=incident_id, state=wanted, limit=page_size(first, info))
        cams = await visible_cameras(info)
        incident_cams = await IncidentRepo(s.db).cameras_of([d.incident_id for d in rows])
        # a delivery whose incident is not stored yet is shown to admins only
        return [
            AlertDelivery(
                id=d.id,
                incident_id=d.incident_id,
                channel=d.channel,
                target=d.target,
                state=d.state.value,
                attempts=d.attempts,
                last_error=d.last_error,
                updated_at=ts_(d.updated_at),
            )
            for d in rows
            if any(c in cams for c in incident_cams.get(d.incident_id, ())) or (p.is_admin and d.incident_id not in incident_cams)
        ]

    @strawberry.field(description="Users (admins only).")
    async def users(self, info: Info[Any, Any]) -> list[User]:

        if not principal(info).is_admin:
            raise PermissionError("users: admin role needed")
        return [user_out(u) for u in await list_users(services(info).db)]

    @strawberry.field(
        description="The append-only audit log, newest first (admins only). `action` ending in '.' is a prefix "
        "(e.g. 'rule.'); page with `beforeId` = the id of the last entry seen."
    )
    async def audit_log(
        self,
        info: Info[Any, Any],
        first: int = 100,
        before_id: int | None = None,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: float | None = None,
    ) -> list[AuditEntry]:
        if not principal(info).is_admin:
            raise PermissionError("audit log: admin role needed")
        rows = await AuditRepo(services(info).db).page(
            actor=actor, action=action, target=target, since=since, before_id=before_id, limit=page_size(first, info)
        )
        return [
            AuditEntry(
                id=r.id,
                at=ts_(r.at),
                actor=r.actor,
                action=r.action,
                target=r.target,
                before=JSON(r.before) if r.before is not None else None,
                after=JSON(r.after) if r.after is not None else None,
            )
            for r in rows
        ]
