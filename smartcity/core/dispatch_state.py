"""What emergency dispatch (the `cap` channel) must remember across a restart, and the interface
of the store that keeps it (implemented by `storage.cap_state.CapStateRepo`).

Per incident: the Alert as it went out (its identifier and `sent` time are what every later
Update or Cancel references), the targets it was sent to (recorded before each send), the
latest follow-up, the operator moves already followed up, whether it is still active (the feed), and the deferred `confirm_first`
deliveries an operator's confirmation or dismissal releases at once. Messages are kept as their
JSON form (`integrations.cap_message.message_to_json`), so that this layer knows nothing of CAP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class DispatchRecord:
    incident_id: str
    alert: Mapping[str, Any] | None  # None: deliveries wait for confirmation, no Alert out yet
    event_ids: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    latest: Mapping[str, Any] | None = None
    followed: tuple[str, ...] = ()  # incident states already followed up (Update/Cancel queued)
    active: bool = True
    waiting: tuple[int, ...] = ()  # deferred delivery ids
    updated_at: float = 0.0


class DispatchStateStore(Protocol):
    async def save(self, record: DispatchRecord) -> None:
        """Insert or replace the record of `record.incident_id` (durable on return)."""

    async def get(self, incident_id: str) -> DispatchRecord | None: ...

    async def recent(self, limit: int) -> list[DispatchRecord]:
        """The `limit` most recently updated records, newest first."""
