"""Evidence clips next to the pixels: each camera whose rules can raise a clip kind keeps its
recent analysed frames in a ring (downscaled JPEGs with their private masks, bounded by seconds
and by bytes: the oldest go first, counted), and an event that got a still starts a clip that is
cut `after_s` seconds later, from `before_s` before the event, and rendered (pixelated, VP8/WebM)
off the analysis loop by `smartcity.privacy.clip`.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from smartcity.core.events import EvidenceClip, RuleEvent
from smartcity.core.privacy_config import ClipConfig
from smartcity.core.privacy_mask import PrivacyMask
from smartcity.privacy.clip import ClipFrame, keep_frame

_CLIP_NS = uuid.UUID("6f1d3a52-3c3e-4d59-9a51-2f8e0d4f7c11")


def clip_event_id(event_id: str) -> str:
    """The id of an event's clip: the same for a redelivery (idempotent)."""
    return uuid.uuid5(_CLIP_NS, event_id).hex


class FrameRing:
    """Recent frames of one camera, at most `keep_s` seconds and `max_bytes` of JPEG."""

    def __init__(self, keep_s: float, max_bytes: int) -> None:
        self.keep_s = keep_s
        self.max_bytes = max_bytes
        self._frames: deque[ClipFrame] = deque()
        self.bytes = 0
        self.dropped_for_bytes = 0  # frames dropped before their time: the byte cap is too small

    def __len__(self) -> int:
        return len(self._frames)

    def push(self, frame: ClipFrame) -> None:
        self._frames.append(frame)
        self.bytes += len(frame.jpeg)
        while self._frames and self._frames[0].t < frame.t - self.keep_s:
            self.bytes -= len(self._frames.popleft().jpeg)
        while self.bytes > self.max_bytes and len(self._frames) > 1:
            self.bytes -= len(self._frames.popleft().jpeg)
            self.dropped_for_bytes += 1

    def between(self, t0: float, t1: float) -> list[ClipFrame]:
        return [f for f in self._frames if t0 <= f.t <= t1]


@dataclass(frozen=True, slots=True)
class ClipJob:
    """A clip whose frames are all there: render `frames` and send it as `clip`."""

    clip: EvidenceClip
    frames: tuple[ClipFrame, ...]


class ClipRecorder:
    """One camera's ring and the clips waiting for their seconds after the event."""

    def __init__(self, config: ClipConfig) -> None:
        self.config = config
        self.ring = FrameRing(config.before_s + config.after_s + 1.0, config.max_ring_bytes)
        self._pending: list[RuleEvent] = []
        self._last_kept: float | None = None
        self.started = 0
        self.skipped = 0  # clips not recorded: too many at once

    def wants(self, event: RuleEvent) -> bool:
        return self.config.enabled and event.kind in self.config.kinds

    def start(self, event: RuleEvent) -> bool:
        """Record a clip of `event` (which got a still); False when too many are recording."""
        if len(self._pending) >= self.config.max_pending:
            self.skipped += 1
            return False
        self._pending.append(event)
        self.started += 1
        return True

    def observe(self, image: np.ndarray, t: float, mask: PrivacyMask | None) -> list[ClipJob]:
        """Keep the analysed frame of time `t` (at most `fps` a second); the clips now complete."""
        c = self.config
        if self._last_kept is None or t - self._last_kept >= 1.0 / c.fps - 1e-3 or t < self._last_kept:
            self.ring.push(keep_frame(image, t, mask, width=c.width, quality=c.quality))
            self._last_kept = t
        return self._due(t)

    def _due(self, now: float) -> list[ClipJob]:
        jobs: list[ClipJob] = []
        keep: list[RuleEvent] = []
        for ev in self._pending:
            if now < ev.t + self.config.after_s:
                keep.append(ev)
                continue
            frames = self.ring.between(ev.t - self.config.before_s, ev.t + self.config.after_s)
            if frames:
                jobs.append(ClipJob(self._clip_of(ev, frames), tuple(frames)))
        self._pending = keep
        return jobs

    @staticmethod
    def _clip_of(ev: RuleEvent, frames: Sequence[ClipFrame]) -> EvidenceClip:
        return EvidenceClip(
            event_id=clip_event_id(ev.event_id),
            camera_id=ev.camera_id,
            t=ev.t,
            of_event_id=ev.event_id,
            kind=ev.kind,
            start_t=frames[0].t,
            end_t=frames[-1].t,
            frames=len(frames),
        )
