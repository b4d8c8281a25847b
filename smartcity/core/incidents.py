"""Typed records of incidents and alert deliveries: what the incident store hands fusion, the
dispatcher and the API, whichever database holds them.

They live in core because fusion (which plans deliveries), storage (which keeps them),
integrations (which send them) and graphql (which shows them) all read them, and core is
the one package each of those may import.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from smartcity.core.events import Incident


class DeliveryState(StrEnum):
    """Where an alert delivery stands (see storage/outbox.py for the moves between them)."""

    SCHEDULED = "scheduled"  # an escalation step, due later while nobody acknowledges
    PENDING = "pending"  # due (or claimed under a lease, or waiting for a retry)
    SENT = "sent"  # accepted by the channel, receipt awaited
    DELIVERED = "delivered"
    FAILED = "failed"  # permanent failure
    DEAD = "dead"  # attempts exhausted; replayable
    CANCELLED = "cancelled"  # the incident was acknowledged or closed first
    SUPPRESSED = "suppressed"  # recorded, never sent (quiet hours, rate limit)


WAITING: tuple[DeliveryState, ...] = (DeliveryState.SCHEDULED, DeliveryState.PENDING)
FINAL: tuple[DeliveryState, ...] = (
    DeliveryState.DELIVERED,
    DeliveryState.FAILED,
    DeliveryState.DEAD,
    DeliveryState.CANCELLED,
    DeliveryState.SUPPRESSED,
)


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """A stored incident: the fused incident plus who moved it through its lifecycle."""

    incident: Incident
    acknowledged_by: str | None
    acknowledged_at: float | None
    resolved_by: str | None
    resolved_at: float | None
    comment: str | None

    def to_dict(self) -> dict[str, Any]:
        d = self.incident.to_dict()
        d.update(
            acknowledged_by=self.acknowledged_by,
            acknowledged_at=self.acknowledged_at,
            resolved_by=self.resolved_by,
            resolved_at=self.resolved_at,
            comment=self.comment,
        )
        return d


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A delivery to insert with its incident: state scheduled, pending or suppressed."""

    incident_id: str
    channel: str
    target: str
    idempotency_key: str
    due_at: float
    state: DeliveryState = DeliveryState.PENDING
    note: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A stored alert delivery. `updated_at` is its next due time while it waits, else the
    time of its last change."""

    id: int
    incident_id: str
    channel: str
    target: str
    state: DeliveryState
    attempts: int
    last_error: str | None
    idempotency_key: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed delivery and the incident it alerts about (None if retention removed it)."""

    delivery: DeliveryRecord
    incident: IncidentRecord | None


@dataclass(frozen=True, slots=True)
class EventSource:
    """What made one of an incident's events: fusion's de-duplication key after a restart."""

    rule_id: str
    camera_id: str
    track_id: int | None
    object_class: str | None


@dataclass(frozen=True, slots=True)
class ActiveIncident:
    """An incident still open or acknowledged, with the sources of its events found in the
    register (what a restarted fusion needs to go on de-duplicating it)."""

    incident: Incident
    sources: tuple[EventSource, ...]
