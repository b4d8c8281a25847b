"""Where evidence snapshots and clips go: the interface the server injects into the event bridge, so that
the actors' side never imports storage (implemented by `storage.evidence.EvidenceStore`)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from smartcity.core.events import EvidenceClip, RuleEvent

CLIP_SUFFIX = ".webm"  # an event's clip: its still's path with this suffix
CLIP_MIME = "video/webm"  # VP8 in WebM: every Chromium plays it (H.264 is not in every build)


class EvidenceSink(Protocol):
    async def save(self, event: RuleEvent, jpeg: bytes) -> Path:
        """Store `jpeg` as the evidence of `event` durably and return its file; writing the same
        event again replaces the file (a redelivered event). Raises OSError when it cannot."""
        ...

    async def save_clip(self, clip: EvidenceClip, data: bytes) -> Path:
        """Store the clip of `clip.of_event_id` (WebM, pixelated) next to its still; the same
        clip again replaces the file. Raises OSError when it cannot."""
        ...
