"""The `console` channel: an alert (banner and sound) for the operator console, published on
the bus as a ConsoleAlert that the GraphQL `alerts` subscription streams to the consoles."""

from __future__ import annotations

from typing import Literal

from smartcity.core.events import ConsoleAlert, Severity
from smartcity.core.incidents import DeliveryRecord, DeliveryState, IncidentRecord
from smartcity.integrations.channel import AlertChannel, ChannelConfig, register_channel

LOUD = (Severity.HIGH, Severity.CRITICAL)


class ConsoleConfig(ChannelConfig):
    type: Literal["console"] = "console"


@register_channel
class ConsoleChannel(AlertChannel):
    """Targets are console names (usually `operators`); always available."""

    type = "console"
    config_model = ConsoleConfig
    rate_limited = True
    wakes_people = True
    always_on = True

    async def send(self, delivery: DeliveryRecord, incident: IncidentRecord) -> DeliveryState:
        inc = incident.incident
        await self.ctx.bus.publish(
            ConsoleAlert(
                camera_id=inc.camera_ids[0] if inc.camera_ids else "",
                t=self.ctx.clock.time(),
                incident_id=inc.incident_id,
                kind=inc.kind,
                severity=inc.severity,
                camera_ids=tuple(inc.camera_ids),
                sound="alarm" if inc.severity in LOUD else "chime",
                console=delivery.target,
            )
        )
        return DeliveryState.DELIVERED
