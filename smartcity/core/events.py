"""Typed, frozen events that cross boundaries (actor -> core -> storage -> API).

Every event has a stable `event_id` chosen by its producer, so that a redelivery
(after an actor restart, a bridge retry or a server restart) is recognised and
ignored by the writer. Events serialise to plain JSON-able dicts tagged by `type`.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from smartcity.core.errors import ValidationFailed


def new_event_id() -> str:
    """A fresh globally unique event id (hex uuid4, 32 characters)."""
    return uuid.uuid4().hex


class CameraState(StrEnum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    STARTING = "starting"


class IncidentState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event: who produced it, when (unix seconds), under which id."""

    type: ClassVar[str] = "event"
    event_id: str = field(default_factory=new_event_id)
    camera_id: str
    t: float

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        d["type"] = self.type
        return d


def _plain(v: Any) -> Any:
    if isinstance(v, StrEnum):
        return v.value
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraHealth(Event):
    """Periodic health of one camera, produced by the actor that owns it."""

    type: ClassVar[str] = "camera_health"
    group: str
    state: CameraState
    seq: int = 0
    input_fps: float = 0.0
    analysed_fps: float = 0.0
    last_frame_t: float | None = None
    decode_errors: int = 0
    reconnects: int = 0
    frames_dropped: int = 0
    width: int | None = None
    height: int | None = None
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectionSummary(Event):
    """Detections and tracks of a camera over a short window (anonymous counts only)."""

    type: ClassVar[str] = "detection_summary"
    frames: int
    window_s: float
    detections_by_class: dict[str, int] = field(default_factory=dict)
    active_tracks: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleEvent(Event):
    """Something an operator rule observed: a crossing, a dwell, a red-light passage..."""

    type: ClassVar[str] = "rule_event"
    rule_id: str
    rule_type: str
    kind: str
    object_class: str | None = None
    track_id: int | None = None
    severity: Severity = Severity.INFO
    payload: dict[str, Any] = field(default_factory=dict)
    evidence_path: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CountBucket(Event):
    """Anonymous count of line crossings for one class and direction in one time bucket.

    `n` is the running total of one *part* of the bucket: crossings confirmed after the bucket was
    handed out for good open a new part (see smartcity.analytics.counts); the bucket's count is
    the sum of the latest `n` of each of its parts. "" is the part of a bucket given whole.
    """

    type: ClassVar[str] = "count_bucket"
    rule_id: str
    object_class: str
    direction: str
    bucket_start: float
    bucket_s: int
    n: int
    part: str = ""

    def part_key(self) -> tuple[str, str, str, str, float, int, str]:
        """What identifies the part this is an emission of (storage keeps one row per part)."""
        return (self.camera_id, self.rule_id, self.object_class, self.direction, self.bucket_start, self.bucket_s,
                self.part)


@dataclass(frozen=True, slots=True, kw_only=True)
class Incident(Event):
    """Fused rule events that an operator acknowledges, resolves or dismisses."""

    type: ClassVar[str] = "incident"
    incident_id: str
    rule_id: str | None
    kind: str
    severity: Severity
    state: IncidentState = IncidentState.OPEN
    camera_ids: tuple[str, ...] = ()
    first_seen: float = 0.0
    last_seen: float = 0.0
    count: int = 1
    event_ids: tuple[str, ...] = ()
    # who moved it through its lifecycle (set on the updates that follow an operator action)
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    resolved_by: str | None = None
    resolved_at: float | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleAlert(Event):
    """An alert for the operators' console (sound + banner); live only, never stored.

    `camera_id` is the first camera of the incident (for scoping); all are in `camera_ids`.
    """

    type: ClassVar[str] = "console_alert"
    incident_id: str
    kind: str
    severity: Severity
    camera_ids: tuple[str, ...] = ()
    sound: str = "alert"
    console: str = "operators"


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceClip(Event):
    """The evidence clip of a rule event, handed over by the camera actor with the clip's bytes
    (WebM, people pixelated) in its envelope, seconds after the event itself. `t` and
    `camera_id` are the rule event's (its clip is filed next to its still); the server stores
    the file and does not register the clip as an event of its own."""

    type: ClassVar[str] = "evidence_clip"
    of_event_id: str
    kind: str
    start_t: float
    end_t: float
    frames: int


E = TypeVar("E", bound=Event)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (CameraHealth, DetectionSummary, RuleEvent, CountBucket, Incident, ConsoleAlert, EvidenceClip)
}

_ENUM_FIELDS: dict[str, type[StrEnum]] = {
    "state": CameraState,
    "severity": Severity,
}


def event_from_dict(d: dict[str, Any]) -> Event:
    """Rebuild an event from `Event.to_dict()` output; raises ValidationFailed on bad input."""
    kind = d.get("type")
    cls = EVENT_TYPES.get(str(kind))
    if cls is None:
        raise ValidationFailed(f"type: unknown event type {kind!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {k: v for k, v in d.items() if k in names}
    unknown = set(d) - names - {"type"}
    if unknown:
        raise ValidationFailed(f"{kind}: unknown fields {sorted(unknown)}")
    for k, enum in _ENUM_FIELDS.items():
        if k in kwargs and kwargs[k] is not None:
            if cls is Incident and k == "state":
                kwargs[k] = IncidentState(kwargs[k])
            else:
                kwargs[k] = enum(kwargs[k])
    for k in ("camera_ids", "event_ids"):
        if k in kwargs and isinstance(kwargs[k], list):
            kwargs[k] = tuple(kwargs[k])
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValidationFailed(f"{kind}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class EventEnvelope:
    """An event as a camera-group actor hands it to the server: the event, its sequence number
    in the actor's durable outbox (the server acknowledges up to it once the event is committed),
    and the JPEG evidence snapshot taken with it, if any (already privacy-safe)."""

    event: Event
    seq: int
    evidence: bytes | None = None
