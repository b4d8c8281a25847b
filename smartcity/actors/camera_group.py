"""CameraGroupActor: owns a group of cameras on a Ray worker and publishes their events.

The actor decodes its cameras (one source thread each), and periodically records each
camera's health. Every event it produces goes first into its durable spool; the server
pulls them with a cursor (`events(after=...)`) and acknowledges them once committed
(`ack(upto=...)`). The class is plain Python (tested without Ray); `CameraGroupActor`
is its Ray remote form.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from smartcity.actors.spool import EventSpool, SpoolFull
from smartcity.core.events import CameraHealth, CameraState, Event

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """What the server wants one camera to be (sent to the actor as a plain dict)."""

    id: str
    url: str
    analysis_fps: float = 5.0
    enabled: bool = True
    name: str = ""
    site: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CameraSpec:
        return cls(
            id=str(d["id"]),
            url=str(d["url"]),
            analysis_fps=float(d.get("analysis_fps", 5.0)),
            enabled=bool(d.get("enabled", True)),
            name=str(d.get("name", "")),
            site=str(d.get("site", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "analysis_fps": self.analysis_fps,
            "enabled": self.enabled,
            "name": self.name,
            "site": self.site,
        }


@dataclass(frozen=True, slots=True)
class GroupOptions:
    spool_path: str
    health_interval_s: float = 5.0
    spool_max_events: int = 1_000_000

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GroupOptions:
        return cls(
            spool_path=str(d["spool_path"]),
            health_interval_s=float(d.get("health_interval_s", 5.0)),
            spool_max_events=int(d.get("spool_max_events", 1_000_000)),
        )


class Source(Protocol):
    def start(self) -> None: ...
    def stop(self, timeout: float | None = ...) -> object: ...
    def health(self) -> Any: ...


def open_source(spec: CameraSpec) -> Source:
    from smartcity.sources import CameraSource

    return CameraSource(spec.id, spec.url, analysis_fps=spec.analysis_fps)


class CameraGroup:
    """The actor's logic; every public method is async and called through Ray."""

    def __init__(self, group: str, cameras: list[dict[str, Any]], options: dict[str, Any]) -> None:
        self.group = group
        self.options = GroupOptions.from_dict(options)
        self.specs = {c.id: c for c in (CameraSpec.from_dict(d) for d in cameras)}
        self.spool = EventSpool(Path(self.options.spool_path), max_events=self.options.spool_max_events)
        self.sources: dict[str, Source] = {}
        self.health_dropped = 0
        self._last_state: dict[str, CameraState] = {}
        self._last_emit: dict[str, float] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._started_at = time.time()

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> dict[str, Any]:
        """Open the cameras and start the health loop (idempotent)."""
        if self._loop_task is None:
            for spec in self.specs.values():
                self._open(spec)
            self._loop_task = asyncio.get_running_loop().create_task(self._health_loop())
        return await self.ping()

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except asyncio.CancelledError:
                pass
            self._loop_task = None
        for cam_id in list(self.sources):
            self._close(cam_id)
        # last word: every camera of a stopped group is offline. The spool stays open so
        # that the server can drain it; the process ends with the actor.
        self._record([self._health_event(cid, None, message="camera group stopped") for cid in self.specs])

    async def ping(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "pid": os.getpid(),
            "cameras": sorted(self.specs),
            "spool_pending": self.spool.pending,
            "last_seq": self.spool.last_seq,
            "health_dropped": self.health_dropped,
            "started_at": self._started_at,
        }

    async def update_cameras(self, cameras: list[dict[str, Any]]) -> dict[str, list[str]]:
        """Apply a new camera list: open new ones, close removed ones, reopen changed ones.

        Unchanged cameras keep their streams.
        """
        wanted = {c.id: c for c in (CameraSpec.from_dict(d) for d in cameras)}
        changes: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
        for cam_id in list(self.specs):
            if cam_id not in wanted:
                self._close(cam_id)
                del self.specs[cam_id]
                changes["removed"].append(cam_id)
        for cam_id, spec in wanted.items():
            old = self.specs.get(cam_id)
            if old == spec:
                continue
            if old is not None:
                self._close(cam_id)
                changes["changed"].append(cam_id)
            else:
                changes["added"].append(cam_id)
            self.specs[cam_id] = spec
            if self._loop_task is not None:
                self._open(spec)
        return changes

    # ---- event pull --------------------------------------------------------------------
    async def events(self, after: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Unacknowledged events with seq > after, in order (each body carries its `seq`)."""
        return [e.body for e in self.spool.read(after, limit)]

    async def ack(self, upto: int) -> int:
        return self.spool.ack(upto)

    # ---- internals -----------------------------------------------------------------------
    def _open(self, spec: CameraSpec) -> None:
        if not spec.enabled:
            return
        try:
            src = open_source(spec)
            src.start()
        except Exception as exc:  # a bad camera never takes the group down
            log.exception("camera %s failed to open", spec.id)
            self._record([self._health_event(spec.id, None, message=f"cannot open source: {exc}")])
            return
        self.sources[spec.id] = src

    def _close(self, cam_id: str) -> None:
        src = self.sources.pop(cam_id, None)
        if src is not None:
            try:
                src.stop(5.0)
            except Exception:
                log.exception("camera %s failed to stop", cam_id)

    def _health_event(self, cam_id: str, src: Source | None, message: str = "") -> CameraHealth:
        now = time.time()
        spec = self.specs.get(cam_id)
        if src is None:
            reason = message or ("camera disabled" if spec is not None and not spec.enabled else "not running")
            return CameraHealth(camera_id=cam_id, t=now, group=self.group, state=CameraState.OFFLINE, message=reason)
        h = src.health()
        return CameraHealth(
            camera_id=cam_id,
            t=now,
            group=self.group,
            state=CameraState(h.state),
            input_fps=round(float(h.input_fps), 3),
            analysed_fps=round(float(h.analysed_fps), 3),
            last_frame_t=h.last_frame_t,
            decode_errors=int(h.decode_errors),
            reconnects=int(h.reconnects),
            frames_dropped=int(h.frames_dropped),
            width=h.width,
            height=h.height,
            message=str(h.message),
        )

    def _record(self, events: list[Event]) -> None:
        if not events:
            return
        try:
            self.spool.append([e.to_dict() for e in events])
        except SpoolFull:
            # Health is periodic status: when the server has not taken events for a long
            # time, the newest health reports are dropped (counted), never rule events.
            self.health_dropped += len(events)

    async def _health_loop(self) -> None:
        interval = self.options.health_interval_s
        tick = min(interval, 0.5)
        while True:
            now = time.monotonic()
            due: list[Event] = []
            for cam_id in sorted(self.specs):
                src = self.sources.get(cam_id)
                ev = self._health_event(cam_id, src)
                changed = self._last_state.get(cam_id) != ev.state
                if changed or now - self._last_emit.get(cam_id, -1e9) >= interval:
                    due.append(ev)
                    self._last_state[cam_id] = ev.state
                    self._last_emit[cam_id] = now
            self._record(due)
            await asyncio.sleep(tick)


def remote_class() -> Any:
    """The Ray actor class (built lazily so that importing this module never needs Ray)."""
    import ray

    return ray.remote(CameraGroup)
