"""The strawberry schema: cameras and their live status (queries and subscriptions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules
from strawberry.types import Info

from smartcity.core.bus import Overflow
from smartcity.core.config import redact_url
from smartcity.core.errors import SubscriptionClosed
from smartcity.core.events import CameraHealth
from smartcity.graphql.context import ApiServices
from smartcity.storage.repo import CameraRow


def _services(info: Info[Any, Any]) -> ApiServices:
    services: ApiServices = info.context["services"]
    return services


def _ts(t: float | None) -> dt.datetime | None:
    return None if t is None else dt.datetime.fromtimestamp(t, tz=dt.UTC)


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
            at=dt.datetime.fromtimestamp(h.t, tz=dt.UTC),
            input_fps=h.input_fps,
            analysed_fps=h.analysed_fps,
            last_frame_at=_ts(h.last_frame_t),
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

    @strawberry.field(description="Latest health report, null before the first one.")
    def status(self, info: Info[Any, Any]) -> CameraStatus | None:
        h = _services(info).status.get(str(self.id))
        return CameraStatus.from_event(h) if h else None

    @classmethod
    def from_row(cls, r: CameraRow) -> Camera:
        return cls(
            id=strawberry.ID(r.id),
            name=r.name,
            url=redact_url(r.url),
            group=r.group,
            enabled=r.enabled,
            analysis_fps=r.analysis_fps,
            site=r.site,
        )


@strawberry.type
class Query:
    @strawberry.field(description="Every camera, ordered by id.")
    async def cameras(self, info: Info[Any, Any]) -> list[Camera]:
        rows = await _services(info).cameras.list_cameras()
        return [Camera.from_row(r) for r in rows]

    @strawberry.field(description="One camera by id, or null.")
    async def camera(self, info: Info[Any, Any], id: strawberry.ID) -> Camera | None:
        row = await _services(info).cameras.get_camera(str(id))
        return Camera.from_row(row) if row else None


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Live camera health reports, optionally for some cameras only.")
    async def camera_status(
        self, info: Info[Any, Any], camera_ids: list[strawberry.ID] | None = None
    ) -> AsyncGenerator[CameraStatus, None]:
        services = _services(info)
        wanted = {str(c) for c in camera_ids} if camera_ids else None
        sub = services.bus.subscribe(
            "graphql:cameraStatus",
            [CameraHealth],
            maxsize=services.subscription_queue,
            overflow=Overflow.CLOSE,
            predicate=(lambda e: e.camera_id in wanted) if wanted else None,
        )
        try:
            while True:
                try:
                    event = await sub.get()
                except SubscriptionClosed as exc:
                    raise RuntimeError(f"subscription closed: {exc.reason}") from None
                yield CameraStatus.from_event(event)
        finally:
            sub.close()


def make_schema(*, introspection: bool = True) -> strawberry.Schema:
    """The API schema; with `introspection=False` introspection queries are refused."""
    extensions: list[Any] = []
    if not introspection:
        extensions.append(AddValidationRules([NoSchemaIntrospectionCustomRule]))
    return strawberry.Schema(query=Query, subscription=Subscription, extensions=extensions)


schema = make_schema()
