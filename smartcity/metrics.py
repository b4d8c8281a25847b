"""What the running server reports of itself: the /healthz body and the Prometheus metrics.

Both read the server's parts as the app built them (bus, writer, status board, task
supervisor, video side); neither starts or changes anything.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from smartcity.core.aio import wait_for
from smartcity.core.bus import EventBus
from smartcity.core.jsonvalue import JsonValue
from smartcity.core.status import StatusBoard
from smartcity.core.supervisor import TaskSupervisor
from smartcity.core.video import VideoControl
from smartcity.extensions.host import ExtensionHost
from smartcity.storage.db import Database, current_revision
from smartcity.storage.writer import EventWriter


class VideoHealth(Protocol):
    """The video side's part of the health report (Ray and its actors when Ray runs)."""

    @property
    def ok(self) -> bool: ...

    def to_json(self) -> dict[str, JsonValue]: ...


class ObservedServer(Protocol):
    """The parts of the running server that health and metrics read."""

    bus: EventBus
    supervisor: TaskSupervisor
    status: StatusBoard
    started_at: float
    db: Database | None
    writer: EventWriter | None
    video: VideoControl
    extensions: ExtensionHost | None

    def video_health(self) -> VideoHealth | None: ...

    def cluster_health(self) -> dict[str, JsonValue] | None: ...


async def health_report(server: ObservedServer) -> dict[str, JsonValue]:
    """The /healthz body: `status` is "healthy" or "unhealthy", the rest is for admins."""
    out: dict[str, JsonValue] = {"uptime_s": round(time.time() - server.started_at, 1)}
    ok = True
    try:
        assert server.db is not None
        rev = await wait_for(current_revision(server.db), 3)
        out["database"] = {"ok": True, "revision": rev, "dialect": server.db.dialect}
    except Exception as exc:
        ok = False
        out["database"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    video = server.video_health()
    if video is not None:
        out.update(video.to_json())
        ok = ok and video.ok
    failed: dict[str, JsonValue] = dict(server.supervisor.failures())
    if failed:
        out["task_failures"] = failed
    ext = server.extensions
    if ext is not None and (ext.running or ext.failed):  # a failed extension leaves the server healthy
        out["extensions"] = {"running": list(ext.running), "failed": dict(ext.failed)}
    w = server.writer
    if w is not None:
        out["writer"] = {"committed": w.committed, "duplicates": w.duplicates, "failures": w.failures}
    cluster = server.cluster_health()
    if cluster is not None:
        out["cluster"] = cluster
    out["cameras"] = {cid: h.state.value for cid, h in sorted(server.status.all().items())}
    out["status"] = "healthy" if ok else "unhealthy"
    return out


class ServerCollector(Collector):
    """Prometheus metrics of the bus, the writer, the camera group actors and the cameras."""

    def __init__(self, server: ObservedServer) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        s = self.server
        yield CounterMetricFamily("smartcity_bus_published", "Events published on the bus", value=s.bus.published_total)
        yield CounterMetricFamily("smartcity_bus_dropped", "Events dropped by lossy subscribers", value=s.bus.dropped_total)
        yield CounterMetricFamily(
            "smartcity_bus_subscribers_closed_slow", "Subscribers closed for being too slow", value=s.bus.closed_by_overflow
        )
        yield GaugeMetricFamily("smartcity_bus_subscribers", "Live bus subscriptions", value=len(s.bus.subscriptions))
        if s.writer is not None:
            yield CounterMetricFamily("smartcity_writer_committed", "Events committed", value=s.writer.committed)
            yield CounterMetricFamily("smartcity_writer_duplicates", "Duplicate events ignored", value=s.writer.duplicates)
            yield CounterMetricFamily("smartcity_writer_failures", "Failed write attempts", value=s.writer.failures)
        if s.video_health() is not None:
            groups = s.video.runtime()
            restarts = sum(g.restarts for g in groups)
            yield CounterMetricFamily("smartcity_actor_restarts", "Camera group actors restarted", value=restarts)
            alive = GaugeMetricFamily("smartcity_actor_alive", "Camera group actor alive", labels=["group"])
            per_node = GaugeMetricFamily(
                "smartcity_node_cameras", "Cameras run by live camera group actors, per Ray node", labels=["node"]
            )
            cameras: dict[str, int] = {}
            for g in groups:
                alive.add_metric([g.group], 1.0 if g.alive else 0.0)
                if g.alive:
                    cameras[g.node] = cameras.get(g.node, 0) + len(g.cameras)
            for node, n in sorted(cameras.items()):
                per_node.add_metric([node or "unknown"], float(n))
            yield alive
            yield per_node
        states = GaugeMetricFamily("smartcity_camera_online", "Camera online (1) or not (0)", labels=["camera"])
        fps = GaugeMetricFamily("smartcity_camera_analysed_fps", "Analysed frames per second", labels=["camera"])
        for cid, h in s.status.all().items():
            states.add_metric([cid], 1.0 if h.state.value == "online" else 0.0)
            fps.add_metric([cid], h.analysed_fps)
        yield states
        yield fps
        cluster = s.cluster_health()
        if cluster is not None:
            yield GaugeMetricFamily("smartcity_cluster_leader", "This server leads the cluster (1) or follows (0)",
                                    value=1.0 if cluster.get("leader") else 0.0)
            feed = cluster.get("feed")
            if isinstance(feed, dict):
                for key in ("sent", "received", "missed"):
                    value = feed.get(key)
                    if isinstance(value, int):
                        yield CounterMetricFamily(f"smartcity_cluster_feed_{key}", f"Events {key} through the cluster feed",
                                                  value=value)
        if s.extensions is not None:
            yield from s.extensions.collect()
