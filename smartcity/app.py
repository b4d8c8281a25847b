"""Composition root: the only module that wires config, storage, bus, Ray and the API.

`create_app(settings)` returns a Starlette ASGI app whose lifespan starts, in order:
database (migrations), bus + writer, status board, Ray, then the leader's duties (fusion and
alert dispatch, retention, the reconciler of the camera actors); and stops them in reverse
order, draining actor outboxes into the database before Ray goes away.

With `cluster.enabled` (several servers, `smartcity.cluster`), every server also runs the event
feed to and from the others and the leader election, and starts the leader's duties only while
it is elected; a follower finds the actors by name (`actors.directory`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from smartcity.actors.camera_group import CameraSpec
from smartcity.actors.directory import NamedGroups
from smartcity.actors.facade import RayHealth, RayVideo
from smartcity.actors.ray_node import (
    MALLOC_ARENA_ENV,
    MALLOC_ARENAS,
    MALLOC_MMAP_ENV,
    MMAP_THRESHOLD,
    start_ray,
    stop_ray,
)
from smartcity.actors.runtime import GroupSpec, Reconciler, rule_json
from smartcity.cluster import ClusterFeed, LeaderElection, Term
from smartcity.cluster.connect import connector, default_server_id
from smartcity.core import memtrace, netpolicy
from smartcity.core.accesslog import redact_access_log
from smartcity.core.aio import cancel_and_wait, wait_for
from smartcity.core.bus import EventBus, Overflow, Subscription
from smartcity.core.clock import SystemClock
from smartcity.core.config import Settings
from smartcity.core.events import (
    CameraHealth,
    CountBucket,
    DetectionSummary,
    Event,
    Incident,
    IncidentState,
    RuleEvent,
)
from smartcity.core.files import private_dir
from smartcity.core.jsonvalue import JsonValue
from smartcity.core.status import StatusBoard
from smartcity.core.supervisor import TaskSupervisor
from smartcity.core.video import NoVideo, VideoControl
from smartcity.demo import bootstrap_demo_rules
from smartcity.extension_wiring import extension_branches, extension_host, extension_schema
from smartcity.extensions import ExtensionPlan, ExtensionServices
from smartcity.extensions.host import ExtensionHost
from smartcity.fusion.engine import FusionEngine
from smartcity.fusion.service import IncidentActions
from smartcity.graphql.app import GraphQLApp
from smartcity.graphql.auth import TokenSigner, load_secret
from smartcity.graphql.context import ApiServices
from smartcity.graphql.login_limits import LoginLimiter
from smartcity.http_headers import SecurityHeaders
from smartcity.http_limits import BodySizeLimit
from smartcity.http_routes import HttpRoutes
from smartcity.integrations.alerting import Alerting, AlertingContext, start_alerting
from smartcity.integrations.cap_feed import cap_routes
from smartcity.integrations.channels.cap import CapDispatch
from smartcity.integrations.channels.sms import twilio_status_route
from smartcity.integrations.config import AlertsConfig
from smartcity.metrics import ServerCollector, health_report
from smartcity.storage.audit_repo import AuditRepo
from smartcity.storage.cap_state import CapStateRepo
from smartcity.storage.db import Database, check_migrations, libpq_dsn, migrate
from smartcity.storage.durable_spool import DurableSpool, SpoolConfig
from smartcity.storage.evidence import EvidenceStore
from smartcity.storage.outbox import Outbox
from smartcity.storage.readonly import StoredReads
from smartcity.storage.repo import CameraRepo
from smartcity.storage.retention import run_retention
from smartcity.storage.rules_repo import RuleRepo
from smartcity.storage.users import create_user, list_users
from smartcity.storage.writer import EventWriter
from smartcity.webrtc import LiveViewConfig, LiveViewHub

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"
# measured with bench/subscriptions.py: p95 194 ms -> 6 ms at 1,000 subscribers (full
# collections of 0.6 s disappear); objects that live long are few, so collecting young ones
# less often is cheap in memory
GC_THRESHOLDS = (50_000, 20, 100)
# ...but at those thresholds, under a steady load (bench/soak.py: a few events a second, a live
# view), generation 0 was collected about once a minute, generation 1 every ~20 minutes and
# generation 2 after 100 of those (days): graphql-core's per-event executors that outlived one
# young collection (thousands of its CollectedFields, rising all along) waited there, and what
# reached the oldest generation stayed. So the server also collects generations 0-1 every
# minute and all of them every 10 minutes (the start-up objects are frozen: a full collection
# scans only what came later).
GC_YOUNG_EVERY_S = 60.0
GC_FULL_EVERY_S = 600.0
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters
M_ARENA_MAX = -8


def _mallopt(env: str, param: int, value: int) -> bool:
    """Set a glibc malloc parameter in this process, unless the environment variable that sets
    it at exec is given (it wins); False where not glibc."""
    if os.environ.get(env) or not sys.platform.startswith("linux"):
        return False
    fn = getattr(memtrace.libc(), "mallopt", None)  # musl and others: no mallopt
    return fn is not None and bool(fn(param, value))


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas in this process (what MALLOC_ARENA_MAX does at exec): threads
    created later share them. An explicit MALLOC_ARENA_MAX wins; False where not glibc."""
    return _mallopt(MALLOC_ARENA_ENV, M_ARENA_MAX, arenas)


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Serve blocks of `threshold` bytes and more with mappings of their own, given back at
    free(), and never raise the threshold (see `ray_node.MMAP_THRESHOLD`): the live views' frames
    do not fragment the heap. An explicit MALLOC_MMAP_THRESHOLD_ wins; False where not glibc."""
    return _mallopt(MALLOC_MMAP_ENV, M_MMAP_THRESHOLD, threshold)


async def collect_garbage(
    young_every_s: float = GC_YOUNG_EVERY_S,
    full_every_s: float = GC_FULL_EVERY_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Forever: collect generations 0-1 every `young_every_s`, and all three every `full_every_s`;
    then hand the heap's free pages back to the system (memtrace.trim_heap: a soak at 73b562a had the
    server's RSS creep 5.7 MiB/h while its heap in use stayed flat and the free space inside grew)."""
    per_full = max(1, round(full_every_s / young_every_s))
    k = 0
    while True:
        await sleep(young_every_s)
        k += 1
        gc.collect(2 if k % per_full == 0 else 1)
        await asyncio.to_thread(memtrace.trim_heap)


PERSISTED = (CameraHealth, DetectionSummary, RuleEvent, CountBucket, Incident)


class Durable(Protocol):
    def expect(self, event_ids: Iterable[str]) -> asyncio.Future[None]: ...


class WriterSink:
    """Publishes a batch on the bus and returns once it is durable: committed by the writer
    (or in its disk spool while the database is away) and, for rule events, turned into
    committed incidents by fusion. Only then is the batch acknowledged to its actor."""

    def __init__(
        self, bus: EventBus, writer: Durable, fusion: Durable | None = None, fanout: ClusterFeed | None = None
    ) -> None:
        self.bus = bus
        self.writer = writer
        self.fusion = fusion
        self.fanout = fanout  # several servers: the batch (and its incidents) reached the feed too

    async def deliver(self, events: Sequence[Event]) -> None:
        if not events:
            return
        waits = [self.writer.expect(e.event_id for e in events)]
        if self.fusion is not None:
            rule_ids = [e.event_id for e in events if isinstance(e, RuleEvent)]
            if rule_ids:
                waits.append(self.fusion.expect(rule_ids))
        await self.bus.publish_many(events)
        await asyncio.gather(*waits)
        if self.fanout is not None:  # fusion queued its incidents before its waiters resolved
            await self.fanout.flushed()


@dataclass
class Server:
    """Everything the running server owns; built by the lifespan, torn down in reverse."""

    settings: Settings
    start_ray: bool = True
    bus: EventBus = field(default_factory=EventBus)
    supervisor: TaskSupervisor = field(default_factory=TaskSupervisor)
    status: StatusBoard = field(default_factory=StatusBoard)
    db: Database | None = None
    evidence: EvidenceStore | None = None
    writer: EventWriter | None = None
    spool: DurableSpool | None = None
    alerting: Alerting | None = None
    reconciler: Reconciler | None = None
    # the video side as the API, the live views and extensions see it: the Ray facade once Ray runs
    video: VideoControl = field(default_factory=NoVideo)
    ray_video: RayVideo | None = None
    outbox: Outbox | None = None  # the alert outbox, when alerting runs
    live_views: LiveViewHub | None = None
    signer: TokenSigner | None = None
    login_limiter: LoginLimiter = field(default_factory=LoginLimiter)
    subscription_queue: int = 256
    bootstrap_admin: bool = False
    ray_address: str | None = None
    started_at: float = field(default_factory=time.time)
    _writer_sub: Subscription[Event] | None = None
    _ray_started: bool = False
    _gc_saved: tuple[int, ...] | None = None
    _refused_cameras: set[tuple[str, str]] = field(default_factory=set)
    # extensions: started last in start(), stopped first in stop()
    extensions: ExtensionHost | None = None
    # several servers (cluster.enabled): the feed, the election, the leader's own tasks
    cluster_feed: ClusterFeed | None = None
    election: LeaderElection | None = None
    term: Term | None = None  # this server's leadership (single server: always None, always leading)
    leading: bool = False
    directory: NamedGroups | None = None
    _election_task: asyncio.Task[None] | None = None
    _leader_tasks: TaskSupervisor | None = None
    _standby_actions: IncidentActions | None = None
    _sites: dict[str, str] = field(default_factory=dict)
    _stopping: bool = False

    async def start(self) -> None:
        s = self.settings
        private_dir(s.storage.data_dir, dedicated=True)  # database, evidence, spools: for the server's user only
        self.db = Database(s.database.url, echo=s.database.echo, pool_size=s.database.pool_size)
        plan = self.extensions.plan if self.extensions is not None else ExtensionPlan()
        branches, known = extension_branches(plan)
        if s.database.migrate_on_start:
            await migrate(s.database.url, branches, known=known)
        await check_migrations(self.db, branches)
        self.evidence = EvidenceStore(s.storage.data_dir / "evidence", self.db)
        cams = CameraRepo(self.db)
        await cams.sync_from_config(s.camera_groups, s.cameras)
        self.signer = TokenSigner(load_secret(s.storage.data_dir), image_ttl_s=s.server.image_token_ttl_s)
        if self.bootstrap_admin:  # the demo: an admin, and rules on the demo camera

            await self._bootstrap_admin()
            await bootstrap_demo_rules(self.db, [(c.id, c.url) for c in s.cameras])

        self.writer = EventWriter(self.db, batch_size=s.storage.writer_batch, max_wait_ms=s.storage.writer_max_wait_ms)
        # while the database is away, events go on into a bounded spool on local disk
        self.spool = DurableSpool(self.writer, SpoolConfig(directory=s.storage.data_dir / "db-spool"))
        # remote=False: the other servers' events are stored by the server that pulled them
        self._writer_sub = self.bus.subscribe("writer", PERSISTED, maxsize=50_000, overflow=Overflow.BLOCK, remote=False)
        spool, sub = self.spool, self._writer_sub
        self.supervisor.start("writer", lambda: spool.run(sub))

        alerts = AlertsConfig.model_validate(s.alerts)
        if alerts.enabled:
            self._sites = {c.id: c.site for c in await cams.list_cameras() if c.site}
            self.outbox = Outbox(self.db)

        async def on_status(h: CameraHealth) -> None:
            self.status.update(h)

        self.bus.listen(
            "status-board", [CameraHealth], on_status, start=self.supervisor.start, overflow=Overflow.DROP_OLDEST
        )

        if self.start_ray:
            if s.server.gc_tuning:  # before Ray's threads start: they share the arenas
                limit_malloc_arenas()
                fix_mmap_threshold()
            info = start_ray(s.ray)
            self.ray_address = info.address
            self._ray_started = info.started
        if s.cluster.enabled:
            await self._join_cluster(alerts)
        else:
            await self._lead(None)
        if s.server.gc_tuning:
            self._gc_saved = gc.get_threshold()
            gc.collect()
            gc.freeze()  # objects of the start-up are never scanned again
            gc.set_threshold(*GC_THRESHOLDS)
            self.supervisor.start("gc", collect_garbage)
        if self.extensions is not None:  # after storage, bus, alerting and the video side
            services = ExtensionServices(self.bus, SystemClock(), StoredReads(self.db), self.video, self.db.engine)
            await self.extensions.start(services)

    def _use_video(self, directory: Reconciler | NamedGroups) -> None:
        if self.ray_video is None:
            self.ray_video = RayVideo(directory, address=self.ray_address)
            self.video = self.ray_video
            self.live_views = LiveViewHub(self.video, LiveViewConfig.model_validate(self.settings.live_view))
        else:
            self.ray_video.use(directory)

    async def _join_cluster(self, alerts: AlertsConfig) -> None:
        """Several servers: the feed from and to the others, the actors found by name, operator
        actions on incidents, and the election that runs `_lead` on one server at a time."""
        s = self.settings
        cfg = s.cluster
        assert self.db is not None
        dsn = libpq_dsn(s.database.url)
        server_id = cfg.server_id or default_server_id()
        connect = connector(dsn, server_id)
        self.cluster_feed = ClusterFeed(
            connect, self.bus, server_id, poll_s=cfg.feed_poll_s, batch=cfg.feed_batch, retention_s=cfg.feed_retention_s
        )
        await self.cluster_feed.start(self.supervisor)
        self.cluster_feed.watch(Incident, self._remote_incident)
        if self.start_ray:
            self.directory = NamedGroups(
                self.desired_groups, interval_s=max(1.0, s.actors.reconcile_interval_s), idle=lambda: self.leading
            )
            self.supervisor.start("actor-directory", self.directory.run, restart=True)
            self._use_video(self.directory)
        if self.outbox is not None:  # a follower's operators act on incidents too; the leader learns
            engine = FusionEngine(alerts.fusion, self._sites)  # through the feed (_remote_incident)
            self._standby_actions = IncidentActions(self.outbox, engine, self.bus, SystemClock())
        self.election = LeaderElection(
            connect, server_id, on_elected=self._lead, on_deposed=self._unlead, interval_s=cfg.election_interval_s
        )
        self._election_task = self.supervisor.start("leader-election", self.election.run, restart=True)

    def _remote_incident(self, event: Event) -> None:
        """An incident moved by an operator of another server: fusion here (when leading) must know,
        so that an acknowledged incident is not alerted again and a closed one is forgotten."""
        if self.alerting is not None and isinstance(event, Incident) and event.state is not IncidentState.OPEN:
            self.alerting.engine.apply_state(event.incident_id, event.state, time.time())

    async def _lead(self, term: Term | None) -> None:
        """The leader's duties (the only server's, without a cluster): fusion and alert dispatch,
        retention, and the reconciler that runs the camera actors and pulls their events."""
        s = self.settings
        assert self.db is not None and self.spool is not None
        # a single server's are the server's tasks (health reports their failures); a cluster
        # leader's stop with its term
        tasks = self._leader_tasks = TaskSupervisor() if s.cluster.enabled else self.supervisor
        if self.cluster_feed is not None:  # the old leader's last events reach subscribers first
            await self.cluster_feed.catch_up()
        self.term, self.leading = term, True
        alerts = AlertsConfig.model_validate(s.alerts)
        if self.outbox is not None:
            self.alerting = await start_alerting(
                AlertingContext(
                    self.bus, self.outbox, tasks, SystemClock(), alerts, self._sites, audit=AuditRepo(self.db),
                    dispatch_state=CapStateRepo(self.db),
                )
            )
        db, evidence = self.db, self.evidence
        tasks.start(
            "retention",
            lambda: run_retention(db, SystemClock(), retention_days=s.storage.retention_days, evidence=evidence),
        )
        if self.start_ray:
            self.reconciler = Reconciler(
                self.desired_groups,
                WriterSink(self.bus, self.spool, self.alerting.fusion if self.alerting else None, self.cluster_feed),
                actors=s.actors,
                ray_cfg=s.ray,
                spool_dir=s.storage.data_dir / "spool",
                evidence=self.evidence,
                analysis=s.analysis,
                privacy=s.privacy,
                outbox_dsn=libpq_dsn(s.database.url) if s.actors.outbox == "database" else None,
                adopt=s.cluster.enabled,  # the actors outlive a leader; the next one takes them over
            )
            tasks.start("reconciler", self.reconciler.run)
            self._use_video(self.reconciler)

    async def _unlead(self) -> None:
        """Stop the leader's duties, in the order `stop()` always had: the actors drain their
        outboxes through fusion and the writer, fusion commits what it holds, then the rest."""
        timeout = self.settings.server.shutdown_timeout_s
        self.leading = False
        if self.reconciler is not None and self.election is not None and not self._stopping:
            # deposed while running: the actors go on for the new leader, which adopts them
            await self.reconciler.detach()
        elif self.reconciler is not None:
            try:
                await wait_for(self.reconciler.shutdown(), 4 * timeout)
            except TimeoutError:  # what is left stays in the outboxes for the next leader
                log.error("camera actors not drained within %.0f s", 4 * timeout)
        if self.alerting is not None:
            await self.alerting.stop(timeout_s=timeout)  # fusion commits what it holds
        if self._leader_tasks is not None and self._leader_tasks is not self.supervisor:
            await self._leader_tasks.stop(timeout_s=timeout)
        self._leader_tasks = self.alerting = self.reconciler = None
        self.term = None
        if self.directory is not None:
            self._use_video(self.directory)

    def incident_actions(self) -> IncidentActions | None:
        """Operator actions on incidents: the leader's fusion, or a follower's stand-in."""
        return self.alerting.actions if self.alerting is not None else self._standby_actions

    async def _bootstrap_admin(self) -> None:

        assert self.db is not None
        if await list_users(self.db):
            return
        password = secrets.token_urlsafe(12)
        await create_user(self.db, "admin", password, "admin", (), actor="demo")
        banner = f"demo: created user 'admin' with password {password!r} (shown once; change it)"
        log.warning(banner)
        print(f"\n  {banner}\n  console: http://{self.settings.server.host}:{self.settings.server.port}/\n", flush=True)

    async def desired_groups(self) -> list[GroupSpec]:
        """Cameras and rules from the database, by group: what the actors must run."""
        assert self.db is not None
        rows = await CameraRepo(self.db).list_cameras()
        rule_rows = await RuleRepo(self.db).list_rules()
        camera_groups = {r.id: r.group for r in rows}
        groups: dict[str, list[CameraSpec]] = {}
        group_rules: dict[str, list[str]] = {}
        for r in rows:
            enabled = r.enabled and self._camera_allowed(r.id, r.url)
            groups.setdefault(r.group, []).append(
                CameraSpec(
                    id=r.id, url=r.url, analysis_fps=r.analysis_fps, enabled=enabled, name=r.name, site=r.site,
                    privacy_zones=r.privacy_zones,
                    view_mode="background" if r.view_mode == "background" else "pixelated" if r.view_mode else None,
                )
            )
        for rule in rule_rows:
            group = camera_groups.get(rule.camera_id)
            if group is not None:
                group_rules.setdefault(group, []).append(rule_json(rule.spec()))
        return [GroupSpec(name, tuple(cams), tuple(group_rules.get(name, ()))) for name, cams in sorted(groups.items())]

    def _camera_allowed(self, camera_id: str, url: str) -> bool:
        """A stored camera that the cameras policy refuses (stored before it, or the policy was
        narrowed since) is not opened; said once in the log."""
        s = self.settings
        refused = netpolicy.check_camera_url(url, s.cameras_policy, s.storage.data_dir)
        if refused is not None and (camera_id, url) not in self._refused_cameras:
            self._refused_cameras.add((camera_id, url))
            log.error("camera %s not opened: %s", camera_id, refused)
        return refused is None

    async def vet_camera_url(self, url: str) -> str | None:
        """Why the cameras policy refuses a camera URL given to the API; None when allowed."""
        s = self.settings
        return await netpolicy.vet_camera_url(url, s.cameras_policy, s.storage.data_dir)

    async def stop(self) -> None:
        timeout = self.settings.server.shutdown_timeout_s
        # 1. actors first: the reconciler drains their outboxes into the writer
        # 2. the writer finishes its queue; 3. everything else; 4. Ray; 5. database
        t0 = time.monotonic()
        if self.extensions is not None:  # first: they read from and push into everything below
            await self.extensions.stop(timeout_s=timeout)
        if self.live_views is not None:
            await self.live_views.close()  # viewers read frames from the actors
        self._stopping = True
        if self.election is not None:  # the leadership goes with the lock, after the duties stop
            await cancel_and_wait(self._election_task)
            await self.election.release()
        elif self.leading:
            # actors first: their outboxes drain through fusion and the writer, still running
            await self._unlead()
        if self.cluster_feed is not None:
            await self.cluster_feed.stop(timeout_s=timeout)  # what the others have not seen yet
        await self.supervisor.stop(timeout_s=timeout)
        log.info("tasks and actors stopped in %.1fs", time.monotonic() - t0)
        if self._writer_sub is not None and self.writer is not None:
            self._writer_sub.close("server stopping")
            rest = self._writer_sub.get_nowait_batch(1_000_000)
            if rest:
                try:
                    await self.writer.write(rest)
                except Exception as exc:  # still in the actors' outboxes: redelivered at next start
                    log.error("%d queued events not written at stop: %s", len(rest), exc)
        self.bus.close_all("server stopping")
        if self._gc_saved is not None:
            gc.unfreeze()
            gc.set_threshold(*self._gc_saved)
            self._gc_saved = None
        if self.start_ray and self._ray_started:  # a Ray we joined is not ours to stop
            t0 = time.monotonic()
            await asyncio.to_thread(stop_ray)
            log.info("ray stopped in %.1fs", time.monotonic() - t0)
        if self.db is not None:
            await self.db.dispose()

    def cap_channel(self) -> CapDispatch | None:
        """The running emergency-dispatch channel (its feed and documents), if configured."""
        ch = self.alerting.channels.get(CapDispatch.type) if self.alerting is not None else None
        return ch if isinstance(ch, CapDispatch) else None

    async def evidence_file(self, event_id: str) -> Path | None:
        found = await self.evidence.find(event_id) if self.evidence is not None else None
        return found.path if found is not None else None

    async def evidence_clip_file(self, event_id: str) -> Path | None:
        found = await self.evidence.find_clip(event_id) if self.evidence is not None else None
        return found.path if found is not None else None

    def api_services(self) -> ApiServices:
        """What the GraphQL layer may use (built per request; cheap)."""
        assert self.db is not None and self.signer is not None
        return ApiServices(
            bus=self.bus,
            db=self.db,
            cameras=CameraRepo(self.db),
            rules=RuleRepo(self.db),
            status=self.status,
            signer=self.signer,
            login_limiter=self.login_limiter,
            video=self.video,
            incidents=self.incident_actions(),
            outbox=self.outbox if self.incident_actions() is not None else None,
            live_views=self.live_views,
            subscription_queue=self.subscription_queue,
            session_check_s=self.settings.server.session_check_s,
            vet_camera_url=self.vet_camera_url,
        )

    def video_health(self) -> RayHealth | None:
        return self.ray_video.health() if self.ray_video is not None else None

    def cluster_health(self) -> dict[str, JsonValue] | None:
        """This server's place in the cluster (None: a single server)."""
        if self.election is None or self.cluster_feed is None:
            return None
        f = self.cluster_feed
        return {
            "server": self.election.server_id,
            "leader": self.leading,
            "epoch": self.term.epoch if self.term is not None else None,
            "feed": {"position": f.position, "sent": f.sent, "received": f.received, "missed": f.missed},
            "leader_task_failures": dict(self._leader_tasks.failures()) if self._leader_tasks is not None else {},
        }

    async def health(self) -> dict[str, JsonValue]:
        return await health_report(self)


def create_app(settings: Settings, *, with_ray: bool = True, bootstrap_admin: bool = False) -> Starlette:
    """The ASGI app. `bootstrap_admin` (the demo): with no user in the database, create an admin
    with a random password and print it once, so that the console can be opened at once."""
    server = Server(
        settings,
        bus=EventBus(dedupe=settings.cluster.dedupe_window if settings.cluster.enabled else 0),
        start_ray=with_ray,
        subscription_queue=settings.server.subscription_queue,
        bootstrap_admin=bootstrap_admin,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        unredact = redact_access_log()  # picture URLs carry tokens: the access log shows none
        try:
            await server.start()
            if server.extensions is not None and server.extensions.graphql():
                graphql_app.schema = extension_schema(settings, server.extensions.graphql())
            log.info("smartcity ready on http://%s:%d", settings.server.host, settings.server.port)
            try:
                yield
            finally:
                await server.stop()
                log.info("smartcity stopped")
        finally:
            unredact()

    registry = CollectorRegistry()
    registry.register(ServerCollector(server))
    http_routes = HttpRoutes(server, registry, metrics_token=settings.server.metrics_token)

    graphql_app = GraphQLApp(server.api_services, introspection=settings.server.introspection)
    # extensions: validated now (an unknown type is a ConfigError), started by the lifespan
    server.extensions = extension_host(settings, http_routes.integration_caller)
    routes = [
        twilio_status_route(lambda: server.alerting.twilio_status if server.alerting else None),
        *cap_routes(server.cap_channel, server.evidence_file, server.evidence_clip_file),
        *http_routes.routes(),
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql_app),
        Mount("/ext", app=server.extensions.router),
        Mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web"),
    ]
    # in front of every route: a body over the limit is refused before anything reads it
    body_limit = Middleware(BodySizeLimit, max_bytes=settings.server.max_body_bytes)
    # outermost: its 413 answers carry the security headers too
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders), body_limit])
    app.state.server = server
    return app
