"""Ray on the server side: reconcile camera-group actors with the desired state, and pull
their events (cursor-based, acknowledged only once committed). Starting and stopping Ray
itself: `actors.ray_node` (re-exported here).

The server injects three things: `desired()` (groups and cameras from the database), a
`sink` that returns only once a batch of events is durably stored, and an evidence sink that
writes the snapshots pulled with rule events. This module never imports storage or the API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from smartcity.actors.camera_group import CameraSpec, GroupInfo, GroupOptions, RulesApplied
from smartcity.actors.camera_group import remote_class as camera_group_class
from smartcity.actors.inference import remote_class as inference_class
from smartcity.actors.motion import MotionConfig
from smartcity.actors.ray_node import RayStarted as RayStarted
from smartcity.actors.ray_node import start_ray as start_ray
from smartcity.actors.ray_node import stop_ray as stop_ray
from smartcity.core.aio import cancel_and_wait, raise_if_cancelling, wait_for
from smartcity.core.config import ActorsConfig, AnalysisConfig, RayConfig
from smartcity.core.events import Event, EventEnvelope, EvidenceClip, RuleEvent
from smartcity.core.evidence import EvidenceSink
from smartcity.core.privacy_config import PrivacyConfig
from smartcity.core.video import CameraRuntime, InferenceRuntime
from smartcity.tracking.config import TrackerConfig

log = logging.getLogger(__name__)

ACTOR_PREFIX = "camera-group:"
START_CONCURRENCY = 4  # camera group actors starting at once
INFERENCE_PREFIX = "inference:"
# Ray records every task's events for its dashboard and state API, and the GCS keeps the latest
# 100,000 (`RAY_task_events_max_num_task_in_gcs`): at 20-30 calls a second (frames to infer, live
# frames, event pulls) the GCS grew ~2 MiB a minute (bench/soak.py, 3 cameras and a live view),
# for about an hour before that cap. The actors' calls are per frame and not worth recording:
# off for both actor kinds (also for handles found by name, which carry the actor's setting).
ACTOR_TASK_EVENTS: dict[str, Any] = {"enable_task_events": False}


@dataclass(frozen=True, slots=True)
class GroupSpec:
    name: str
    cameras: tuple[CameraSpec, ...]
    rules: tuple[str, ...] = ()  # canonical JSON of each rule spec of the group's cameras

    def rule_dicts(self) -> list[dict[str, Any]]:
        return [json.loads(r) for r in self.rules]


def rule_json(rule: dict[str, Any]) -> str:
    """Canonical JSON of a rule spec, so that unchanged rules compare equal."""
    return json.dumps(rule, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """The reconciler's view of one camera group actor."""

    alive: bool
    cameras: tuple[str, ...]
    starts: int  # 1 for an actor that never restarted
    cursor: int  # seq of the last event stored and acknowledged
    pulled: int
    last_error: str
    node_id: str = ""  # the Ray node the actor runs on, as it last said


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
    info: GroupInfo | None = None
    failed_starts: int = 0
    next_attempt: float = 0.0


async def unpack_envelopes(
    batch: Sequence[EventEnvelope], evidence: EvidenceSink | None
) -> tuple[list[Event], int]:
    """The events of a pulled batch, each rule event pointing at its snapshot once `evidence` has
    written it; and how many snapshots were not stored (the event is stored without one rather
    than held back: a bridge built without a sink keeps no pictures, a failed write is logged)."""
    events: list[Event] = []
    lost = 0
    for env in batch:
        event = env.event
        if isinstance(event, EvidenceClip):  # a file next to its event's still, not an event
            if env.evidence is None or not await _save_clip(evidence, event, env.evidence):
                lost += 1
            continue
        if env.evidence is not None and isinstance(event, RuleEvent):
            path = await _save_evidence(evidence, event, env.evidence)
            if path is None:
                lost += 1
            else:
                event = dataclasses.replace(event, evidence_path=str(path))
        events.append(event)
    return events, lost


async def _save_evidence(evidence: EvidenceSink | None, event: RuleEvent, jpeg: bytes) -> Path | None:
    if evidence is None:
        return None
    try:
        return await evidence.save(event, jpeg)
    except OSError as exc:
        log.error("evidence of %s not stored: %s", event.event_id, exc)
        return None


async def _save_clip(evidence: EvidenceSink | None, clip: EvidenceClip, data: bytes) -> bool:
    if evidence is None:
        return False
    try:
        await evidence.save_clip(clip, data)
    except OSError as exc:
        log.error("evidence clip of %s not stored: %s", clip.of_event_id, exc)
        return False
    return True


def camera_nodes(resources: Mapping[str, float]) -> list[str]:
    """Ids of the alive Ray nodes that offer every resource in `resources` (all nodes if none)."""
    import ray

    return sorted(
        str(n["NodeID"])
        for n in ray.nodes()
        if n.get("Alive") and all(n.get("Resources", {}).get(k, 0) >= v for k, v in resources.items())
    )


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
        evidence: EvidenceSink | None = None,
        call_timeout_s: float = 10.0,
        privacy: PrivacyConfig | None = None,
        outbox_dsn: str | None = None,
        adopt: bool = False,
    ) -> None:
        # adopt (several servers): actors are detached, so that they outlive the leader that
        # started them, and a new leader takes over the running ones instead of restarting them
        self._adopt = adopt
        self._desired = desired
        self._privacy = privacy or PrivacyConfig()
        self._outbox_dsn = outbox_dsn
        self._sink = sink
        self._cfg = actors
        self._ray_cfg = ray_cfg
        self._spool_dir = spool_dir.resolve()
        self._evidence = evidence
        self._timeout = call_timeout_s
        self._analysis = analysis
        self._realtime = realtime
        self._groups: dict[str, _GroupState] = {}
        self._remote = camera_group_class()
        self._inference_remote = inference_class() if analysis and analysis.enabled else None
        self._inference: dict[str, Any] = {}
        self._inference_nodes: dict[str, str] = {}  # inference actor name -> node id (per-node placement)
        self._input_size: tuple[int, int] | None = None  # the detector's input (H, W), as an actor said
        self.inference_restarts = 0
        self.restarts = 0
        self.evidence_lost = 0
        self._wake = asyncio.Event()
        # Ray starts worker processes a few at a time per node: starting every group of a large
        # city at once would time each start out while it waits its turn
        self._start_slots = asyncio.Semaphore(START_CONCURRENCY)
        self._stopping = False

    # ---- public -----------------------------------------------------------------------
    def status(self) -> dict[str, GroupStatus]:
        return {
            name: GroupStatus(
                alive=st.alive,
                cameras=tuple(c.id for c in st.spec.cameras),
                starts=st.starts,
                cursor=st.cursor,
                pulled=st.pulled,
                last_error=st.last_error,
                node_id=st.info.node_id if st.info is not None else "",
            )
            for name, st in self._groups.items()
        }

    def runtime(self) -> tuple[CameraRuntime, ...]:
        """The camera group actors as the video-control interface reports them."""
        return tuple(
            CameraRuntime(
                group=name,
                alive=st.alive,
                restarts=max(0, st.starts - 1),
                cameras=tuple(c.id for c in st.spec.cameras),
                node=st.info.node_id if st.info is not None else "",
            )
            for name, st in sorted(self._groups.items())
        )

    def inference_status(self) -> tuple[InferenceRuntime, ...]:
        a = self._analysis
        if a is None or not a.enabled:
            return ()
        if self._cfg.inference_per_node:
            return tuple(InferenceRuntime(name=n, alive=True) for n in sorted(self._inference))
        names = [f"{INFERENCE_PREFIX}{i}" for i in range(a.inference_actors)]
        return tuple(InferenceRuntime(name=n, alive=n in self._inference) for n in names)

    def inference_handle(self, index: int = 0) -> Any:
        return self._inference.get(f"{INFERENCE_PREFIX}{index}")

    def handle(self, group: str) -> Any:
        st = self._groups.get(group)
        return st.handle if st else None

    def camera_handle(self, camera_id: str) -> Any:
        """The actor that runs a camera now (as last applied to it), or None."""
        for st in self._groups.values():
            if st.handle is not None and any(c.id == camera_id for c in st.spec.cameras):
                return st.handle
        return None

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
        # groups in parallel: one unreachable actor (a dead node) must not delay the others
        results = await asyncio.gather(
            *(self._reconcile_group(name, spec) for name, spec in desired.items()), return_exceptions=True
        )
        for name, result in zip(desired, results, strict=True):
            if isinstance(result, Exception):
                log.error("reconciling camera group %s failed: %s: %s", name, type(result).__name__, result)
            elif isinstance(result, BaseException):
                raise result

    async def _reconcile_group(self, name: str, spec: GroupSpec) -> None:
        st = self._groups.get(name)
        if st is None:
            st = self._groups[name] = _GroupState(spec)
            if not (self._adopt and await self._adopt_group(st)):
                async with self._start_slots:
                    await self._start(st)
            st.bridge = asyncio.get_running_loop().create_task(self._bridge(st), name=f"bridge:{name}")
            return
        if st.handle is None and time.monotonic() < st.next_attempt:
            return
        if not await self._alive(st):
            log.warning("camera group %s actor is dead (%s); restarting", name, st.last_error)
            self.restarts += 1
            async with self._start_slots:
                await self._start(st)
        if st.alive and spec != st.spec:
            await self._apply(st, spec)

    async def _adopt_group(self, st: _GroupState) -> bool:
        """Take over the group's actor left running by a previous leader: its outbox is served
        from the start (cursor 0), its cameras and rules are set to what the database says."""
        handle = await asyncio.to_thread(self._named, self._actor_name(st.spec.name))
        if handle is None:
            return False
        st.handle = handle
        if not await self._alive(st):
            st.handle = None
            return False
        st.starts, st.last_start = 1, time.monotonic()
        log.info("camera group %s: adopted the running actor", st.spec.name)
        spec, st.spec = st.spec, GroupSpec(st.spec.name, (), ("(adopted: unknown)",))
        await self._apply(st, spec)  # unchanged cameras keep their streams
        return True

    @staticmethod
    def _named(name: str) -> Any:
        import ray

        try:
            return ray.get_actor(name)
        except ValueError:
            return None

    async def _apply(self, st: _GroupState, spec: GroupSpec) -> None:
        """Hand a running actor its new cameras and rules: its other streams keep running."""
        if spec.cameras != st.spec.cameras:
            await self._actor_call(st, "update_cameras", spec.cameras)
        if spec.rules != st.spec.rules:
            await self._push_rules(st, spec)
        st.spec = spec

    async def _push_rules(self, st: _GroupState, spec: GroupSpec) -> None:
        result: RulesApplied = await self._actor_call(st, "update_rules", spec.rule_dicts())
        for line in result.rejected:
            log.error("group %s rejected rule %s", spec.name, line)

    async def _reconcile_inference(self) -> None:
        a = self._analysis
        if a is None or not a.enabled or self._inference_remote is None:
            return
        wanted = await self._wanted_inference(a)
        for name in [n for n in self._inference if n not in wanted]:  # their node is gone
            self._kill_named(name)
            self._inference.pop(name, None)
            self._inference_nodes.pop(name, None)
        for name, node_id in wanted.items():
            handle = self._inference.get(name)
            if handle is None and self._adopt:  # left running by a previous leader
                handle = await asyncio.to_thread(self._named, name)
            if handle is not None:
                try:
                    await wait_for(handle.info.remote(), self._timeout)
                    self._inference[name] = handle
                    if node_id is not None:
                        self._inference_nodes[name] = node_id
                    continue
                except Exception as exc:
                    log.warning("inference actor %s is dead (%s); restarting", name, exc)
                    self.inference_restarts += 1
            await self._start_inference(a, name, node_id)

    async def _wanted_inference(self, a: AnalysisConfig) -> dict[str, str | None]:
        """Inference actor names -> the node each must run on (None: wherever Ray places it)."""
        if not self._cfg.inference_per_node:
            return {f"{INFERENCE_PREFIX}{i}": None for i in range(a.inference_actors)}
        nodes = await asyncio.to_thread(camera_nodes, self._cfg.group_resources)
        return {f"{INFERENCE_PREFIX}{node[:12]}:{i}": node for node in nodes for i in range(a.inference_actors)}

    async def _start_inference(self, a: AnalysisConfig, name: str, node_id: str | None) -> None:
        assert self._inference_remote is not None  # analysis enabled
        self._kill_named(name)
        config = {
            "max_batch": a.max_batch,
            "max_wait_ms": a.max_wait_ms,
            "num_cpus": a.inference_cpus,
            "num_gpus": a.inference_gpus,
            "detector": a.detector,
            "models": a.models,
        }
        options: dict[str, Any] = {
            "name": name, "num_cpus": a.inference_cpus, "num_gpus": a.inference_gpus, **ACTOR_TASK_EVENTS,
        }  # fmt: skip
        if self._adopt:
            options["lifetime"] = "detached"
        if node_id is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=False)
        handle = self._inference_remote.options(**options, max_concurrency=1000).remote(config)
        try:
            info = await wait_for(handle.info.remote(), 120)
            size = info.get("input_size")
            if size is not None and len(size) == 2:
                self._input_size = (int(size[0]), int(size[1]))
            self._inference[name] = handle
            if node_id is not None:
                self._inference_nodes[name] = node_id
        except Exception as exc:
            self._inference.pop(name, None)
            log.error("inference actor %s failed to start: %s", name, exc)

    @staticmethod
    def _kill_named(name: str) -> None:
        import ray

        try:
            ray.kill(ray.get_actor(name), no_restart=True)
        except ValueError:
            pass

    async def detach(self) -> None:
        """Stop pulling and managing, and leave every actor running (a deposed leader: the new
        one adopts them); the reconciler starts nothing afterwards."""
        self._stopping = True
        for name in list(self._groups):
            st = self._groups.pop(name)
            await cancel_and_wait(st.bridge)
        self._inference.clear()
        self._inference_nodes.clear()

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
        options = self._group_options(st.spec.name)
        try:
            old = ray.get_actor(name)
            ray.kill(old, no_restart=True)
        except ValueError:
            pass
        st.handle = self._remote.options(
            name=name,
            num_cpus=self._ray_cfg.actor_cpus,
            resources=dict(self._cfg.group_resources),
            scheduling_strategy=await self._placement(st),
            max_concurrency=64,
            **({"lifetime": "detached"} if self._adopt else {}),
            **ACTOR_TASK_EVENTS,
        ).remote(st.spec.name, st.spec.cameras, options)
        st.starts += 1
        st.last_start = time.monotonic()
        limit = self._cfg.start_timeout_s
        try:
            if st.spec.rules:
                await wait_for(st.handle.update_rules.remote(st.spec.rule_dicts()), limit)
            st.info = await wait_for(st.handle.start.remote(), limit)
            st.alive = True
            st.last_error = ""
        except Exception as exc:
            st.alive = False
            if isinstance(exc, TimeoutError):
                st.last_error = f"start timed out after {limit:g}s: not enough Ray resources (CPU) for the actor?"
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

    async def _placement(self, st: _GroupState) -> Any:
        """Where a group starts: spread over the nodes that offer its resources; a group whose
        actor died starts on the least loaded other node, since Ray may still count a node that
        was just lost as alive (for `health_check_period_ms` x `failure_threshold`)."""
        lost = st.info.node_id if st.info is not None else ""
        if not lost:
            return "SPREAD"
        nodes = [n for n in await asyncio.to_thread(camera_nodes, self._cfg.group_resources) if n != lost]
        if not nodes:
            return "SPREAD"
        load = dict.fromkeys(nodes, 0)
        for other in self._groups.values():
            if other is not st and other.alive and other.info is not None and other.info.node_id in load:
                load[other.info.node_id] += 1
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # soft: if that node cannot take it (resources, gone meanwhile), Ray places it elsewhere
        return NodeAffinitySchedulingStrategy(min(nodes, key=lambda n: (load[n], n)), soft=True)

    def _group_options(self, group: str) -> GroupOptions:
        options = GroupOptions(
            spool_path=str(self._spool_dir / f"{group}.sqlite"),
            health_interval_s=self._cfg.health_interval_s,
            spool_max_events=self._cfg.spool_max_events,
            realtime=self._realtime,
            privacy=self._privacy,
            outbox_dsn=self._outbox_dsn,
        )
        a = self._analysis
        if a is None or not a.enabled:
            return options
        return dataclasses.replace(
            options,
            inference_actors=self._inference_names(a),
            inference_by_node=self._inference_by_node(),
            model_roles=tuple(sorted({str(m["role"]) for m in a.model_list()} - {"detect"})),
            max_inflight=a.max_inflight,
            analysis_size=self._input_size if a.decode_resize else None,
            # validated here, on the server: a bad setting fails the start, not the actor
            motion=MotionConfig.model_validate(a.motion),
            tracker=TrackerConfig.model_validate(a.tracker),
            summary_interval_s=a.summary_interval_s,
            counts_flush_s=a.counts_flush_s,
            record_dir=str(a.record_detections_dir.resolve()) if a.record_detections_dir else None,
        )

    def _inference_names(self, a: AnalysisConfig) -> tuple[str, ...]:
        if self._cfg.inference_per_node:
            return tuple(sorted(self._inference))
        return tuple(f"{INFERENCE_PREFIX}{i}" for i in range(a.inference_actors))

    def _inference_by_node(self) -> dict[str, tuple[str, ...]]:
        by_node: dict[str, list[str]] = {}
        for name, node in sorted(self._inference_nodes.items()):
            by_node.setdefault(node, []).append(name)
        return {node: tuple(names) for node, names in by_node.items()}

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
            await cancel_and_wait(st.bridge)
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
        batch: list[EventEnvelope] = await self._actor_call(st, "events", st.cursor, self._cfg.pull_batch)
        if not batch:
            return 0
        # snapshots first: an event is stored pointing at a file that is already complete
        events, lost = await unpack_envelopes(batch, self._evidence)
        self.evidence_lost += lost
        await self._sink.deliver(events)
        last = batch[-1].seq
        await self._actor_call(st, "ack", last)
        st.cursor = last
        st.pulled += len(events)
        return len(batch)

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
