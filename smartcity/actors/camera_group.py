"""CameraGroupActor: owns a group of cameras on a Ray worker and publishes their events.

The actor decodes its cameras (one source thread each), and periodically records each
camera's health. Every event it produces goes first into its durable spool; the server
pulls them with a cursor (`events(after=...)`) and acknowledges them once committed
(`ack(upto=...)`). The class is plain Python (tested without Ray); `CameraGroupActor`
is its Ray remote form.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from smartcity.actors.motion import MotionConfig
from smartcity.actors.pg_outbox import OutboxFenced, OutboxUnavailable
from smartcity.actors.spool import EventSpool, SpoolFull
from smartcity.core import memtrace
from smartcity.core.aio import cancel_and_wait
from smartcity.core.events import CameraHealth, CameraState, Event, EventEnvelope
from smartcity.core.privacy_config import PrivacyConfig, ViewMode
from smartcity.core.video import LiveFrame, SignalPush
from smartcity.core.vision import Detection, Track, scale_box
from smartcity.privacy import CameraPrivacy, PrivacyZones, PrivateView, render_evidence
from smartcity.sources.detlog import DetectionLogWriter
from smartcity.tracking.config import TrackerConfig

if TYPE_CHECKING:
    from smartcity.actors.pipeline import CameraPipeline, PipelineStats

log = logging.getLogger(__name__)

# Seconds between two trims of the actor's heap (memtrace.trim_heap): the freed frame buffers that
# glibc would otherwise keep, fragmented, go back to the system.
HEAP_TRIM_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """What the server wants one camera to be (sent to the actor as is: Ray pickles it)."""

    id: str
    url: str = field(repr=False)  # may hold a password: never in a log line or an error
    analysis_fps: float = 5.0
    enabled: bool = True
    name: str = ""
    site: str = ""
    privacy_zones: tuple[tuple[tuple[float, float], ...], ...] = ()  # polygons, normalised coordinates
    view_mode: ViewMode | None = None  # None: the configured default

    def same_stream(self, other: CameraSpec) -> bool:
        """Whether `other` differs from this camera only in privacy settings (applied live)."""
        return dataclasses.replace(other, privacy_zones=self.privacy_zones, view_mode=self.view_mode) == self


@dataclass(frozen=True, slots=True)
class GroupOptions:
    spool_path: str
    health_interval_s: float = 5.0
    spool_max_events: int = 1_000_000
    inference_actors: tuple[str, ...] = ()  # Ray actor names; none = health only (no analysis)
    # Ray node id -> the inference actors on that node: a group uses its own node's (locality)
    inference_by_node: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    model_roles: tuple[str, ...] = ()  # second-stage models (pose, classify) the inference actors host
    max_inflight: int = 3  # frames per camera awaiting inference (pipelining)
    # the detector's input (height, width): sources decode analysis frames straight to the size
    # they take in it; None: analysis gets full frames (`analysis.decode_resize` off)
    analysis_size: tuple[int, int] | None = None
    motion: MotionConfig = field(default_factory=MotionConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    summary_interval_s: float = 10.0
    counts_flush_s: float = 10.0
    record_dir: str | None = None  # opt-in detections log (anonymous boxes only)
    realtime: bool = True  # False: files decode as fast as possible (benchmarks)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    # libpq DSN of the PostgreSQL that keeps the outbox off the node (`actors.pg_outbox`);
    # None: a SQLite file at `spool_path` on the actor's node
    outbox_dsn: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """The actor's answer to `start` and `ping`: who it is and how far its cameras got."""

    group: str
    pid: int
    cameras: tuple[str, ...]
    spool_pending: int
    last_seq: int
    health_dropped: int
    started_at: float
    pipelines: Mapping[str, PipelineStats]  # camera id -> a copy of its pipeline's counters
    rules: Mapping[str, tuple[str, ...]]  # camera id -> ids of the rules it runs
    node_id: str = ""  # the Ray node it runs on ("" outside Ray)
    fenced: bool = False  # a newer actor took its outbox over: it records nothing more


@dataclass(frozen=True, slots=True)
class RulesApplied:
    """The answer to `update_rules`: rule ids now running, and `id: reason` of those refused."""

    applied: tuple[str, ...]
    rejected: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CamerasChanged:
    """The answer to `update_cameras`: camera ids opened, closed and reopened."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()


class Source(Protocol):
    def start(self) -> None: ...
    def stop(self, timeout: float | None = ...) -> object: ...
    def health(self) -> Any: ...


class Outbox(Protocol):
    """The actor's outbox: `actors.spool.EventSpool` (node) or `actors.pg_outbox.PostgresOutbox`."""

    @property
    def last_seq(self) -> int: ...
    @property
    def pending(self) -> int: ...
    def append(
        self, events: Sequence[Event], *, evidence: Mapping[str, bytes] | None = None, force: bool = False
    ) -> list[int]: ...
    def read(self, after: int, limit: int) -> list[EventEnvelope]: ...
    def ack(self, upto: int) -> int: ...
    def close(self) -> None: ...


def _open_outbox(group: str, options: GroupOptions) -> Outbox:
    if options.outbox_dsn:
        from smartcity.actors.pg_outbox import PostgresOutbox

        return PostgresOutbox(options.outbox_dsn, group, max_events=options.spool_max_events)
    return EventSpool(Path(options.spool_path), max_events=options.spool_max_events)


def _ray_node_id() -> str:
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id()) if ray.is_initialized() else ""
    except Exception:  # outside a Ray worker
        return ""


def open_source(spec: CameraSpec, *, realtime: bool = True, analysis_size: tuple[int, int] | None = None) -> Source:
    from smartcity.sources import CameraSource, SourceOptions

    # not realtime = a recording analysed as fast as possible: every due frame, none dropped
    options = SourceOptions(realtime=realtime, lossless=not realtime)
    return CameraSource(
        spec.id, spec.url, analysis_fps=spec.analysis_fps, options=options, analysis_size=analysis_size
    )


class CameraGroup:
    """The actor's logic; every public method is async and called through Ray."""

    def __init__(self, group: str, cameras: Sequence[CameraSpec], options: GroupOptions) -> None:
        memtrace.start_from_env("camera_group")  # diagnostic, off unless SMARTCITY_MEMTRACE_DIR is set
        self.group = group
        self.options = options
        self.specs = {c.id: c for c in cameras}
        self.spool = _open_outbox(group, options)
        self.fenced = False
        self._unrecorded: list[tuple[list[Event], dict[str, bytes] | None]] = []
        self._outbox_failing = False
        self.sources: dict[str, Source] = {}
        self.pipelines: dict[str, CameraPipeline] = {}
        self.privacy: dict[str, CameraPrivacy] = {}
        self._pipeline_tasks: dict[str, asyncio.Task[None]] = {}
        self.rules: dict[str, list[Any]] = {}
        self._inference: dict[str, Any] = {}
        self._dealt = 0
        self._recorder: Any = None
        self.health_dropped = 0
        self._last_state: dict[str, CameraState] = {}
        self._last_emit: dict[str, float] = {}
        self._seen_infer_errors: dict[str, int] = {}
        self._analysis_errors: dict[str, str] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._started_at = time.time()

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> GroupInfo:
        """Open the cameras and start the health loop (idempotent)."""
        if self._loop_task is None:
            for spec in self.specs.values():
                self._open(spec)
            self._loop_task = asyncio.get_running_loop().create_task(self._health_loop())
        return await self.ping()

    async def stop(self) -> None:
        if self._loop_task is not None:
            await cancel_and_wait(self._loop_task)
            self._loop_task = None
        for cam_id in list(self.sources):
            await self._close(cam_id)
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None
        # last word: every camera of a stopped group is offline. The spool stays open so
        # that the server can drain it; the process ends with the actor.
        self._record([self._health_event(cid, None, message="camera group stopped") for cid in self.specs])

    async def ping(self) -> GroupInfo:
        return GroupInfo(
            group=self.group,
            pid=os.getpid(),
            cameras=tuple(sorted(self.specs)),
            spool_pending=self.spool.pending,
            last_seq=self.spool.last_seq,
            health_dropped=self.health_dropped,
            started_at=self._started_at,
            pipelines={cid: dataclasses.replace(p.stats) for cid, p in self.pipelines.items()},
            rules={cid: tuple(r.id for r in rules) for cid, rules in self.rules.items()},
            node_id=_ray_node_id(),
            fenced=self.fenced,
        )

    # ---- rules ------------------------------------------------------------------------------
    async def update_rules(self, rules: Sequence[Mapping[str, Any]]) -> RulesApplied:
        """Replace the group's rules (all cameras) live: streams are never restarted.

        Rules that fail validation are reported back by id and not applied.
        """
        from smartcity.analytics import validate_rule
        from smartcity.core.errors import ValidationFailed

        by_camera: dict[str, list[Any]] = {cid: [] for cid in self.specs}
        rejected: list[str] = []
        for data in rules:
            try:
                spec = validate_rule(data)
            except ValidationFailed as exc:
                rejected.append(f"{data.get('id')}: {exc}")
                continue
            if spec.camera_id in by_camera:
                by_camera[spec.camera_id].append(spec)
        self.rules = by_camera
        for cid, pipe in self.pipelines.items():
            pipe.set_rules(by_camera.get(cid, []))
        return RulesApplied(tuple(sorted(r.id for rs in by_camera.values() for r in rs)), tuple(rejected))

    async def set_signal_state(self, push: SignalPush) -> bool:
        pipe = self.pipelines.get(push.camera_id)
        if pipe is None:
            return False
        pipe.set_signal_state(push.rule_id, push.state.value, push.t)
        return True

    async def tracks(self, camera_id: str) -> tuple[Track, ...]:
        """Current tracks of a camera (anonymous boxes; ids local to this camera)."""
        pipe = self.pipelines.get(camera_id)
        if pipe is None:
            return ()
        return tuple(pipe.latest_tracks)

    def _private_view(self, camera_id: str) -> PrivateView | None:
        """The picture operators may see: the last analysed frame with its private mask, or, for a
        camera without analysis, the latest decoded frame and no mask (hidden whole). Privacy
        zones are filled in it here, before it leaves the actor."""
        privacy = self.privacy.get(camera_id)
        if privacy is None:
            return None
        pipe = self.pipelines.get(camera_id)
        if pipe is not None and pipe.latest_view is not None:
            # the analysed frame at full size (converted now if analysis had it scaled); its
            # mask, made on the analysis image, scales itself onto it
            return privacy.view_of(pipe.latest_view[0].full_image(), pipe.latest_mask)
        src = self.sources.get(camera_id)
        latest = src.latest() if src is not None and hasattr(src, "latest") else None
        return None if latest is None else privacy.view_of(latest.image, None)

    def _latest_frame(self, camera_id: str) -> Any:
        pipe = self.pipelines.get(camera_id)
        if pipe is not None and pipe.latest_view is not None:
            return pipe.latest_view[0]
        src = self.sources.get(camera_id)
        return src.latest() if src is not None and hasattr(src, "latest") else None

    async def snapshot(self, camera_id: str, *, pixelate: bool = True, with_rules: bool = True) -> bytes | None:
        """JPEG of the latest picture: rule geometry drawn, privacy zones filled, the private mask
        pixelated (or the background view, by the camera's setting) unless `pixelate` is False."""
        from smartcity.actors.evidence import rule_shapes

        view = self._private_view(camera_id)
        if view is None:
            return None
        shapes = [s for r in self.rules.get(camera_id, []) for s in rule_shapes(r.params)] if with_rules else []
        return await asyncio.to_thread(
            render_evidence, view.image, shapes, view.mask, pixelate=pixelate, background=view.background
        )

    async def live_frame(self, camera_id: str) -> LiveFrame | None:
        """The picture for live views (see `_private_view`); `mask` None hides it all."""
        view = self._private_view(camera_id)
        frame = self._latest_frame(camera_id)
        if view is None or frame is None:
            return None
        mask = view.mask
        h, w = view.image.shape[:2]
        return LiveFrame(
            image=view.image,
            t=float(frame.t),
            index=int(frame.index),
            # the mask's boxes are in the pixels of the picture it was made on (the analysis image)
            person_boxes=None
            if mask is None
            else tuple(scale_box(b, w / mask.width, h / mask.height) for b in mask.boxes),
            mask=view.mask,
            background=view.background,
        )

    async def update_cameras(self, cameras: Sequence[CameraSpec]) -> CamerasChanged:
        """Apply a new camera list: open new ones, close removed ones, reopen changed ones.

        Unchanged cameras keep their streams.
        """
        wanted = {c.id: c for c in cameras}
        added: list[str] = []
        removed: list[str] = []
        changed: list[str] = []
        for cam_id in list(self.specs):
            if cam_id not in wanted:
                await self._close(cam_id)
                del self.specs[cam_id]
                removed.append(cam_id)
        for cam_id, spec in wanted.items():
            old = self.specs.get(cam_id)
            if old == spec:
                continue
            if old is not None and old.same_stream(spec):
                # privacy zones or view mode: applied live, the stream and the analysis keep running
                self.specs[cam_id] = spec
                if cam_id in self.privacy:
                    self.privacy[cam_id].set_zones(PrivacyZones.of(spec.privacy_zones), spec.view_mode)
                changed.append(cam_id)
                continue
            if old is not None:
                await self._close(cam_id)
                changed.append(cam_id)
            else:
                added.append(cam_id)
            self.specs[cam_id] = spec
            if self._loop_task is not None:
                self._open(spec)
        return CamerasChanged(tuple(added), tuple(removed), tuple(changed))

    # ---- event pull --------------------------------------------------------------------
    async def events(self, after: int, limit: int = 1000) -> list[EventEnvelope]:
        """Unacknowledged events with seq > after, in order, each with its evidence snapshot."""
        return self.spool.read(after, limit)

    async def ack(self, upto: int) -> int:
        return self.spool.ack(upto)

    # ---- internals -----------------------------------------------------------------------
    def _open(self, spec: CameraSpec) -> None:
        if not spec.enabled:
            return
        try:
            analysis_size = self.options.analysis_size if self.options.inference_actors else None
            src = open_source(spec, realtime=self.options.realtime, analysis_size=analysis_size)
            src.start()
        except Exception as exc:  # a bad camera never takes the group down
            log.exception("camera %s failed to open", spec.id)
            self._record([self._health_event(spec.id, None, message=f"cannot open source: {exc}")])
            return
        self.sources[spec.id] = src
        self.privacy[spec.id] = CameraPrivacy(self.options.privacy, PrivacyZones.of(spec.privacy_zones), spec.view_mode)
        if self.options.inference_actors:
            try:
                self._start_pipeline(spec, src)
            except Exception as exc:  # analysis broken: keep the stream and report why
                log.exception("camera %s: analysis pipeline failed to start", spec.id)
                self._analysis_errors[spec.id] = f"analysis unavailable: {type(exc).__name__}: {exc}"[:300]

    def _start_pipeline(self, spec: CameraSpec, src: Source) -> None:
        # imported with the first analysed camera: a health-only group (and every group at its
        # start) spares the import of the tracker, the rules and the privacy masker
        from smartcity.actors.pipeline import CameraPipeline, SecondStage

        # cameras are dealt round-robin to the inference actors (one per GPU or CPU slot)
        pool = self.options.inference_by_node.get(_ray_node_id()) or self.options.inference_actors
        actor = pool[self._dealt % len(pool)]
        self._dealt += 1
        roles = frozenset(self.options.model_roles)
        pipe = CameraPipeline(
            spec.id,
            src,  # type: ignore[arg-type]
            functools.partial(self._infer, actor),
            self._record_forced,
            rules=self.rules.get(spec.id, []),
            motion=self.options.motion,
            tracker=self.options.tracker,
            max_inflight=self.options.max_inflight,
            summary_interval_s=self.options.summary_interval_s,
            counts_flush_s=self.options.counts_flush_s,
            recorder=self._detections_recorder(),
            second_stage=SecondStage(roles, functools.partial(self._refine, actor)) if roles else None,
            privacy=self.privacy[spec.id],
        )
        self.pipelines[spec.id] = pipe
        self._pipeline_tasks[spec.id] = asyncio.get_running_loop().create_task(pipe.run())

    def _detections_recorder(self) -> Any:
        if not self.options.record_dir:
            return None
        if self._recorder is None:

            path = Path(self.options.record_dir) / f"{self.group}-{int(time.time())}.jsonl"
            self._recorder = DetectionLogWriter(path)
        return self._recorder

    async def _infer(self, actor: str, image: Any) -> Any:
        import ray

        return await self._inference_call(actor, "detect", ray.put(image))

    async def _refine(self, actor: str, image: Any, detections: list[Detection], roles: frozenset[str]) -> Any:
        import ray

        return await self._inference_call(actor, "refine", ray.put(image), detections, sorted(roles))

    async def _inference_call(self, actor: str, method: str, *args: Any) -> Any:
        import ray

        handle = self._inference.get(actor)
        if handle is None:
            handle = self._inference[actor] = ray.get_actor(actor)
        try:
            return await getattr(handle, method).remote(*args)
        except Exception:
            self._inference.pop(actor, None)  # re-resolve: the inference actor may have been restarted
            raise

    async def _close(self, cam_id: str) -> None:
        self._analysis_errors.pop(cam_id, None)
        task = self._pipeline_tasks.pop(cam_id, None)
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("pipeline of camera %s failed", cam_id)
        pipe = self.pipelines.pop(cam_id, None)
        if pipe is not None:
            pipe.flush_counts()
        self.privacy.pop(cam_id, None)
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
        state = CameraState(h.state)
        msg = str(h.message)
        if cam_id in self._analysis_errors:
            state = CameraState.DEGRADED if state is CameraState.ONLINE else state
            msg = (msg + "; " if msg else "") + self._analysis_errors[cam_id]
        pipe = self.pipelines.get(cam_id)
        if pipe is not None and pipe.stats.infer_errors > self._seen_infer_errors.get(cam_id, 0):
            self._seen_infer_errors[cam_id] = pipe.stats.infer_errors
            if state is CameraState.ONLINE:
                state = CameraState.DEGRADED
            msg = (msg + "; " if msg else "") + pipe.stats.last_error
        return CameraHealth(
            camera_id=cam_id,
            t=now,
            group=self.group,
            state=state,
            input_fps=round(float(h.input_fps), 3),
            analysed_fps=round(float(h.analysed_fps), 3),
            last_frame_t=h.last_frame_t,
            decode_errors=int(h.decode_errors),
            reconnects=int(h.reconnects),
            frames_dropped=int(h.frames_dropped),
            width=h.width,
            height=h.height,
            message=msg,
        )

    def _record_forced(self, events: list[Event], evidence: dict[str, bytes] | None = None) -> None:
        """Rule events and counts are never dropped: the spool may exceed its bound for them.

        An evidence JPEG (by event id) is spooled with its event and pulled with it by the server,
        which stores it. While an outbox in PostgreSQL is unreachable they wait here, in order,
        and go first at the next append (`_unrecorded`).
        """
        if self.fenced:
            return
        self._unrecorded.append((events, evidence))
        self._flush_unrecorded()

    def _flush_unrecorded(self) -> None:
        while self._unrecorded:
            events, evidence = self._unrecorded[0]
            try:
                self.spool.append(events, evidence=evidence, force=True)
            except OutboxFenced as exc:
                self._fence(exc)
                return
            except OutboxUnavailable as exc:
                if not self._outbox_failing:
                    log.error("camera group %s: events wait in memory: %s", self.group, exc)
                    self._outbox_failing = True
                return
            self._unrecorded.pop(0)
        if self._outbox_failing:
            log.info("camera group %s: outbox reachable again", self.group)
            self._outbox_failing = False

    def _fence(self, exc: OutboxFenced) -> None:
        # a newer actor runs these cameras and numbers their events: this one's are not recorded
        log.error("camera group %s stops recording: %s", self.group, exc)
        self.fenced = True

    def _record(self, events: list[Event]) -> None:
        if not events or self.fenced:
            return
        try:
            self.spool.append(events)
        except OutboxFenced as exc:
            self._fence(exc)
        except (SpoolFull, OutboxUnavailable):
            # Health is periodic status: when the server has not taken events for a long
            # time (or the outbox's database is away), the newest health reports are dropped
            # (counted), never rule events.
            self.health_dropped += len(events)

    async def _health_loop(self) -> None:
        interval = self.options.health_interval_s
        tick = min(interval, 0.5)
        trimmed = time.monotonic()
        while True:
            now = time.monotonic()
            if now - trimmed >= HEAP_TRIM_EVERY_S:  # free heap pages back to the system (memtrace.trim_heap)
                trimmed = now
                await asyncio.to_thread(memtrace.trim_heap)
            due: list[Event] = []
            for cam_id in sorted(self.specs):
                src = self.sources.get(cam_id)
                ev = self._health_event(cam_id, src)
                changed = self._last_state.get(cam_id) != ev.state
                if changed or now - self._last_emit.get(cam_id, -1e9) >= interval:
                    due.append(ev)
                    self._last_state[cam_id] = ev.state
                    self._last_emit[cam_id] = now
            self._flush_unrecorded()  # rule events that waited for the outbox go first
            self._record(due)
            await asyncio.sleep(tick)


def remote_class() -> Any:
    """The Ray actor class (built lazily so that importing this module never needs Ray)."""
    import ray

    return ray.remote(CameraGroup)
