"""Ray on the server side: start/connect Ray, reconcile camera-group actors with the
desired state, and pull their events (cursor-based, acknowledged only once committed).

The server injects two things: `desired()` (groups and cameras from the database) and a
`sink` that returns only once a batch of events is durably stored. This module never
imports storage or the API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from smartcity.actors.camera_group import CameraSpec, remote_class
from smartcity.core.config import ActorsConfig, RayConfig
from smartcity.core.errors import ValidationFailed
from smartcity.core.events import EVENT_TYPES, Event, event_from_dict

log = logging.getLogger(__name__)

ACTOR_PREFIX = "camera-group:"


def start_ray(cfg: RayConfig) -> dict[str, Any]:
    """Connect to `cfg.address`, or start a local Ray without dashboard, bounded by config."""
    import ray

    if ray.is_initialized():
        return {"address": ray.get_runtime_context().gcs_address, "started": False}
    # Ray installs abseil's failure handler on SIGTERM, which aborts the process 3 s later
    # instead of letting the server shut down gracefully: keep the handlers we had.
    saved = _signal_handlers()
    try:
        return _init_ray(cfg)
    finally:
        _restore_signal_handlers(saved)


def _signal_handlers() -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore_signal_handlers(saved: dict[int, Any]) -> None:
    for sig, handler in saved.items():
        if handler is not None:
            signal.signal(sig, handler)


def _init_ray(cfg: RayConfig) -> dict[str, Any]:
    import ray

    if cfg.address:
        ctx = ray.init(address=cfg.address, namespace=cfg.namespace, log_to_driver=False)
    else:
        ctx = ray.init(
            num_cpus=cfg.num_cpus,
            num_gpus=cfg.num_gpus,
            object_store_memory=cfg.object_store_mb * 1024 * 1024,
            include_dashboard=False,
            namespace=cfg.namespace,
            log_to_driver=False,
            configure_logging=False,
        )
    del ctx
    return {"address": ray.get_runtime_context().gcs_address, "started": True}


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


@dataclass(frozen=True, slots=True)
class GroupSpec:
    name: str
    cameras: tuple[CameraSpec, ...]


class ActorUnreachable(Exception):
    """A call to a camera-group actor failed (dead, restarting or too slow)."""


class EventSink(Protocol):
    async def deliver(self, events: Sequence[Event]) -> None:
        """Return only once every event is durably stored (duplicates count as stored)."""


@dataclass
class _GroupState:
    spec: GroupSpec
    handle: Any = None
    cursor: int = 0
    starts: int = 0
    last_start: float = 0.0
    alive: bool = False
    last_error: str = ""
    pulled: int = 0
    bridge: asyncio.Task[None] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def body_to_event(body: dict[str, Any]) -> Event:
    """Rebuild an event pulled from an actor spool (the spool adds its `seq`)."""
    body = dict(body)
    cls = EVENT_TYPES.get(str(body.get("type")))
    if cls is not None and "seq" not in {f.name for f in dataclasses.fields(cls)}:
        body.pop("seq", None)
    return event_from_dict(body)


class Reconciler:
    """Keeps one CameraGroupActor per desired group, restarts dead ones, and bridges events."""

    def __init__(
        self,
        desired: Callable[[], Awaitable[list[GroupSpec]]],
        sink: EventSink,
        *,
        actors: ActorsConfig,
        ray_cfg: RayConfig,
        spool_dir: Path,
        call_timeout_s: float = 10.0,
    ) -> None:
        self._desired = desired
        self._sink = sink
        self._cfg = actors
        self._ray_cfg = ray_cfg
        self._spool_dir = spool_dir.resolve()
        self._timeout = call_timeout_s
        self._groups: dict[str, _GroupState] = {}
        self._remote = remote_class()
        self.restarts = 0
        self.bad_events = 0
        self._wake = asyncio.Event()

    # ---- public -----------------------------------------------------------------------
    def status(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "alive": st.alive,
                "cameras": [c.id for c in st.spec.cameras],
                "starts": st.starts,
                "cursor": st.cursor,
                "pulled": st.pulled,
                "last_error": st.last_error,
            }
            for name, st in self._groups.items()
        }

    def handle(self, group: str) -> Any:
        st = self._groups.get(group)
        return st.handle if st else None

    def poke(self) -> None:
        """Reconcile now (after a camera or rule change) instead of at the next tick."""
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.reconcile_once()
                except Exception:
                    log.exception("reconciliation failed")
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._cfg.reconcile_interval_s)
                except TimeoutError:
                    pass
        finally:
            await self.shutdown()

    async def reconcile_once(self) -> None:
        desired = {g.name: g for g in await self._desired()}
        for name in list(self._groups):
            if name not in desired:
                await self._remove(name)
        for name, spec in desired.items():
            st = self._groups.get(name)
            if st is None:
                st = self._groups[name] = _GroupState(spec)
                await self._start(st)
                st.bridge = asyncio.get_running_loop().create_task(self._bridge(st), name=f"bridge:{name}")
                continue
            if not await self._alive(st):
                log.warning("camera group %s actor is dead (%s); restarting", name, st.last_error)
                self.restarts += 1
                await self._start(st)
            if st.alive and spec != st.spec:
                await self._actor_call(st, "update_cameras", [c.to_dict() for c in spec.cameras])
                st.spec = spec

    async def shutdown(self) -> None:
        for name in list(self._groups):
            await self._remove(name)

    # ---- internals -------------------------------------------------------------------------
    def _actor_name(self, group: str) -> str:
        return ACTOR_PREFIX + group

    async def _start(self, st: _GroupState) -> None:
        import ray

        name = self._actor_name(st.spec.name)
        options = {
            "spool_path": str(self._spool_dir / f"{st.spec.name}.sqlite"),
            "health_interval_s": self._cfg.health_interval_s,
            "spool_max_events": self._cfg.spool_max_events,
        }
        try:
            old = ray.get_actor(name)
            ray.kill(old, no_restart=True)
        except ValueError:
            pass
        st.handle = self._remote.options(
            name=name, num_cpus=self._ray_cfg.actor_cpus, max_concurrency=64
        ).remote(st.spec.name, [c.to_dict() for c in st.spec.cameras], options)
        st.starts += 1
        st.last_start = time.monotonic()
        try:
            st.info = await asyncio.wait_for(st.handle.start.remote(), 60)
            st.alive = True
            st.last_error = ""
        except Exception as exc:
            st.alive = False
            st.last_error = f"start failed: {exc}"
            log.error("camera group %s failed to start: %s", st.spec.name, exc)

    async def _alive(self, st: _GroupState) -> bool:
        if st.handle is None:
            return False
        try:
            st.info = await asyncio.wait_for(st.handle.ping.remote(), self._timeout)
            st.alive = True
        except Exception as exc:
            st.alive = False
            st.last_error = f"{type(exc).__name__}: {exc}"[:300]
        return st.alive

    async def _remove(self, name: str) -> None:
        import ray

        st = self._groups.pop(name, None)
        if st is None:
            return
        if st.bridge is not None:
            st.bridge.cancel()
            try:
                await st.bridge
            except asyncio.CancelledError:
                pass
        if st.handle is not None:
            try:
                await self._drain(st)
                await self._actor_call(st, "stop")
                await self._drain(st)
            except Exception as exc:
                log.warning("camera group %s did not stop cleanly: %s", name, exc)
            ray.kill(st.handle, no_restart=True)
            st.handle = None

    async def _drain(self, st: _GroupState) -> None:
        while await self._pull_once(st):
            pass

    async def _actor_call(self, st: _GroupState, method: str, *args: Any) -> Any:
        try:
            return await asyncio.wait_for(getattr(st.handle, method).remote(*args), self._timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise ActorUnreachable(f"{st.spec.name}.{method}: {type(exc).__name__}: {exc}"[:300]) from exc

    async def _pull_once(self, st: _GroupState) -> int:
        """Pull one batch after the cursor, store it, then acknowledge it to the actor."""
        bodies: list[dict[str, Any]] = await self._actor_call(st, "events", st.cursor, self._cfg.pull_batch)
        if not bodies:
            return 0
        events: list[Event] = []
        for body in bodies:
            try:
                events.append(body_to_event(body))
            except ValidationFailed as exc:
                self.bad_events += 1
                log.error("group %s sent an unreadable event (seq %s): %s", st.spec.name, body.get("seq"), exc)
        await self._sink.deliver(events)
        last = int(bodies[-1]["seq"])
        await self._actor_call(st, "ack", last)
        st.cursor = last
        st.pulled += len(events)
        return len(bodies)

    async def _bridge(self, st: _GroupState) -> None:
        failing = False
        while True:
            if not st.alive or st.handle is None:
                await asyncio.sleep(self._cfg.pull_interval_s)
                continue
            try:
                n = await self._pull_once(st)
                if failing:
                    log.info("event pull from group %s recovered", st.spec.name)
                    failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    log.warning("event pull from group %s failing: %s", st.spec.name, exc)
                    failing = True
                if isinstance(exc, ActorUnreachable):
                    # the reconciler checks the actor at once and restarts it if it is dead
                    st.last_error = str(exc)
                    self._wake.set()
                # else the sink (database) failed: the events stay in the actor's spool
                await asyncio.sleep(self._cfg.pull_interval_s)
                continue
            if n < self._cfg.pull_batch:
                await asyncio.sleep(self._cfg.pull_interval_s)
