"""Subscriptions of the operator API (graphql-transport-ws): rule events, incidents, camera
status, live count buckets, console alerts.

Each subscriber owns a bounded bus queue (`ApiServices.subscription_queue`) with the CLOSE
policy: a subscriber that cannot keep up is closed with a reason ("... too slow: queue of N
full") sent to it as the subscription's error, and the publisher never waits for it. The
camera scope is taken when the subscription starts and applied in the bus predicate, so an
event of a camera outside the scope is never even queued. Generators always await the queue.

Every `session_check_s` (`server.session_check_s`) a stream reads its user again (see
`session`): a disabled account, a role or scope change or revoked tokens close it with
"session revoked: <why>" before anything else is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any

import strawberry
from strawberry.types import Info

from smartcity.core.aio import wait_for
from smartcity.core.bus import Overflow
from smartcity.core.errors import SubscriptionClosed
from smartcity.core.events import CameraHealth, ConsoleAlert, CountBucket, Event, Incident, RuleEvent
from smartcity.graphql.access import principal, services, visible_cameras
from smartcity.graphql.incident_scope import scoped_alert, scoped_incidents
from smartcity.graphql.session import SessionRevoked, recheck
from smartcity.graphql.types import (
    CameraStatus,
    ConsoleAlertType,
    CountBucketType,
    IncidentType,
    RuleEventType,
)


class SubscriptionEnded(Exception):
    """Sent to the client as the subscription's error: why the server closed it."""


async def _stream(
    info: Info[Any, Any],
    name: str,
    types: tuple[type[Event], ...],
    match: Callable[[Any, frozenset[str]], bool],
    cams: frozenset[str] | None = None,
) -> AsyncGenerator[Any, None]:
    s = services(info)
    p = principal(info)  # raises when not authenticated
    scope = cams if cams is not None else frozenset(await visible_cameras(info))
    sub = s.bus.subscribe(
        f"graphql:{name}:{p.username}",
        types,
        maxsize=s.subscription_queue,
        overflow=Overflow.CLOSE,
        predicate=lambda e: match(e, scope),
    )
    loop = asyncio.get_running_loop()
    next_check = loop.time() + s.session_check_s
    try:
        while True:
            event = None
            try:
                # no timer while events are queued: the hot path of a busy stream stays as cheap
                wait = None if sub.qsize() else max(0.0, next_check - loop.time())
                event = await wait_for(sub.get(), wait)
            except TimeoutError:
                pass  # time to check the session
            except SubscriptionClosed as exc:
                raise SubscriptionEnded(f"subscription closed: {exc.reason}") from None
            if loop.time() >= next_check:
                try:
                    await recheck(info.context)
                except SessionRevoked as exc:
                    raise SubscriptionEnded(str(exc)) from None
                next_check = loop.time() + s.session_check_s
            if event is not None:
                yield event
    finally:
        sub.close()


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Live camera health reports in scope, optionally for some cameras.")
    async def camera_status(
        self, info: Info[Any, Any], camera_ids: list[strawberry.ID] | None = None
    ) -> AsyncGenerator[CameraStatus, None]:
        wanted = frozenset(str(c) for c in camera_ids) if camera_ids else None

        def match(e: CameraHealth, cams: frozenset[str]) -> bool:
            return e.camera_id in cams and (wanted is None or e.camera_id in wanted)

        async for e in _stream(info, "cameraStatus", (CameraHealth,), match):
            yield CameraStatus.from_event(e)

    @strawberry.subscription(description="Live rule events in scope, filtered by camera, rule, kind (event type) and class.")
    async def events(
        self,
        info: Info[Any, Any],
        camera_id: strawberry.ID | None = None,
        rule_id: str | None = None,
        kind: str | None = None,
        object_class: str | None = None,
    ) -> AsyncGenerator[RuleEventType, None]:
        cam = _opt(camera_id)

        def match(e: RuleEvent, cams: frozenset[str]) -> bool:
            return (
                e.camera_id in cams
                and (cam is None or e.camera_id == cam)
                and (rule_id is None or e.rule_id == rule_id)
                and (kind is None or e.kind == kind)
                and (object_class is None or e.object_class == object_class)
            )

        async for e in _stream(info, "events", (RuleEvent,), match):
            yield RuleEventType.from_event(e)

    @strawberry.subscription(description="Incidents opened or updated in scope (any of their cameras), optionally by state.")
    async def incidents(self, info: Info[Any, Any], state: str | None = None) -> AsyncGenerator[IncidentType, None]:
        def match(e: Incident, cams: frozenset[str]) -> bool:
            return any(c in cams for c in e.camera_ids) and (state is None or e.state.value == state)

        p = principal(info)
        cams = frozenset(await visible_cameras(info))
        async for e in _stream(info, "incidents", (Incident,), match, cams):
            shown = (await scoped_incidents(services(info).db, p, [e], cams))[0]
            if shown is not None:
                yield shown

    @strawberry.subscription(description="Live 1-minute count buckets in scope (running totals).")
    async def count_buckets(
        self,
        info: Info[Any, Any],
        camera_id: strawberry.ID | None = None,
        rule_id: str | None = None,
        object_class: str | None = None,
        direction: str | None = None,
    ) -> AsyncGenerator[CountBucketType, None]:
        cam = _opt(camera_id)

        def match(e: CountBucket, cams: frozenset[str]) -> bool:
            return (
                e.camera_id in cams
                and (cam is None or e.camera_id == cam)
                and (rule_id is None or e.rule_id == rule_id)
                and (object_class is None or e.object_class == object_class)
                and (direction is None or e.direction == direction)
            )

        async for e in _stream(info, "countBuckets", (CountBucket,), match):
            yield CountBucketType.from_event(e)

    @strawberry.subscription(description="Console alerts (sound + banner) for incidents in scope.")
    async def alerts(self, info: Info[Any, Any]) -> AsyncGenerator[ConsoleAlertType, None]:
        def match(e: ConsoleAlert, cams: frozenset[str]) -> bool:
            return any(c in cams for c in (e.camera_ids or (e.camera_id,)))

        p = principal(info)
        cams = frozenset(await visible_cameras(info))
        async for e in _stream(info, "alerts", (ConsoleAlert,), match, cams):
            yield scoped_alert(ConsoleAlertType.from_event(e), p, cams)
