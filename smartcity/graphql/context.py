"""What the GraphQL layer needs from the server, injected by the app (never the actors)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from smartcity.core.bus import EventBus
from smartcity.core.status import StatusBoard
from smartcity.storage.repo import CameraRepo, EventRepo


@dataclass
class ApiServices:
    bus: EventBus
    cameras: CameraRepo
    events: EventRepo
    status: StatusBoard
    reconcile_now: Callable[[], None]
    health: Callable[[], Awaitable[dict[str, Any]]]
    subscription_queue: int = 256
