"""Read-only views of the stored data (cameras, rule events, counts, incidents) for code that
must not hold the database: extensions read through `ReadOnlyStore`, storage implements it.

Values are the core event types where one exists (`RuleEvent`, `Incident`) and frozen
dataclasses otherwise; camera URLs are left out on purpose (they may carry passwords).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from smartcity.core.events import Incident, IncidentState, RuleEvent

MAX_READ = 10_000
"""Most rows one read returns, whatever `limit` asks."""


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """A camera as an extension sees it: no URL."""

    id: str
    name: str
    group: str
    site: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class CountPoint:
    """Crossings of one counting rule, class and direction in one time bucket."""

    bucket_start: float
    rule_id: str
    object_class: str
    direction: str
    n: int


class ReadOnlyStore(Protocol):
    """Queries over the stored register; nothing here writes."""

    async def cameras(self) -> Sequence[CameraInfo]:
        """Every camera, ordered by id."""
        ...

    async def rule_events(
        self,
        *,
        camera_id: str | None = None,
        rule_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> Sequence[RuleEvent]:
        """Rule events matching every given filter, newest first; `since` inclusive, `until`
        exclusive; at most `limit` (capped at MAX_READ)."""
        ...

    async def counts(
        self, *, camera_id: str, since: float, until: float, bucket_s: int = 3600, rule_id: str | None = None
    ) -> Sequence[CountPoint]:
        """Crossings per `bucket_s` bucket in [since, until), oldest first."""
        ...

    async def incidents(
        self, *, state: IncidentState | None = None, since: float | None = None, limit: int = 100
    ) -> Sequence[Incident]:
        """Incidents (with their lifecycle fields) most recently seen first; `since` on last_seen."""
        ...
