"""Ray on the server side: start/connect Ray, reconcile camera-group actors with the
desired state, and pull their events (cursor-based, acknowledged only once committed).

The server injects two things: `desired()` (groups and cameras from the database) and a
`sink` that returns only once a batch of events is durably stored. This module never
imports storage or the API.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from smartcity.actors.camera_group import EVIDENCE_KEY, CameraSpec
from smartcity.actors.camera_group import remote_class as camera_group_class
from smartcity.actors.inference import remote_class as inference_class
from smartcity.core.aio import raise_if_cancelling, wait_for
from smartcity.core.config import ActorsConfig, AnalysisConfig, RayConfig
from smartcity.core.errors import ValidationFailed
from smartcity.core.events import EVENT_TYPES, Event, RuleEvent, event_from_dict
from smartcity.core.files import PRIVATE_DIR, private_dir, write_private

log = logging.getLogger(__name__)

ACTOR_PREFIX = "camera-group:"
INFERENCE_PREFIX = "inference:"


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

    from smartcity.models.install import MODEL_DIR_ENV, default_model_dir

    # workers inherit the environment: give them an absolute model directory
    os.environ[MODEL_DIR_ENV] = str(default_model_dir().resolve())

    if cfg.address:
        ctx = ray.init(address=cfg.address, namespace=cfg.namespace, log_to_driver=False)
    else:
        _local_ray_on_loopback()
        ctx = ray.init(
            num_cpus=cfg.num_cpus,
            num_gpus=cfg.num_gpus,
            object_store_memory=cfg.object_store_mb * 1024 * 1024,
            include_dashboard=False,
            namespace=cfg.namespace,
            log_to_driver=False,
            configure_logging=False,
            _node_ip_address=LOOPBACK,
        )
    del ctx
    address: str = ray.get_runtime_context().gcs_address
    if not cfg.address:
        _check_local_ray(address)
    return {"address": address, "started": True}


LOOPBACK = "127.0.0.1"
_AUTH_MODE_ENV = "RAY_AUTH_MODE"
# Ray binds its GCS, raylet, workers and agents to the node IP, which it resolves to the
# primary interface (and turns a given 127.0.0.1 back into it) unless "clusters" are off, as on
# macOS: then the node IP is loopback and so is every listening socket. Ray reads the variable
# once at import (the driver may have imported it already) and its children at their start.
_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _local_ray_on_loopback() -> None:
    """Before starting a local Ray: node IP on loopback, token auth on (Ray >= 2.59 turns it
    on for local clusters unless RAY_AUTH_MODE says otherwise, so an override is dropped)."""
    from ray._private import ray_constants

    os.environ[_CLUSTER_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    mode = os.environ.get(_AUTH_MODE_ENV)
    if mode is not None and mode.lower() != "token":
        log.warning("%s=%s ignored: the local Ray always uses token authentication", _AUTH_MODE_ENV, mode)
        del os.environ[_AUTH_MODE_ENV]


def _check_local_ray(gcs_address: str) -> None:
    """Refuse to run on a local Ray that is reachable from the network or has no token auth
    (a Ray version that ignores the settings above): anyone who reaches it runs code as us."""
    host = gcs_address.rsplit(":", 1)[0].strip("[]")
    problems = []
    if host not in (LOOPBACK, "::1", "localhost"):
        problems.append(f"its GCS is on {host}, not loopback")
    if os.environ.get(_AUTH_MODE_ENV, "").lower() != "token":
        problems.append("token authentication is off")
    if problems:
        stop_ray()
        raise RuntimeError(f"local Ray refused: {'; '.join(problems)} (check the installed Ray version, >= 2.59)")


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


@dataclass(frozen=True, slots=True)
class GroupSpec:
    name: str
    cameras: tuple[CameraSpec, ...]
    rules: tuple[str, ...] = ()  # canonical JSON of each rule spec of the group's cameras

    def rule_dicts(self) -> list[dict[str, Any]]:
        return [json.loads(r) for r in self.rules]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:128] or "_"


def rule_json(rule: dict[str, Any]) -> str:
    """Canonical JSON of a rule spec, so that unchanged rules compare equal."""
    return json.dumps(rule, sort_keys=True, separators=(",", ":"), default=str)


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
    failed_starts: int = 0
    next_attempt: float = 0.0


def body_to_event(body: dict[str, Any]) -> Event:
    """Rebuild an event pulled from an actor spool (the spool adds its `seq`)."""
    body = dict(body)
    body.pop(EVIDENCE_KEY, None)
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
        analysis: AnalysisConfig | None = None,
        realtime: bool = True,
        evidence_dir: Path | None = None,
        call_timeout_s: float = 10.0,
    ) -> None:
        self._desired = desired
        self._sink = sink
        self._cfg = actors
        self._ray_cfg = ray_cfg
        self._spool_dir = spool_dir.resolve()
        self._evidence_dir = (evidence_dir or spool_dir.parent / "evidence").resolve()
        self._timeout = call_timeout_s
        self._analysis = analysis
        self._realtime = realtime
        self._groups: dict[str, _GroupState] = {}
        self._remote = camera_group_class()
        self._inference_remote = inference_class() if analysis and analysis.enabled else None
        self._inference: dict[str, Any] = {}
        self.inference_restarts = 0
        self.restarts = 0
        self.bad_events = 0
        self._wake = asyncio.Event()
        self._stopping = False

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

    def inference_status(self) -> dict[str, bool]:
        a = self._analysis
        if a is None or not a.enabled:
            return {}
        names = [f"{INFERENCE_PREFIX}{i}" for i in range(a.inference_actors)]
        return {n: n in self._inference for n in names}

    def inference_handle(self, index: int = 0) -> Any:
        return self._inference.get(f"{INFERENCE_PREFIX}{index}")

    def handle(self, group: str) -> Any:
        st = self._groups.get(group)
        return st.handle if st else None

    def poke(self) -> None:
        """Reconcile now (after a camera or rule change) instead of at the next tick."""
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                raise_if_cancelling()
                try:
                    await self.reconcile_once()
                except Exception:
                    log.exception("reconciliation failed")
                self._wake.clear()
                try:
                    await wait_for(self._wake.wait(), self._cfg.reconcile_interval_s)
                except TimeoutError:
                    pass
        finally:
            await self.shutdown()

    async def reconcile_once(self) -> None:
        if self._stopping:
            return
        await self._reconcile_inference()
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
            if st.handle is None and time.monotonic() < st.next_attempt:
                continue
            if not await self._alive(st):
                log.warning("camera group %s actor is dead (%s); restarting", name, st.last_error)
                self.restarts += 1
                await self._start(st)
            if st.alive and spec != st.spec:
                if spec.cameras != st.spec.cameras:
                    await self._actor_call(st, "update_cameras", [c.to_dict() for c in spec.cameras])
                if spec.rules != st.spec.rules:
                    await self._push_rules(st, spec)
                st.spec = spec

    async def _push_rules(self, st: _GroupState, spec: GroupSpec) -> None:
        result = await self._actor_call(st, "update_rules", spec.rule_dicts())
        for line in result.get("rejected", []):
            log.error("group %s rejected rule %s", spec.name, line)

    async def _reconcile_inference(self) -> None:
        import ray

        a = self._analysis
        if a is None or not a.enabled or self._inference_remote is None:
            return
        for i in range(a.inference_actors):
            name = f"{INFERENCE_PREFIX}{i}"
            handle = self._inference.get(name)
            if handle is not None:
                try:
                    await wait_for(handle.info.remote(), self._timeout)
                    continue
                except Exception as exc:
                    log.warning("inference actor %s is dead (%s); restarting", name, exc)
                    self.inference_restarts += 1
            try:
                old = ray.get_actor(name)
                ray.kill(old, no_restart=True)
            except ValueError:
                pass
            config = {
                "max_batch": a.max_batch,
                "max_wait_ms": a.max_wait_ms,
                "num_cpus": a.inference_cpus,
                "num_gpus": a.inference_gpus,
                "detector": a.detector,
                "models": a.models,
            }
            handle = self._inference_remote.options(
                name=name, num_cpus=a.inference_cpus, num_gpus=a.inference_gpus, max_concurrency=1000
            ).remote(config)
            try:
                await wait_for(handle.info.remote(), 120)
                self._inference[name] = handle
            except Exception as exc:
                self._inference.pop(name, None)
                log.error("inference actor %s failed to start: %s", name, exc)

    async def shutdown(self) -> None:
        """Drain and stop every actor; the reconciler starts nothing afterwards."""
        import ray

        self._stopping = True
        for name in list(self._groups):
            await self._remove(name)
        for name, handle in list(self._inference.items()):
            ray.kill(handle, no_restart=True)
            del self._inference[name]

    # ---- internals -------------------------------------------------------------------------
    def _actor_name(self, group: str) -> str:
        return ACTOR_PREFIX + group

    async def _start(self, st: _GroupState) -> None:
        import ray

        name = self._actor_name(st.spec.name)
        options: dict[str, Any] = {
            "spool_path": str(self._spool_dir / f"{st.spec.name}.sqlite"),
            "health_interval_s": self._cfg.health_interval_s,
            "spool_max_events": self._cfg.spool_max_events,
            "realtime": self._realtime,
        }
        a = self._analysis
        if a is not None and a.enabled:
            options.update(
                inference_actors=[f"{INFERENCE_PREFIX}{i}" for i in range(a.inference_actors)],
                model_roles=sorted({str(m["role"]) for m in a.model_list()} - {"detect"}),
                max_inflight=a.max_inflight,
                motion=a.motion,
                tracker=a.tracker,
                summary_interval_s=a.summary_interval_s,
                counts_flush_s=a.counts_flush_s,
                record_dir=str(a.record_detections_dir.resolve()) if a.record_detections_dir else None,
            )
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
            if st.spec.rules:
                await wait_for(st.handle.update_rules.remote(st.spec.rule_dicts()), 60)
            st.info = await wait_for(st.handle.start.remote(), 60)
            st.alive = True
            st.last_error = ""
        except Exception as exc:
            st.alive = False
            if isinstance(exc, TimeoutError):
                st.last_error = "start timed out after 60s: not enough Ray resources (CPU) for the actor?"
            else:
                st.last_error = f"start failed: {type(exc).__name__}: {exc}"[:2000]
            log.error("camera group %s failed to start: %s", st.spec.name, st.last_error)
            # kill it so that the next reconciliation starts a fresh one, after a backoff
            ray.kill(st.handle, no_restart=True)
            st.handle = None
            st.failed_starts += 1
            st.next_attempt = time.monotonic() + min(30.0, 0.5 * 2**st.failed_starts)
            return
        st.failed_starts = 0

    async def _alive(self, st: _GroupState) -> bool:
        if st.handle is None:
            return False
        try:
            st.info = await wait_for(st.handle.ping.remote(), self._timeout)
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
            # a live actor drains its outbox and records its cameras offline; a dead one is
            # only killed (its outbox stays on disk for the next start)
            if st.alive and await self._alive(st):
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
            return await wait_for(getattr(st.handle, method).remote(*args), self._timeout)
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
                event = body_to_event(body)
                if EVIDENCE_KEY in body and isinstance(event, RuleEvent):
                    event = await self._store_evidence(event, body[EVIDENCE_KEY])
                events.append(event)
            except ValidationFailed as exc:
                self.bad_events += 1
                log.error("group %s sent an unreadable event (seq %s): %s", st.spec.name, body.get("seq"), exc)
        await self._sink.deliver(events)
        last = int(bodies[-1]["seq"])
        await self._actor_call(st, "ack", last)
        st.cursor = last
        st.pulled += len(events)
        return len(bodies)

    async def _store_evidence(self, event: RuleEvent, jpeg_b64: str) -> RuleEvent:
        """Write an event's snapshot under evidence/<camera>/<day>/<event id>.jpg (idempotent)."""
        day = time.strftime("%Y-%m-%d", time.gmtime(event.t))
        path = self._evidence_dir / _safe(event.camera_id) / day / f"{_safe(event.event_id)}.jpg"

        def write() -> None:
            private_dir(self._evidence_dir, dedicated=True)  # pictures of people: for the server's user only
            path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
            tmp = path.with_suffix(".tmp")
            write_private(tmp, base64.b64decode(jpeg_b64))
            tmp.replace(path)

        try:
            await asyncio.to_thread(write)
        except (OSError, ValueError) as exc:
            log.error("evidence of %s not stored: %s", event.event_id, exc)
            return event
        return dataclasses.replace(event, evidence_path=str(path))

    async def _bridge(self, st: _GroupState) -> None:
        failing = False
        while True:
            raise_if_cancelling()
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
