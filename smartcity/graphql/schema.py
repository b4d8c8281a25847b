"""The strawberry schema: queries, mutations and subscriptions of the operator API.

Roles: viewer (read), operator (rules, incidents, signals), admin (cameras, users, audit,
unpixelated live views). Every user is scoped to camera groups (none = all): a camera outside
the scope does not exist for them, in queries as in subscriptions. Every mutation is audited.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator
from typing import Annotated, Any

import strawberry
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.scalars import JSON
from strawberry.types import Info

from smartcity.core.bus import Overflow, Predicate
from smartcity.core.config import CameraConfig
from smartcity.core.errors import NotFound, SubscriptionClosed, ValidationFailed
from smartcity.core.events import CameraHealth, ConsoleAlert, CountBucket, Event, Incident, RuleEvent
from smartcity.graphql.access import (
    decode_cursor,
    encode_cursor,
    maybe_principal,
    principal,
    sees_camera,
    services,
    visible_cameras,
)
from smartcity.graphql.auth import Principal
from smartcity.graphql.types import (
    AlertDelivery,
    AuditEntry,
    Camera,
    CameraGroup,
    CameraInput,
    CameraStatus,
    ConsoleAlertType,
    CountBucketType,
    CountPoint,
    Deleted,
    FieldError,
    IncidentConnection,
    IncidentEdge,
    IncidentType,
    LiveViewAnswer,
    LoginFailed,
    LoginSuccess,
    NotAuthorized,
    NotFoundError,
    PageInfo,
    Rule,
    RuleEventConnection,
    RuleEventEdge,
    RuleEventType,
    RuleInput,
    RuleType,
    SignalAccepted,
    User,
    UserInput,
    UserUpdateInput,
    ValidationError,
    ts,
    ts_,
)
from smartcity.storage.register import audit, count_series, page_audit, page_events

MAX_DEPTH = 10
MAX_TOKENS = 2000


def _page(first: int, info: Info[Any, Any]) -> int:
    cap = services(info).max_page
    if not 1 <= first <= cap:
        raise ValueError(f"first: must be between 1 and {cap}")
    return first


class RuleValidationLines(ValidationFailed):
    """`path: message` lines of a refused input."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _validation(exc: ValidationFailed) -> ValidationError:
    lines = list(getattr(exc, "errors", None) or [str(exc)])
    errors = []
    for line in lines:
        field, _, message = str(line).partition(": ")
        errors.append(FieldError(field=field if message else "", message=message or field))
    return ValidationError(message="invalid input", errors=errors)


def _denied(p: Principal | None, need: str) -> NotAuthorized | None:
    if p is None:
        return NotAuthorized(message="not authenticated: log in and send the token")
    if need == "operator" and not p.can_operate:
        return NotAuthorized(message=f"role {p.role} may not do this (operator or admin needed)")
    if need == "admin" and not p.is_admin:
        return NotAuthorized(message=f"role {p.role} may not do this (admin needed)")
    return None


def _user(u: Any) -> User:
    return User(id=u.id, username=u.username, role=u.role, groups=list(u.groups), disabled=u.disabled)


# ---- queries -------------------------------------------------------------------------------
@strawberry.type
class Query:
    @strawberry.field(description="The authenticated user.")
    def me(self, info: Info[Any, Any]) -> User:
        p = principal(info)
        return User(id=p.user_id, username=p.username, role=p.role, groups=sorted(p.groups or []), disabled=False)

    @strawberry.field(description="Cameras in the caller's scope, ordered by id.")
    async def cameras(self, info: Info[Any, Any]) -> list[Camera]:
        p = principal(info)
        s = services(info)
        return [Camera.from_row(r, s.status.get(r.id)) for r in await s.cameras.list_cameras() if p.sees_group(r.group)]

    @strawberry.field(description="One camera by id (null when unknown or outside the caller's scope).")
    async def camera(self, info: Info[Any, Any], id: strawberry.ID) -> Camera | None:
        s = services(info)
        row = await s.cameras.get_camera(str(id))
        if row is None or not principal(info).sees_group(row.group):
            return None
        return Camera.from_row(row, s.status.get(row.id))

    @strawberry.field(description="Rules of the cameras in scope (optionally one camera).")
    async def rules(self, info: Info[Any, Any], camera_id: strawberry.ID | None = None) -> list[Rule]:
        cams = await visible_cameras(info)
        ids = [str(camera_id)] if camera_id is not None else list(cams)
        ids = [c for c in ids if c in cams]
        return [Rule.from_row(r) for r in await services(info).rules.list_rules(camera_ids=ids)]

    @strawberry.field(description="Every registered rule type with the JSON schema of its parameters.")
    def rule_types(self, info: Info[Any, Any]) -> list[RuleType]:
        from smartcity.analytics import RULE_TYPES

        principal(info)
        return [
            RuleType(
                name=name,
                default_classes=list(cls.default_classes),
                severity=cls.severity.value,
                params_schema=JSON(cls.Params.model_json_schema()),
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
        n = _page(first, info)
        cams = await visible_cameras(info)
        ids = [c for c in ([str(camera_id)] if camera_id is not None else cams) if c in cams]
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
        edges = [RuleEventEdge(cursor=encode_cursor(r["t"], r["event_id"]), node=RuleEventType.from_row(r)) for r in rows[:n]]
        return RuleEventConnection(
            edges=edges, page_info=PageInfo(has_next_page=len(rows) > n, end_cursor=edges[-1].cursor if edges else None)
        )

    @strawberry.field(description="Incidents (most recently seen first), filtered by state, camera, rule, kind, time.")
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
        n = _page(first, info)
        outbox = services(info).outbox
        cams = await visible_cameras(info)
        if outbox is None:
            return IncidentConnection(edges=[], page_info=PageInfo(has_next_page=False, end_cursor=None))
        if after is not None:
            until = float(decode_cursor(after, 1)[0])
        out: list[Any] = []
        while len(out) <= n:
            batch = await outbox.list_incidents(
                state=state,
                camera_id=str(camera_id) if camera_id else None,
                rule_id=rule_id,
                kind=kind,
                since=since,
                until=until,
                limit=(n + 1) * 2,
            )
            out.extend(r for r in batch if any(c in cams for c in r.incident.camera_ids))
            if len(batch) < (n + 1) * 2:
                break
            until = batch[-1].incident.last_seen
        edges = [IncidentEdge(cursor=encode_cursor(r.incident.last_seen), node=IncidentType.from_record(r)) for r in out[:n]]
        return IncidentConnection(
            edges=edges, page_info=PageInfo(has_next_page=len(out) > n, end_cursor=edges[-1].cursor if edges else None)
        )

    @strawberry.field(description="Count time series of a camera, rolled up to `bucketS` seconds (60 = 1 min).")
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
        if bucket_s not in (60, 900, 3600, 86400):
            raise ValueError("bucketS: one of 60, 900, 3600, 86400")
        if until <= since or until - since > 400 * 86400:
            raise ValueError("until: after since, and at most 400 days later")
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

    @strawberry.field(description="Alert deliveries (operators and admins), e.g. state: dead for dead letters.")
    async def alert_deliveries(
        self, info: Info[Any, Any], incident_id: str | None = None, state: str | None = None, first: int = 100
    ) -> list[AlertDelivery]:
        p = principal(info)
        if not p.can_operate:
            raise PermissionError("alert deliveries: operator or admin role needed")
        outbox = services(info).outbox
        if outbox is None:
            return []
        rows = await outbox.list_deliveries(incident_id=incident_id, state=state, limit=_page(first, info))
        return [
            AlertDelivery(
                id=d.id,
                incident_id=d.incident_id,
                channel=d.channel,
                target=d.target,
                state=d.state,
                attempts=d.attempts,
                last_error=d.last_error,
                updated_at=ts_(d.updated_at),
            )
            for d in rows
        ]

    @strawberry.field(description="Camera groups in the caller's scope.")
    async def camera_groups(self, info: Info[Any, Any]) -> list[CameraGroup]:
        p = principal(info)
        return [
            CameraGroup(name=g.name, description=g.description)
            for g in await services(info).cameras.list_groups()
            if p.sees_group(g.name)
        ]

    @strawberry.field(description="Users (admins only).")
    async def users(self, info: Info[Any, Any]) -> list[User]:
        from smartcity.storage.users import list_users

        if not principal(info).is_admin:
            raise PermissionError("users: admin role needed")
        return [_user(u) for u in await list_users(services(info).db)]

    @strawberry.field(description="The append-only audit log, newest first (admins only).")
    async def audit_log(self, info: Info[Any, Any], first: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        if not principal(info).is_admin:
            raise PermissionError("audit log: admin role needed")
        rows = await page_audit(services(info).db, before_id=before_id, limit=_page(first, info))
        return [
            AuditEntry(
                id=int(r["id"]),
                at=ts_(float(r["at"])),
                actor=r["actor"],
                action=r["action"],
                target=r["target"],
                before=JSON(r["before"]) if r["before"] is not None else None,
                after=JSON(r["after"]) if r["after"] is not None else None,
            )
            for r in rows
        ]


# ---- mutations -----------------------------------------------------------------------------
RuleResult = Annotated[Rule | ValidationError | NotAuthorized | NotFoundError, strawberry.union("RuleResult")]
DeleteResult = Annotated[Deleted | NotAuthorized | NotFoundError, strawberry.union("DeleteResult")]
LoginResult = Annotated[LoginSuccess | LoginFailed, strawberry.union("LoginResult")]
IncidentResult = Annotated[
    IncidentType | ValidationError | NotAuthorized | NotFoundError, strawberry.union("IncidentResult")
]
SignalResult = Annotated[SignalAccepted | ValidationError | NotAuthorized | NotFoundError, strawberry.union("SignalResult")]
CameraResult = Annotated[Camera | ValidationError | NotAuthorized, strawberry.union("CameraResult")]
UserResult = Annotated[User | ValidationError | NotAuthorized, strawberry.union("UserResult")]
GroupResult = Annotated[CameraGroup | ValidationError | NotAuthorized, strawberry.union("GroupResult")]
LiveViewResult = Annotated[
    LiveViewAnswer | ValidationError | NotAuthorized | NotFoundError, strawberry.union("LiveViewResult")
]


async def _save_rule(info: Info[Any, Any], rule_id: str, data: RuleInput, *, creating: bool) -> Any:
    from smartcity.actors.evidence import rule_shapes
    from smartcity.analytics import validate_rule

    p = maybe_principal(info)
    if (denied := _denied(p, "operator")) is not None:
        return denied
    assert p is not None
    s = services(info)
    if not await sees_camera(info, str(data.camera_id)):
        return NotFoundError(message=f"camera {data.camera_id} does not exist")
    existing = await s.rules.get(rule_id)
    if creating and existing is not None:
        return ValidationError(message="invalid input", errors=[FieldError(field="id", message="already exists")])
    if not creating and existing is None:
        return NotFoundError(message=f"rule {rule_id} does not exist")
    if not creating and existing is not None and not await sees_camera(info, existing.camera_id):
        return NotFoundError(message=f"rule {rule_id} does not exist")
    schedule: dict[str, Any] = dict(data.schedule) if isinstance(data.schedule, dict) else {"kind": "permanent"}
    if schedule.get("kind") == "for_duration" and schedule.get("starts_at") is None:
        schedule["starts_at"] = time.time()
    spec = {
        "id": rule_id,
        "camera_id": str(data.camera_id),
        "type": data.type,
        "name": data.name,
        "enabled": data.enabled,
        "classes": list(data.classes or []),
        "min_confidence": data.min_confidence,
        "cooldown_s": data.cooldown_s,
        "schedule": schedule,
        "params": dict(data.params) if isinstance(data.params, dict) else data.params,
    }
    try:
        validated = validate_rule(spec)
    except ValidationFailed as exc:
        return _validation(exc)
    clean = validated.model_dump(mode="json")
    _, after = await s.rules.save(clean, actor=p.username, shapes=rule_shapes(clean["params"]))
    s.rules_changed()
    return Rule.from_row(after)


async def _move_incident(info: Info[Any, Any], incident_id: str, action: str, comment: str | None) -> Any:
    p = maybe_principal(info)
    if (denied := _denied(p, "operator")) is not None:
        return denied
    assert p is not None
    s = services(info)
    if s.incidents is None or s.outbox is None:
        return NotFoundError(message="incidents are not enabled on this server (alerts.enabled is false)")
    try:
        rec = await s.outbox.get_incident(incident_id)
    except NotFound:
        return NotFoundError(message=f"incident {incident_id} does not exist")
    cams = await visible_cameras(info)
    if not any(c in cams for c in rec.incident.camera_ids):
        return NotFoundError(message=f"incident {incident_id} does not exist")
    if comment is not None and len(comment) > 2000:
        return ValidationError(message="invalid input", errors=[FieldError(field="comment", message="at most 2000 characters")])
    try:
        moved = await getattr(s.incidents, action)(incident_id, by=p.username, comment=comment)
    except ValidationFailed as exc:
        return _validation(exc)
    return IncidentType.from_record(moved)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Exchange a user name and password for a bearer token.")
    async def login(self, info: Info[Any, Any], username: str, password: str) -> LoginResult:
        from smartcity.graphql.auth import Principal
        from smartcity.storage.users import authenticate

        s = services(info)
        request = info.context.get("request")
        client = getattr(getattr(request, "client", None), "host", None) or "unknown"
        wait = s.login_limiter.retry_after(username, client)
        if wait > 0:
            return LoginFailed(message="too many failed logins: wait before trying again", retry_after_s=round(wait, 1))
        user = await authenticate(s.db, username, password)
        if user is None:
            s.login_limiter.failed(username, client)
            await audit(s.db, at=time.time(), actor=username[:64], action="login.failed", target=f"client:{client}", before=None, after=None)
            return LoginFailed(message="wrong user name or password", retry_after_s=0.0)
        s.login_limiter.succeeded(username)
        p = Principal(user.id, user.username, user.role, frozenset(user.groups) if user.groups else None)
        await audit(s.db, at=time.time(), actor=user.username, action="login", target=f"client:{client}", before=None, after=None)
        return LoginSuccess(token=s.signer.issue(p), user=_user(user))

    @strawberry.mutation(description="Create a rule; it runs on its camera within a second.")
    async def create_rule(self, info: Info[Any, Any], input: RuleInput, id: strawberry.ID | None = None) -> RuleResult:
        rule_id = str(id) if id else f"rule-{uuid.uuid4().hex[:12]}"
        return await _save_rule(info, rule_id, input, creating=True)

    @strawberry.mutation(description="Replace a rule's definition (its camera keeps streaming).")
    async def update_rule(self, info: Info[Any, Any], id: strawberry.ID, input: RuleInput) -> RuleResult:
        return await _save_rule(info, str(id), input, creating=False)

    @strawberry.mutation(description="Pause (enabled: false) or resume a rule.")
    async def set_rule_enabled(self, info: Info[Any, Any], id: strawberry.ID, enabled: bool) -> RuleResult:
        s = services(info)
        row = await s.rules.get(str(id))
        if row is None:
            p = maybe_principal(info)
            return _denied(p, "operator") or NotFoundError(message=f"rule {id} does not exist")
        spec = row.spec()
        data = RuleInput(
            camera_id=strawberry.ID(row.camera_id),
            type=row.type,
            name=row.name,
            enabled=enabled,
            classes=list(row.classes),
            min_confidence=row.min_confidence,
            cooldown_s=row.cooldown_s,
            schedule=JSON(spec["schedule"]),
            params=JSON(spec["params"]),
        )
        return await _save_rule(info, row.id, data, creating=False)

    @strawberry.mutation(description="Delete a rule.")
    async def delete_rule(self, info: Info[Any, Any], id: strawberry.ID) -> DeleteResult:
        p = maybe_principal(info)
        if (denied := _denied(p, "operator")) is not None:
            return denied
        assert p is not None
        s = services(info)
        row = await s.rules.get(str(id))
        if row is None or not await sees_camera(info, row.camera_id):
            return NotFoundError(message=f"rule {id} does not exist")
        await s.rules.delete(row.id, actor=p.username)
        s.rules_changed()
        return Deleted(id=id)

    @strawberry.mutation(description="Push the state of an external traffic signal to a red_light rule.")
    async def push_signal_state(self, info: Info[Any, Any], rule_id: strawberry.ID, state: str) -> SignalResult:
        p = maybe_principal(info)
        if (denied := _denied(p, "operator")) is not None:
            return denied
        assert p is not None
        s = services(info)
        if state not in ("red", "amber", "green"):
            return ValidationError(message="invalid input", errors=[FieldError(field="state", message="red, amber or green")])
        row = await s.rules.get(str(rule_id))
        if row is None or not await sees_camera(info, row.camera_id):
            return NotFoundError(message=f"rule {rule_id} does not exist")
        if row.type != "red_light" or row.params.get("signal", {}).get("source") != "external":
            return ValidationError(
                message="invalid input",
                errors=[FieldError(field="ruleId", message="not a red_light rule with an external signal")],
            )
        now = time.time()
        applied = await s.push_signal(row.camera_id, row.id, state, now)
        await audit(s.db, at=now, actor=p.username, action="signal.push", target=f"rule:{row.id}", before=None, after={"state": state})
        return SignalAccepted(rule_id=rule_id, state=state, applied=applied)

    @strawberry.mutation(description="Acknowledge an incident (stops its escalation at once).")
    async def acknowledge_incident(self, info: Info[Any, Any], id: strawberry.ID, comment: str | None = None) -> IncidentResult:
        return await _move_incident(info, str(id), "acknowledge", comment)

    @strawberry.mutation(description="Resolve an incident.")
    async def resolve_incident(self, info: Info[Any, Any], id: strawberry.ID, comment: str | None = None) -> IncidentResult:
        return await _move_incident(info, str(id), "resolve", comment)

    @strawberry.mutation(description="Dismiss an incident (a false alarm).")
    async def dismiss_incident(self, info: Info[Any, Any], id: strawberry.ID, comment: str | None = None) -> IncidentResult:
        return await _move_incident(info, str(id), "dismiss", comment)

    @strawberry.mutation(description="Create or update a camera (admins); its group's actor picks it up live.")
    async def upsert_camera(self, info: Info[Any, Any], input: CameraInput) -> CameraResult:
        from pydantic import ValidationError as PydanticError

        from smartcity.core.config import format_validation_error

        p = maybe_principal(info)
        if (denied := _denied(p, "admin")) is not None:
            return denied
        assert p is not None
        s = services(info)
        try:
            cfg = CameraConfig(
                id=str(input.id), url=input.url, name=input.name, group=input.group,
                enabled=input.enabled, analysis_fps=input.analysis_fps, site=input.site,
            )
        except PydanticError as exc:
            return _validation(RuleValidationLines(format_validation_error(exc)))
        before = await s.cameras.get_camera(cfg.id)
        row = await s.cameras.upsert_camera(cfg)
        await audit(
            s.db, at=time.time(), actor=p.username, action="camera.upsert", target=f"camera:{cfg.id}",
            before=None if before is None else {"url": before.url, "group": before.group, "enabled": before.enabled},
            after={"url": row.url, "group": row.group, "enabled": row.enabled},
        )
        s.rules_changed()
        return Camera.from_row(row, s.status.get(row.id))

    @strawberry.mutation(description="Create a user (admins).")
    async def create_user(self, info: Info[Any, Any], input: UserInput) -> UserResult:
        from smartcity.storage.users import create_user

        p = maybe_principal(info)
        if (denied := _denied(p, "admin")) is not None:
            return denied
        assert p is not None
        try:
            u = await create_user(services(info).db, input.username, input.password, input.role, input.groups, actor=p.username)
        except ValidationFailed as exc:
            return _validation(exc)
        return _user(u)

    @strawberry.mutation(description="Change a user's role, camera groups, state or password (admins); their tokens are revoked.")
    async def update_user(self, info: Info[Any, Any], username: str, input: UserUpdateInput) -> UserResult:
        from smartcity.storage.users import update_user

        p = maybe_principal(info)
        if (denied := _denied(p, "admin")) is not None:
            return denied
        assert p is not None
        s = services(info)
        try:
            u = await update_user(
                s.db, username, actor=p.username, role=input.role, groups=input.groups,
                disabled=input.disabled, password=input.password,
            )
        except ValidationFailed as exc:
            return _validation(exc)
        s.signer.revoke(u.id)
        return _user(u)

    @strawberry.mutation(description="Create a camera group or change its description (admins).")
    async def upsert_camera_group(self, info: Info[Any, Any], name: str, description: str = "") -> GroupResult:
        import re

        from smartcity.storage.repo import upsert_group

        p = maybe_principal(info)
        if (denied := _denied(p, "admin")) is not None:
            return denied
        assert p is not None
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
            return ValidationError(message="invalid input", errors=[FieldError(field="name", message="1-64 letters, digits, . _ -")])
        if len(description) > 500:
            return ValidationError(message="invalid input", errors=[FieldError(field="description", message="at most 500 characters")])
        s = services(info)
        g = await upsert_group(s.db, name, description)
        await audit(s.db, at=time.time(), actor=p.username, action="group.upsert", target=f"group:{name}", before=None, after={"description": description})
        return CameraGroup(name=g.name, description=g.description)

    @strawberry.mutation(description="WebRTC live view: send the browser's offer SDP, get the answer SDP.")
    async def start_live_view(
        self, info: Info[Any, Any], camera_id: strawberry.ID, offer_sdp: str, unpixelated: bool = False
    ) -> LiveViewResult:
        from smartcity.actors.evidence import rule_shapes
        from smartcity.webrtc import InvalidOffer, TooManyViewers

        p = maybe_principal(info)
        if (denied := _denied(p, "viewer")) is not None:
            return denied
        assert p is not None
        s = services(info)
        if s.live_views is None:
            return NotFoundError(message="live views are not available on this server")
        if not await sees_camera(info, str(camera_id)):
            return NotFoundError(message=f"camera {camera_id} does not exist")
        if unpixelated and not p.is_admin:
            return NotAuthorized(message="only an admin may turn privacy mode off")
        shapes = [sh for r in await s.rules.list_rules(camera_ids=[str(camera_id)]) if r.enabled for sh in rule_shapes(r.params)]
        try:
            sdp = await s.live_views.answer(str(camera_id), offer_sdp, pixelate=not unpixelated, overlay=shapes, viewer=p.username)
        except (InvalidOffer, TooManyViewers, ValueError) as exc:
            return ValidationError(message="invalid input", errors=[FieldError(field="offerSdp", message=str(exc))])
        if unpixelated:
            await audit(s.db, at=time.time(), actor=p.username, action="liveview.unpixelated", target=f"camera:{camera_id}", before=None, after=None)
        return LiveViewAnswer(sdp=sdp, ice_servers=JSON(s.live_views.browser_ice_servers()), pixelated=not unpixelated)


# ---- subscriptions -------------------------------------------------------------------------
async def _stream(info: Info[Any, Any], name: str, types: tuple[type[Event], ...], predicate: Predicate) -> AsyncGenerator[Any, None]:
    s = services(info)
    cams = await visible_cameras(info)  # raises when not authenticated
    sub = s.bus.subscribe(
        f"graphql:{name}",
        types,
        maxsize=s.subscription_queue,
        overflow=Overflow.CLOSE,
        predicate=lambda e: e.camera_id in cams and predicate(e),
    )
    try:
        while True:
            try:
                yield await sub.get()
            except SubscriptionClosed as exc:
                raise RuntimeError(f"subscription closed: {exc.reason}") from None
    finally:
        sub.close()


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Live camera health reports in scope, optionally for some cameras.")
    async def camera_status(
        self, info: Info[Any, Any], camera_ids: list[strawberry.ID] | None = None
    ) -> AsyncGenerator[CameraStatus, None]:
        wanted = {str(c) for c in camera_ids} if camera_ids else None
        async for e in _stream(info, "cameraStatus", (CameraHealth,), lambda e: wanted is None or e.camera_id in wanted):
            yield CameraStatus.from_event(e)

    @strawberry.subscription(description="Live rule events, filtered by camera, rule, kind and class.")
    async def events(
        self,
        info: Info[Any, Any],
        camera_id: strawberry.ID | None = None,
        rule_id: str | None = None,
        kind: str | None = None,
        object_class: str | None = None,
    ) -> AsyncGenerator[RuleEventType, None]:
        def match(e: Event) -> bool:
            assert isinstance(e, RuleEvent)
            return (
                (camera_id is None or e.camera_id == str(camera_id))
                and (rule_id is None or e.rule_id == rule_id)
                and (kind is None or e.kind == kind)
                and (object_class is None or e.object_class == object_class)
            )

        async for e in _stream(info, "events", (RuleEvent,), match):
            yield RuleEventType.from_event(e)

    @strawberry.subscription(description="Incidents opened or updated in scope.")
    async def incidents(self, info: Info[Any, Any]) -> AsyncGenerator[IncidentType, None]:
        cams = await visible_cameras(info)
        async for e in _stream(info, "incidents", (Incident,), lambda e: True):
            assert isinstance(e, Incident)
            if any(c in cams for c in e.camera_ids):
                yield IncidentType.from_record(e)

    @strawberry.subscription(description="Live 1-minute count buckets (running totals).")
    async def count_buckets(
        self, info: Info[Any, Any], camera_id: strawberry.ID | None = None, rule_id: str | None = None
    ) -> AsyncGenerator[CountBucketType, None]:
        def match(e: Event) -> bool:
            assert isinstance(e, CountBucket)
            return (camera_id is None or e.camera_id == str(camera_id)) and (rule_id is None or e.rule_id == rule_id)

        async for e in _stream(info, "countBuckets", (CountBucket,), match):
            yield CountBucketType.from_event(e)

    @strawberry.subscription(description="Console alerts (sound + banner) for incidents in scope.")
    async def alerts(self, info: Info[Any, Any]) -> AsyncGenerator[ConsoleAlertType, None]:
        async for e in _stream(info, "alerts", (ConsoleAlert,), lambda e: True):
            yield ConsoleAlertType.from_event(e)


def make_schema(*, introspection: bool = True) -> strawberry.Schema:
    """The API schema, with depth/token/alias limits; introspection can be refused."""
    extensions: list[Any] = [
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaxAliasesLimiter(max_alias_count=20),
    ]
    if not introspection:
        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions)


schema = make_schema()
__all__ = ["make_schema", "schema", "ts"]
