"""The `console` channel: hands an alert (with its sound) to the operator console sink."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from smartcity.storage.outbox import DELIVERED, DeliveryRow, IncidentRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConsoleAlert:
    """An alert the operator console shows and sounds."""

    console: str
    incident_id: str
    kind: str
    severity: str
    camera_ids: tuple[str, ...]
    sound: str


ConsoleSink = Callable[[ConsoleAlert], Awaitable[None]]


class ConsoleSender:
    channel = "console"

    def __init__(self, sink: ConsoleSink | None) -> None:
        self.sink = sink

    async def send(self, delivery: DeliveryRow, incident: IncidentRecord) -> str:
        inc = incident.incident
        alert = ConsoleAlert(
            console=delivery.target,
            incident_id=inc.incident_id,
            kind=inc.kind,
            severity=inc.severity.value,
            camera_ids=inc.camera_ids,
            sound="alarm" if inc.severity.value in ("high", "critical") else "chime",
        )
        if self.sink is not None:
            await self.sink(alert)
        else:
            log.warning("ALERT %s: %s on %s (incident %s)", alert.severity, alert.kind, alert.camera_ids, alert.incident_id)
        return DELIVERED

    async def close(self) -> None:
        return None
