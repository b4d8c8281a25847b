"""The storage interfaces fusion and alerting read through: the incident store (incidents and
the deliveries planned with them, lifecycle moves) and the delivery outbox (claiming, sending,
recording outcomes). `smartcity.storage.outbox.Outbox` implements both; tests may pass any
object with these methods.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from smartcity.core.events import Incident, IncidentState
from smartcity.core.incidents import (
    ActiveIncident,
    Claimed,
    DeliveryRecord,
    DeliveryState,
    IncidentRecord,
    NewDelivery,
)


class IncidentStore(Protocol):
    """Where incidents and their planned deliveries are kept (the database is the authority)."""

    async def commit(self, snapshots: Sequence[Incident], deliveries: Sequence[NewDelivery], now: float) -> None:
        """Upsert incident snapshots and insert their deliveries in one transaction (a newer
        snapshot wins, the state never moves back, a known idempotency key is ignored)."""
        ...

    async def transition(
        self,
        incident_id: str,
        to: IncidentState,
        allowed_from: Collection[IncidentState],
        *,
        by: str,
        at: float,
        comment: str | None = None,
    ) -> tuple[IncidentRecord, int]:
        """Move an incident (audited, its scheduled deliveries cancelled); returns the record
        and how many deliveries were cancelled. Raises NotFound or ValidationFailed."""
        ...

    async def get_incident(self, incident_id: str) -> IncidentRecord:
        """The stored incident; raises NotFound."""
        ...

    async def active_incidents_with_sources(self, since: float) -> list[ActiveIncident]:
        """Incidents still active and last seen at or after `since`, oldest first."""
        ...

    async def replay(self, delivery_id: int, now: float) -> DeliveryRecord:
        """Send a dead or failed delivery again; raises NotFound or ValidationFailed."""
        ...


class DeliveryOutbox(Protocol):
    """What the dispatcher and channel receipts need of the stored deliveries."""

    async def claim(self, now: float, lease_s: float, limit: int = 100) -> list[Claimed]:
        """Take up to `limit` due deliveries under a lease until `now + lease_s`."""
        ...

    async def finish(
        self,
        delivery_id: int,
        state: DeliveryState,
        now: float,
        error: str | None = None,
        *,
        from_states: Collection[DeliveryState] = ...,
    ) -> bool:
        """Move a delivery to `state` if it is in one of `from_states`; whether it moved."""
        ...

    async def retry_at(self, delivery_id: int, due_at: float, error: str) -> None:
        """Leave a pending delivery for another attempt at `due_at`."""
        ...

    async def escalate_now(self, incident_id: str, now: float) -> DeliveryRecord | None:
        """Make the incident's next scheduled delivery due now; the one made due, if any."""
        ...

    async def list_deliveries_by_id(self, ids: Collection[int]) -> list[DeliveryRecord]:
        """The deliveries with these ids (those found)."""
        ...
