"""Where evidence snapshots go: the interface the server injects into the event bridge, so that
the actors' side never imports storage (implemented by `storage.evidence.EvidenceStore`)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from smartcity.core.events import RuleEvent


class EvidenceSink(Protocol):
    async def save(self, event: RuleEvent, jpeg: bytes) -> Path:
        """Store `jpeg` as the evidence of `event` durably and return its file; writing the same
        event again replaces the file (a redelivered event). Raises OSError when it cannot."""
        ...
