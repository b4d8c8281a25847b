"""What the GraphQL layer needs from the server, injected by the app (never the actors)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from smartcity.core.bus import EventBus
from smartcity.core.status import StatusBoard
from smartcity.graphql.auth import TokenSigner
from smartcity.graphql.login_limits import LoginLimiter
from smartcity.storage.db import Database
from smartcity.storage.repo import CameraRepo
from smartcity.storage.rules_repo import RuleRepo


@dataclass
class ApiServices:
    bus: EventBus
    db: Database
    cameras: CameraRepo
    rules: RuleRepo
    status: StatusBoard
    signer: TokenSigner
    login_limiter: LoginLimiter
    # a camera's rules (or the camera) changed: push them to its running actor (within a second)
    rules_changed: Callable[[str], None]
    health: Callable[[], Awaitable[dict[str, Any]]]
    # camera id, rule id, state, t -> whether a running camera took it
    push_signal: Callable[[str, str, str, float], Awaitable[bool]]
    incidents: Any = None  # smartcity.integrations.alerting.IncidentActions when alerting runs
    outbox: Any = None  # smartcity.storage.outbox.Outbox when alerting runs
    live_views: Any = None  # smartcity.webrtc.LiveViewHub when Ray runs
    subscription_queue: int = 256
    # how often an open subscription re-reads its user (disabled, scope changed, tokens revoked)
    session_check_s: float = 5.0
    max_page: int = 500
    # why the cameras policy refuses a camera URL (host names resolved, links followed); None: allowed
    vet_camera_url: Callable[[str], Awaitable[str | None]] | None = None
