"""GraphQL output and input types."""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from smartcity.core.camera_import import ImportFormat
from smartcity.core.events import CameraHealth, ConsoleAlert, CountBucket, Incident, RuleEvent
from smartcity.core.incidents import IncidentRecord
from smartcity.core.logsafe import redact_url
from smartcity.graphql.images import evidence_clip_path, evidence_path, signed_url, snapshot_path
from smartcity.storage.evidence import has_clip
from smartcity.storage.incidents_repo import IncidentRepo
from smartcity.storage.repo import CameraRow, MissingCameras
from smartcity.storage.rules_repo import RuleRow

IMAGE_URL = (
    "{}: a URL that carries its own picture token (valid a few minutes, for this picture only); "
    "ask again for a fresh one."
)


def ts(t: float | None) -> dt.datetime | None:
    return None if t is None else dt.datetime.fromtimestamp(t, tz=dt.UTC)


def ts_(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


@strawberry.type(description="Health of one camera as last reported by the actor that owns it.")
class CameraStatus:
    camera_id: strawberry.ID
    group: str
    state: str = strawberry.field(description="online, degraded, offline or starting")
    at: dt.datetime
    input_fps: float
    analysed_fps: float
    last_frame_at: dt.datetime | None
    decode_errors: int
    reconnects: int
    frames_dropped: int
    width: int | None
    height: int | None
    message: str
    seq: int = strawberry.field(description="Sequence number of the report in its actor's outbox.")

    @classmethod
    def from_event(cls, h: CameraHealth) -> CameraStatus:
        return cls(
            camera_id=strawberry.ID(h.camera_id),
            group=h.group,
            state=h.state.value,
            at=ts_(h.t),
            input_fps=h.input_fps,
            analysed_fps=h.analysed_fps,
            last_frame_at=ts(h.last_frame_t),
            decode_errors=h.decode_errors,
            reconnects=h.reconnects,
            frames_dropped=h.frames_dropped,
            width=h.width,
            height=h.height,
            message=h.message,
            seq=h.seq,
        )


@strawberry.type(description="A camera the server analyses.")
class Camera:
    id: strawberry.ID
    name: str
    url: str = strawberry.field(description="Source URL with any password hidden.")
    group: str
    enabled: bool
    analysis_fps: float
    site: str
    status: CameraStatus | None = strawberry.field(description="Latest health report, null before the first one.")
    privacy_zones: JSON = strawberry.field(
        description="Privacy-mask zones: [[[x, y], ...], ...] in normalised coordinates, filled in every picture."
    )
    view_mode: str | None = strawberry.field(description="pixelated | background; null: the server's default.")

    @strawberry.field(description=IMAGE_URL.format("Latest picture, people pixelated"))
    def snapshot_url(self, info: strawberry.Info) -> str:
        return signed_url(info, snapshot_path(self.id))

    @classmethod
    def from_row(cls, r: CameraRow, status: CameraHealth | None) -> Camera:
        return cls(
            id=strawberry.ID(r.id),
            name=r.name,
            url=redact_url(r.url),
            group=r.group,
            enabled=r.enabled,
            analysis_fps=r.analysis_fps,
            site=r.site,
            status=CameraStatus.from_event(status) if status else None,
            privacy_zones=JSON([[list(p) for p in poly] for poly in r.privacy_zones]),
            view_mode=r.view_mode,
        )


@strawberry.type(description="A camera group: the unit of user scopes (and of a camera actor).")
class CameraGroup:
    name: str
    description: str
    cameras: list[Camera]


@strawberry.type(description="An operator rule on one camera.")
class Rule:
    id: strawberry.ID
    camera_id: strawberry.ID
    type: str
    name: str
    enabled: bool
    classes: list[str]
    min_confidence: float
    cooldown_s: float
    schedule: JSON
    params: JSON = strawberry.field(description="Parameters of the rule type, geometry included (normalised).")
    geometry: JSON = strawberry.field(
        description="Every zone and line of the params as a list of [x, y] points (normalised 0..1), for drawing."
    )
    version: int
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, r: RuleRow) -> Rule:
        return cls(
            id=strawberry.ID(r.id),
            camera_id=strawberry.ID(r.camera_id),
            type=r.type,
            name=r.name,
            enabled=r.enabled,
            classes=list(r.classes),
            min_confidence=r.min_confidence,
            cooldown_s=r.cooldown_s,
            schedule=JSON(r.schedule),
            params=JSON(r.params),
            geometry=JSON(list(r.geometry)),
            version=r.version,
            updated_at=ts_(r.updated_at),
        )


@strawberry.type(description="A registered rule type, its traits and the JSON schema of its parameters.")
class RuleType:
    name: str
    default_classes: list[str]
    severity: str
    params_schema: JSON
    produces_counts: bool = strawberry.field(description="Its rules add crossings to the camera's counts.")
    accepts_signals: bool = strawberry.field(description="Its rules can take signal states (pushSignalState).")
    colour: str = strawberry.field(description="CSS colour the console draws its rules' geometry in.")


@strawberry.type(description="Something a rule observed (the register).")
class RuleEventType:
    id: strawberry.ID
    camera_id: strawberry.ID
    rule_id: str | None
    rule_type: str | None
    kind: str | None
    object_class: str | None
    severity: str | None
    at: dt.datetime
    payload: JSON
    has_evidence: strawberry.Private[bool]

    @strawberry.field(description=IMAGE_URL.format("Evidence snapshot (JPEG, people pixelated), or null"))
    def evidence_url(self, info: strawberry.Info) -> str | None:
        return signed_url(info, evidence_path(self.id)) if self.has_evidence else None

    @classmethod
    def from_event(cls, e: RuleEvent) -> RuleEventType:
        return cls(
            id=strawberry.ID(e.event_id),
            camera_id=strawberry.ID(e.camera_id),
            rule_id=e.rule_id,
            rule_type=e.rule_type,
            kind=e.kind,
            object_class=e.object_class,
            severity=e.severity.value,
            at=ts_(e.t),
            payload=JSON(e.payload),
            has_evidence=bool(e.evidence_path),
        )

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> RuleEventType:
        payload = r.get("payload")
        return cls(
            id=strawberry.ID(r["event_id"]),
            camera_id=strawberry.ID(r["camera_id"]),
            rule_id=r.get("rule_id"),
            rule_type=r.get("rule_type"),
            kind=r.get("kind"),
            object_class=r.get("object_class"),
            severity=r.get("severity"),
            at=ts_(float(r["t"])),
            payload=JSON(payload if isinstance(payload, dict) else {}),
            has_evidence=bool(r.get("evidence_path")),
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class RuleEventEdge:
    cursor: str
    node: RuleEventType


@strawberry.type
class RuleEventConnection:
    edges: list[RuleEventEdge]
    page_info: PageInfo


@strawberry.type(description="Fused rule events that an operator acknowledges, resolves or dismisses.")
class IncidentType:
    id: strawberry.ID
    rule_id: str | None
    kind: str
    severity: str
    state: str
    camera_ids: list[str]
    first_seen: dt.datetime
    last_seen: dt.datetime
    count: int
    event_ids: list[str]
    acknowledged_by: str | None = None
    acknowledged_at: dt.datetime | None = None
    resolved_by: str | None = None
    resolved_at: dt.datetime | None = None
    comment: str | None = None

    @strawberry.field(
        description=IMAGE_URL.format(
            "Evidence snapshot (JPEG, people pixelated) of the incident's first event that has one, or null"
        )
    )
    async def evidence_url(self, info: strawberry.Info) -> str | None:
        event_id = await self._evidence_event(info)
        return signed_url(info, evidence_path(event_id)) if event_id else None

    @strawberry.field(
        description=IMAGE_URL.format(
            "Evidence clip (WebM, a few seconds before and after, people pixelated) of the event whose"
            " snapshot `evidenceUrl` shows, once recorded, or null"
        )
    )
    async def evidence_clip_url(self, info: strawberry.Info) -> str | None:
        event_id = await self._evidence_event(info)
        if not event_id or not await has_clip(info.context["services"].db, event_id):
            return None
        return signed_url(info, evidence_clip_path(event_id))

    async def _evidence_event(self, info: strawberry.Info) -> str | None:
        """The incident's first event with a snapshot (one query for every incident of a response)."""
        loader = info.context.get("evidence_loader")
        if loader is None:
            loader = info.context["evidence_loader"] = evidence_loader(info.context["services"].db)
        event_id: str | None = await loader.load(tuple(self.event_ids))
        return event_id

    @classmethod
    def from_record(cls, rec: IncidentRecord | Incident) -> IncidentType:
        inc = rec.incident if isinstance(rec, IncidentRecord) else rec
        return cls(
            id=strawberry.ID(inc.incident_id),
            rule_id=inc.rule_id,
            kind=inc.kind,
            severity=inc.severity.value,
            state=inc.state.value,
            camera_ids=list(inc.camera_ids),
            first_seen=ts_(inc.first_seen),
            last_seen=ts_(inc.last_seen),
            count=inc.count,
            event_ids=list(inc.event_ids),
            acknowledged_by=rec.acknowledged_by,
            acknowledged_at=ts(rec.acknowledged_at),
            resolved_by=rec.resolved_by,
            resolved_at=ts(rec.resolved_at),
            comment=rec.comment,
        )


def evidence_loader(db: Any) -> DataLoader[tuple[str, ...], str | None]:
    """Batches the evidence lookups of every incident in one response into one query. Keyed by
    the incident's event ids, so an incident that gained events is looked up again."""

    async def load(keys: list[tuple[str, ...]]) -> list[str | None]:
        return await IncidentRepo(db).first_evidence(keys)

    return DataLoader(load_fn=load, max_batch_size=500)


@strawberry.type
class IncidentEdge:
    cursor: str
    node: IncidentType


@strawberry.type
class IncidentConnection:
    edges: list[IncidentEdge]
    page_info: PageInfo


@strawberry.type(description="Crossings of one class in one direction over one bucket.")
class CountPoint:
    bucket_start: dt.datetime
    rule_id: str
    object_class: str
    direction: str
    n: int


@strawberry.type(
    description="A live count bucket (1 minute): the running total `n` of one part of it. A crossing confirmed "
    "after the bucket was handed out opens a new part; the bucket's count is the sum over its parts of each "
    "part's latest `n` (as the `counts` query gives it)."
)
class CountBucketType:
    camera_id: strawberry.ID
    rule_id: str
    object_class: str
    direction: str
    bucket_start: dt.datetime
    bucket_s: int
    n: int
    part: str = strawberry.field(description="Which part of the bucket `n` counts ('': the bucket given whole).")

    @classmethod
    def from_event(cls, c: CountBucket) -> CountBucketType:
        return cls(
            camera_id=strawberry.ID(c.camera_id),
            rule_id=c.rule_id,
            object_class=c.object_class,
            direction=c.direction,
            bucket_start=ts_(c.bucket_start),
            bucket_s=c.bucket_s,
            n=c.n,
            part=c.part,
        )


@strawberry.type(description="An alert for the console: play its sound, show the incident.")
class ConsoleAlertType:
    incident_id: strawberry.ID
    kind: str
    severity: str
    camera_ids: list[str]
    sound: str
    at: dt.datetime

    @classmethod
    def from_event(cls, a: ConsoleAlert) -> ConsoleAlertType:
        return cls(
            incident_id=strawberry.ID(a.incident_id),
            kind=a.kind,
            severity=a.severity.value,
            camera_ids=list(a.camera_ids),
            sound=a.sound,
            at=ts_(a.t),
        )


@strawberry.type
class AlertDelivery:
    id: int
    incident_id: str
    channel: str
    target: str
    state: str
    attempts: int
    last_error: str | None
    updated_at: dt.datetime


@strawberry.type
class User:
    id: int
    username: str
    role: str
    groups: list[str]
    disabled: bool


@strawberry.type
class AuditEntry:
    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    before: JSON | None
    after: JSON | None


# ---- typed errors (mutations never answer a bad input with a 500) ---------------------------
@strawberry.type(description="One invalid field: `field` is its path, e.g. params.zone.")
class FieldError:
    field: str
    message: str


@strawberry.type(description="The input was refused; every problem is listed.")
class ValidationError:
    message: str
    errors: list[FieldError]


@strawberry.type(description="The caller may not do this (role or camera-group scope).")
class NotAuthorized:
    message: str


@strawberry.type
class NotFoundError:
    message: str


@strawberry.type
class LoginSuccess:
    token: str
    user: User


@strawberry.type(description="A long-lived token for a machine (sensor gateway, fleet or signal system): shown once.")
class IntegrationToken:
    token: str
    username: str
    expires_at: dt.datetime = strawberry.field(description="After this, the integration needs a new token.")


@strawberry.type
class LoginFailed:
    message: str
    retry_after_s: float


@strawberry.type
class Deleted:
    id: strawberry.ID


@strawberry.type
class SignalAccepted:
    rule_id: strawberry.ID
    state: str
    applied: bool = strawberry.field(description="False when the camera is not running right now.")


@strawberry.type
class LiveViewAnswer:
    sdp: str
    ice_servers: JSON
    pixelated: bool


@strawberry.input(description="A rule as operators describe it; params are validated by the rule type.")
class RuleInput:
    camera_id: strawberry.ID
    type: str
    name: str = ""
    enabled: bool = True
    classes: list[str] | None = None
    min_confidence: float = 0.3
    cooldown_s: float = 0.0
    schedule: JSON | None = None
    params: JSON = strawberry.field(default_factory=dict)


@strawberry.input
class CameraInput:
    id: strawberry.ID
    url: str
    name: str = ""
    group: str = "default"
    enabled: bool = True
    analysis_fps: float = 5.0
    site: str = ""


# the enums are exposed as they are (strawberry.enum marks the class itself)
strawberry.enum(ImportFormat, name="CameraFileFormat", description="A camera inventory file.")
strawberry.enum(
    MissingCameras,
    name="MissingCameras",
    description="What an import does to the cameras of its groups that the file does not list.",
)


@strawberry.type(description="What a camera import changed (ids only: URLs may hold passwords).")
class CameraImport:
    created: list[strawberry.ID]
    updated: list[strawberry.ID]
    absent: list[strawberry.ID] = strawberry.field(
        description="Cameras of the imported groups that the file does not list: kept, disabled or deleted per `missing`."
    )
    missing: MissingCameras


@strawberry.input(description="Fields left null are kept.")
class UserUpdateInput:
    role: str | None = None
    groups: list[str] | None = strawberry.field(default=None, description="Camera groups; [] = every group.")
    disabled: bool | None = None
    password: str | None = None


@strawberry.input
class UserInput:
    username: str
    password: str
    role: str = "viewer"
    groups: list[str] = strawberry.field(default_factory=list)
