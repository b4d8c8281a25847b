"""What the GraphQL layer needs from the server, injected by the app (never the actors)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from smartcity.core.bus import EventBus
from smartcity.core.incidents import DeliveryRecord, DeliveryState, IncidentRecord
from smartcity.core.status import StatusBoard
from smartcity.core.video import VideoControl
from smartcity.graphql.auth import TokenSigner
from smartcity.graphql.login_limits import LoginLimiter
from smartcity.storage.db import Database
from smartcity.storage.repo import CameraRepo
from smartcity.storage.rules_repo import RuleRepo

if TYPE_CHECKING:  # aiortc is imported only by servers that run live views
    from smartcity.webrtc import LiveViewHub


class IncidentMoves(Protocol):
    """Operator actions on incidents, each audited in the transaction that moves the incident."""

    async def acknowledge(self, incident_id: str, *, by: str, comment: str | None = None) -> IncidentRecord: ...
    async def resolve(self, incident_id: str, *, by: str, comment: str | None = None) -> IncidentRecord: ...
    async def dismiss(self, incident_id: str, *, by: str, comment: str | None = None) -> IncidentRecord: ...


class DeliveryLog(Protocol):
    """What the API reads of the alert outbox: incidents and their deliveries."""

    async def get_incident(self, incident_id: str) -> IncidentRecord: ...
    async def list_deliveries(
        self, *, incident_id: str | None = None, state: DeliveryState | None = None, limit: int = 100
    ) -> list[DeliveryRecord]: ...


@dataclass
class ApiServices:
    bus: EventBus
    db: Database
    cameras: CameraRepo
    rules: RuleRepo
    status: StatusBoard
    signer: TokenSigner
    login_limiter: LoginLimiter
    # snapshots, signal pushes, rule changes (a camera's actor gets its rules within a second)
    video: VideoControl
    incidents: IncidentMoves | None = None  # when alerting runs
    outbox: DeliveryLog | None = None  # when alerting runs
    live_views: LiveViewHub | None = None  # when Ray runs
    subscription_queue: int = 256
    # how often an open subscription re-reads its user (disabled, scope changed, tokens revoked)
    session_check_s: float = 5.0
    max_page: int = 500
    # why the cameras policy refuses a camera URL (host names resolved, links followed); None: allowed
    vet_camera_url: Callable[[str], Awaitable[str | None]] | None = None
