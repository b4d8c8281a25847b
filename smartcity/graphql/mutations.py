"""Mutations of the operator API. Each answers with a union of its result and typed errors
(ValidationError naming the field, NotAuthorized, NotFoundError), never a 500; each is
audited (who, when, what, before and after), in the same transaction as the change where
the repository allows it.

Roles: viewer (nothing but login and live views), operator (rules, incidents, signals),
admin (cameras, groups, users). Outside the caller's camera-group scope, a camera, its rules
and its incidents do not exist (NotFoundError, the same answer as for an unknown id).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import strawberry
from pydantic import ValidationError as PydanticError
from strawberry.scalars import JSON
from strawberry.types import Info

from smartcity.analytics import takes_signal_states, validate_rule
from smartcity.analytics.shapes import rule_shapes
from smartcity.core.camera_import import CameraImportError, ImportFormat, parse_cameras
from smartcity.core.config import CameraConfig, CameraGroupConfig, format_validation_error
from smartcity.core.errors import NotFound, ValidationFailed
from smartcity.core.events import IncidentState
from smartcity.core.passwords import MAX_LENGTH
from smartcity.core.privacy_config import CameraPrivacySettings
from smartcity.core.video import SignalPush, SignalState
from smartcity.graphql.access import maybe_principal, sees_camera, services, visible_cameras
from smartcity.graphql.auth import MAX_SERVICE_TTL_S, Principal
from smartcity.graphql.context import ApiServices
from smartcity.graphql.incident_scope import may_move
from smartcity.graphql.login_limits import INVALID_USERNAME, LoginThrottled, plausible_username
from smartcity.graphql.results import ValidationLines, denied, invalid, user_out, validation
from smartcity.graphql.types import (
    Camera,
    CameraGroup,
    CameraImport,
    CameraInput,
    Deleted,
    IncidentType,
    IntegrationToken,
    LiveViewAnswer,
    LoginFailed,
    LoginSuccess,
    NotAuthorized,
    NotFoundError,
    Rule,
    RuleInput,
    SignalAccepted,
    User,
    UserInput,
    UserUpdateInput,
    ValidationError,
)
from smartcity.storage.audit_repo import AuditRepo
from smartcity.storage.repo import MissingCameras, upsert_group
from smartcity.storage.rules_repo import RuleRow
from smartcity.storage.users import authenticate, create_user, list_users, update_user
from smartcity.webrtc import LiveViewError

RuleResult = Annotated[Rule | ValidationError | NotAuthorized | NotFoundError, strawberry.union("RuleResult")]
DeleteResult = Annotated[Deleted | NotAuthorized | NotFoundError, strawberry.union("DeleteResult")]
LoginResult = Annotated[LoginSuccess | LoginFailed, strawberry.union("LoginResult")]
IncidentResult = Annotated[
    IncidentType | ValidationError | NotAuthorized | NotFoundError, strawberry.union("IncidentResult")
]
SignalResult = Annotated[SignalAccepted | ValidationError | NotAuthorized | NotFoundError, strawberry.union("SignalResult")]
CameraResult = Annotated[Camera | ValidationError | NotAuthorized, strawberry.union("CameraResult")]
ImportResult = Annotated[CameraImport | ValidationError | NotAuthorized, strawberry.union("CameraImportResult")]
GroupResult = Annotated[CameraGroup | ValidationError | NotAuthorized, strawberry.union("GroupResult")]
UserResult = Annotated[User | ValidationError | NotAuthorized, strawberry.union("UserResult")]
IntegrationTokenResult = Annotated[
    IntegrationToken | ValidationError | NotAuthorized | NotFoundError, strawberry.union("IntegrationTokenResult")
]
LiveViewResult = Annotated[
    LiveViewAnswer | ValidationError | NotAuthorized | NotFoundError, strawberry.union("LiveViewResult")
]
SIGNAL_STATES = ("red", "amber", "green")
MAX_COMMENT = 2000


def _audit(info: Info[Any, Any]) -> AuditRepo:
    return AuditRepo(services(info).db)


async def _save_rule(
    info: Info[Any, Any], rule_id: str, data: RuleInput, *, creating: bool
) -> Rule | ValidationError | NotAuthorized | NotFoundError:
    acting = _acting(info, "operator")
    if isinstance(acting, NotAuthorized):
        return acting
    p, s = acting
    existing = await s.rules.get(rule_id)
    if not creating and (existing is None or not await sees_camera(info, existing.camera_id)):
        return NotFoundError(message=f"rule {rule_id} does not exist")
    if not await sees_camera(info, str(data.camera_id)):
        return NotFoundError(message=f"camera {data.camera_id} does not exist")
    if creating and existing is not None:
        # the same answer whether the rule is the caller's or another group's: ids are global,
        # and nothing about a rule outside the caller's scope may show
        return invalid("id", "not available: choose another id")
    schedule: Any = data.schedule if data.schedule is not None else {"kind": "permanent"}
    if isinstance(schedule, dict):
        schedule = dict(schedule)
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
        # validation is bounded (256-point polygons, vectorised) but CPU work: off the event loop
        validated = await asyncio.to_thread(validate_rule, spec)
    except ValidationFailed as exc:
        return validation(exc)
    clean = validated.model_dump(mode="json")
    _, after = await s.rules.save(clean, actor=p.username, shapes=rule_shapes(clean["params"]))
    s.video.rules_changed(after.camera_id)
    if existing is not None and existing.camera_id != after.camera_id:
        s.video.rules_changed(existing.camera_id)
    return Rule.from_row(after)


async def _move_incident(
    info: Info[Any, Any], incident_id: str, target: IncidentState, comment: str | None
) -> IncidentType | ValidationError | NotAuthorized | NotFoundError:
    acting = _acting(info, "operator")
    if isinstance(acting, NotAuthorized):
        return acting
    p, s = acting
    if s.incidents is None or s.outbox is None:
        return NotFoundError(message="incidents are not enabled on this server (alerts.enabled is false)")
    try:
        rec = await s.outbox.get_incident(incident_id)
    except NotFound:
        return NotFoundError(message=f"incident {incident_id} does not exist")
    cams = await visible_cameras(info)
    if not any(c in cams for c in rec.incident.camera_ids):
        return NotFoundError(message=f"incident {incident_id} does not exist")
    if not may_move(p, rec.incident.camera_ids, cams):
        return NotAuthorized(
            message=f"incident {incident_id} is not in your scope: it also involves cameras of other camera groups"
        )
    if comment is not None and len(comment) > MAX_COMMENT:
        return invalid("comment", f"at most {MAX_COMMENT} characters")
    try:  # audited by the outbox, in the transaction that moves the incident
        moves = s.incidents
        move = {
            IncidentState.ACKNOWLEDGED: moves.acknowledge,
            IncidentState.RESOLVED: moves.resolve,
            IncidentState.DISMISSED: moves.dismiss,
        }[target]
        moved = await move(incident_id, by=p.username, comment=comment)
    except ValidationFailed as exc:
        return validation(exc)
    return IncidentType.from_record(moved)


def _acting(info: Info[Any, Any], need: str) -> tuple[Principal, ApiServices] | NotAuthorized:
    """The caller, if they hold role `need`, and the server's services; or why not."""
    p = maybe_principal(info)
    if (no := denied(p, need)) is not None:
        return no
    assert p is not None
    return p, services(info)


async def _rule_to_operate(info: Info[Any, Any], rule_id: str) -> tuple[Principal, RuleRow] | NotAuthorized | NotFoundError:
    """The caller and the rule they may act on as an operator, or why not (a rule of a camera
    outside their scope does not exist for them)."""
    acting = _acting(info, "operator")
    if isinstance(acting, NotAuthorized):
        return acting
    p, s = acting
    row = await services(info).rules.get(rule_id)
    if row is None or not await sees_camera(info, row.camera_id):
        return NotFoundError(message=f"rule {rule_id} does not exist")
    return p, row


def _self_lockout(p: Principal, username: str, data: UserUpdateInput) -> ValidationError | None:
    if username != p.username:
        return None
    if data.role is not None and data.role != "admin":
        return invalid("role", "an admin may not remove their own admin role")
    if data.disabled:
        return invalid("disabled", "an admin may not disable their own account")
    return None


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Exchange a user name and password for a bearer token (rate limited).")
    async def login(self, info: Info[Any, Any], username: str, password: str) -> LoginResult:
        s = services(info)
        request = info.context.get("request")
        client = getattr(getattr(request, "client", None), "host", None) or "unknown"
        plausible = plausible_username(username)
        try:  # reserved before the password is checked: concurrent guesses count at once
            attempt = s.login_limiter.begin(username if plausible else INVALID_USERNAME, client)
        except LoginThrottled as exc:
            return LoginFailed(message="too many failed logins: wait before trying again", retry_after_s=round(exc.retry_after_s, 1))
        try:  # an absurd name or password is a failure like any other, without hashing
            user = await authenticate(s.db, username, password) if plausible and len(password) <= MAX_LENGTH else None
        except BaseException:
            s.login_limiter.release(attempt)  # the check did not happen (database down, cancelled)
            raise
        if user is None:
            s.login_limiter.failed(attempt)
            actor = attempt.username  # an absurd name is not written anywhere
            await _audit(info).record(at=time.time(), actor=actor, action="login.failed", target=f"client:{client}")
            return LoginFailed(message="wrong user name or password", retry_after_s=0.0)
        s.login_limiter.succeeded(attempt)
        p = Principal(user.id, user.username, user.role, frozenset(user.groups) if user.groups else None)
        await _audit(info).record(at=time.time(), actor=user.username, action="login", target=f"client:{client}")
        return LoginSuccess(token=s.signer.issue(p), user=user_out(user))

    @strawberry.mutation(description="Create a rule of any registered type; it runs on its camera within a second.")
    async def create_rule(self, info: Info[Any, Any], input: RuleInput, id: strawberry.ID | None = None) -> RuleResult:
        rule_id = str(id) if id else f"rule-{uuid.uuid4().hex[:12]}"
        return await _save_rule(info, rule_id, input, creating=True)

    @strawberry.mutation(description="Replace a rule's definition (its camera keeps streaming).")
    async def update_rule(self, info: Info[Any, Any], id: strawberry.ID, input: RuleInput) -> RuleResult:
        return await _save_rule(info, str(id), input, creating=False)

    @strawberry.mutation(description="Pause (enabled: false) or resume a rule.")
    async def set_rule_enabled(self, info: Info[Any, Any], id: strawberry.ID, enabled: bool) -> RuleResult:
        found = await _rule_to_operate(info, str(id))
        if not isinstance(found, tuple):
            return found
        _, row = found
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
        found = await _rule_to_operate(info, str(id))
        if not isinstance(found, tuple):
            return found
        p, row = found
        s = services(info)
        await s.rules.delete(row.id, actor=p.username)  # audited in the same transaction
        s.video.rules_changed(row.camera_id)
        return Deleted(id=id)

    @strawberry.mutation(description="Push the state (red, amber, green) of an external traffic signal to a red_light rule.")
    async def push_signal_state(self, info: Info[Any, Any], rule_id: strawberry.ID, state: str) -> SignalResult:
        found = await _rule_to_operate(info, str(rule_id))
        if not isinstance(found, tuple):
            return found
        p, row = found
        s = services(info)
        if state not in SIGNAL_STATES:
            return invalid("state", "red, amber or green")
        if not takes_signal_states(row.type, row.params):
            return invalid("ruleId", "not a rule that takes signal states (a red_light rule with an external signal)")
        now = time.time()
        applied = await s.video.push_signal(SignalPush(row.camera_id, row.id, SignalState(state), now))
        await _audit(info).record(
            at=now, actor=p.username, action="signal.push", target=f"rule:{row.id}", after={"state": state, "applied": applied}
        )
        return SignalAccepted(rule_id=rule_id, state=state, applied=applied)

    @strawberry.mutation(description="Acknowledge an incident (stops its escalation at once).")
    async def acknowledge_incident(self, info: Info[Any, Any], id: strawberry.ID, comment: str | None = None) -> IncidentResult:
        return await _move_incident(info, str(id), IncidentState.ACKNOWLEDGED, comment)

    @strawberry.mutation(description="Resolve an incident.")
    async def resolve_incident(self, info: Info[Any, Any], id: strawberry.ID, comment: str | None = None) -> IncidentResult:
        return await _move_incident(info, str(id), IncidentState.RESOLVED, comment)

    @strawberry.mutation(description="Dismiss an incident (a false alarm).")
    async def dismiss_incident(self, info: Info[Any, Any], id: strawberry.ID, comment: str | None = None) -> IncidentResult:
        return await _move_incident(info, str(id), IncidentState.DISMISSED, comment)

    @strawberry.mutation(description="Create or update a camera (admins); its group's actor picks it up live.")
    async def upsert_camera(self, info: Info[Any, Any], input: CameraInput) -> CameraResult:
        acting = _acting(info, "admin")
        if isinstance(acting, NotAuthorized):
            return acting
        p, s = acting
        try:
            cfg = CameraConfig(
                id=str(input.id), url=input.url, name=input.name, group=input.group,
                enabled=input.enabled, analysis_fps=input.analysis_fps, site=input.site,
            )
        except PydanticError as exc:
            return validation(ValidationLines(format_validation_error(exc)))
        if s.vet_camera_url is not None and (refused := await s.vet_camera_url(cfg.url)) is not None:
            return invalid("url", refused)  # no file:///etc/passwd, no metadata service
        before = await s.cameras.get_camera(cfg.id)
        row = await s.cameras.upsert_camera(cfg)

        def shown(r: Any) -> dict[str, Any]:
            return {"url": Camera.from_row(r, None).url, "group": r.group, "enabled": r.enabled, "name": r.name,
                    "analysis_fps": r.analysis_fps, "site": r.site}

        await _audit(info).record(
            at=time.time(), actor=p.username, action="camera.upsert",
            target=f"camera:{cfg.id}", before=None if before is None else shown(before), after=shown(row),
        )
        s.video.rules_changed(row.id)
        return Camera.from_row(row, s.status.get(row.id))

    @strawberry.mutation(
        description="Set a camera's privacy-mask zones (polygons of [x, y] in 0..1, filled in live views, snapshots "
        "and evidence, the clear view included) and its view mode (pixelated | background | null: the default); "
        "admins only, audited."
    )
    async def set_camera_privacy(
        self, info: Info[Any, Any], camera_id: strawberry.ID, zones: JSON, view_mode: str | None = None
    ) -> CameraResult:
        acting = _acting(info, "admin")
        if isinstance(acting, NotAuthorized):
            return acting
        p, s = acting
        try:
            settings = CameraPrivacySettings.model_validate({"zones": zones, "view_mode": view_mode})
        except PydanticError as exc:
            return validation(ValidationLines(format_validation_error(exc)))
        if not await sees_camera(info, str(camera_id)):
            return invalid("cameraId", f"camera {camera_id} does not exist")
        row = await s.cameras.set_privacy(str(camera_id), settings.zones, settings.view_mode, actor=p.username)
        if row is None:
            return invalid("cameraId", f"camera {camera_id} does not exist")
        s.video.rules_changed(row.id)  # the actor gets them within a second, its stream keeps running
        return Camera.from_row(row, s.status.get(row.id))

    @strawberry.mutation(description="Create a camera group or change its description (admins).")
    async def upsert_camera_group(self, info: Info[Any, Any], name: str, description: str = "") -> GroupResult:
        acting = _acting(info, "admin")
        if isinstance(acting, NotAuthorized):
            return acting
        p, s = acting
        try:
            cfg = CameraGroupConfig(name=name, description=description)
        except PydanticError as exc:
            return validation(ValidationLines(format_validation_error(exc)))
        before = next((g for g in await s.cameras.list_groups() if g.name == cfg.name), None)
        await upsert_group(s.db, cfg.name, cfg.description)
        await _audit(info).record(
            at=time.time(), actor=p.username, action="group.upsert",
            target=f"group:{cfg.name}", before=None if before is None else {"description": before.description},
            after={"description": cfg.description},
        )
        cams = [Camera.from_row(c, s.status.get(c.id)) for c in await s.cameras.list_cameras() if c.group == cfg.name]
        return CameraGroup(name=cfg.name, description=cfg.description, cameras=cams)

    @strawberry.mutation(
        description="Import a camera inventory, CSV or GeoJSON (admins), in one transaction: its cameras are created "
        "or updated, and the cameras of its groups that it does not list are kept, disabled or deleted with their "
        "rules (`missing`). The actors take the changes at once; streams of unchanged cameras keep running."
    )
    async def import_cameras(
        self,
        info: Info[Any, Any],
        format: ImportFormat,
        data: str,
        missing: MissingCameras = MissingCameras.KEEP,
    ) -> ImportResult:
        acting = _acting(info, "admin")
        if isinstance(acting, NotAuthorized):
            return acting
        p, s = acting
        try:  # up to 10,000 rows: off the event loop
            cams = await asyncio.to_thread(parse_cameras, data, ImportFormat(format))
        except CameraImportError as exc:
            return validation(exc)
        refused = []
        for cam in cams:
            if s.vet_camera_url is not None and (why := await s.vet_camera_url(cam.url)) is not None:
                refused.append(f"{cam.id}: url: {why}")
        if refused:
            return validation(ValidationLines(refused[:100]))
        done = await s.cameras.import_cameras(cams, MissingCameras(missing))
        await _audit(info).record(
            at=time.time(), actor=p.username, action="camera.import", target=f"cameras:{len(cams)}", before=None,
            after={"created": list(done.created), "updated": list(done.updated), "absent": list(done.absent),
                   "missing": done.missing.value},
        )  # fmt: skip
        s.video.rules_changed(cams[0].id)  # one reconciliation applies them all
        return CameraImport(
            created=[strawberry.ID(i) for i in done.created],
            updated=[strawberry.ID(i) for i in done.updated],
            absent=[strawberry.ID(i) for i in done.absent],
            missing=done.missing,
        )

    @strawberry.mutation(description="Create a user with a role and camera-group scope (admins).")
    async def create_user(self, info: Info[Any, Any], input: UserInput) -> UserResult:
        acting = _acting(info, "admin")
        if isinstance(acting, NotAuthorized):
            return acting
        p, s = acting
        try:  # audited in the same transaction
            u = await create_user(services(info).db, input.username, input.password, input.role, input.groups, actor=p.username)
        except ValidationFailed as exc:
            return validation(exc)
        return user_out(u)

    @strawberry.mutation(
        description="Change a user's role, camera groups, password or disable the account (admins); the user's tokens are revoked."
    )
    async def update_user(self, info: Info[Any, Any], username: str, input: UserUpdateInput) -> UserResult:
        acting = _acting(info, "admin")
        if isinstance(acting, NotAuthorized):
            return acting
        p, s = acting
        if (refused := _self_lockout(p, username, input)) is not None:
            return refused
        try:  # audited in the same transaction (never the password)
            u = await update_user(
                s.db, username, actor=p.username, role=input.role,
                groups=input.groups, disabled=input.disabled, password=input.password,
            )
        except ValidationFailed as exc:
            return validation(exc)
        return user_out(u)

    @strawberry.mutation(
        description=(
            "Issue a long-lived integration token for a machine account (admins): accepted only on the extensions' "
            "HTTP routes (/ext/...), with that account's role and scope; revoked by any updateUser of the account."
        )
    )
    async def issue_integration_token(self, info: Info[Any, Any], username: str, days: int) -> IntegrationTokenResult:
        acting = _acting(info, "admin")
        if isinstance(acting, NotAuthorized):
            return acting
        p, s = acting
        max_days = int(MAX_SERVICE_TTL_S // 86_400)
        if not 1 <= days <= max_days:
            return invalid("days", f"between 1 and {max_days}")
        user = next((u for u in await list_users(s.db) if u.username == username), None)
        if user is None or user.disabled:
            return NotFoundError(message=f"no enabled user {username!r}")
        now = time.time()
        machine = Principal(user.id, user.username, user.role, frozenset(user.groups) if user.groups else None)
        token = s.signer.issue_service(machine, ttl_s=days * 86_400.0, now=now)
        expires = now + days * 86_400.0
        await _audit(info).record(  # never the token itself
            at=now, actor=p.username, action="token.integration", target=f"user:{username}", after={"days": days, "expires_at": expires}
        )
        return IntegrationToken(token=token, username=username, expires_at=datetime.fromtimestamp(expires, UTC))

    @strawberry.mutation(description="WebRTC live view: send the browser's offer SDP, get the answer SDP.")
    async def start_live_view(
        self, info: Info[Any, Any], camera_id: strawberry.ID, offer_sdp: str, unpixelated: bool = False
    ) -> LiveViewResult:
        acting = _acting(info, "viewer")
        if isinstance(acting, NotAuthorized):
            return acting
        p, s = acting
        if s.live_views is None:
            return NotFoundError(message="live views are not available on this server")
        if not await sees_camera(info, str(camera_id)):
            return NotFoundError(message=f"camera {camera_id} does not exist")
        if unpixelated and not p.is_admin:
            return NotAuthorized(message="only an admin may turn privacy mode off")
        shapes = [sh for r in await s.rules.list_rules(camera_ids=[str(camera_id)]) if r.enabled for sh in rule_shapes(r.params)]
        try:
            sdp = await s.live_views.answer(str(camera_id), offer_sdp, pixelate=not unpixelated, overlay=shapes, viewer=p.username)
        except (LiveViewError, ValueError) as exc:  # refused offer, no slot left, nothing to advertise
            return invalid("offerSdp", str(exc))
        await _audit(info).record(
            at=time.time(), actor=p.username, action="liveview.unpixelated" if unpixelated else "liveview.start",
            target=f"camera:{camera_id}",
        )
        return LiveViewAnswer(sdp=sdp, ice_servers=JSON(s.live_views.browser_ice_servers()), pixelated=not unpixelated)
