"""Several Ray nodes on one machine: a head and two worker nodes started with `ray start` on
loopback (`smartcity.actors.local_cluster`), synthetic low-resolution cameras in groups placed
by resource on the workers, events through the reconciler into PostgreSQL; then the worker
that runs the most groups is killed (SIGKILL to all its processes) mid-stream and every event
is counted.

Then (servers phase) two `smartcity serve` processes with `cluster.enabled` attach to the same
cluster and a database of their own, a GraphQL cameraStatus subscriber on each; the leader is
killed with SIGKILL mid-stream and the survivor takes over (see README "Scaling out").
`--servers-only` runs just that phase on a one-node cluster (tests/cluster/test_failover.py).

Usage: python bench/cluster.py [--quick] [--servers-only | --no-servers] [--no-capacity]
                               [--cameras N] [--groups G] [--seconds S]
Needs PostgreSQL (SMARTCITY_TEST_PG, default postgresql://postgres@127.0.0.1:5432/postgres):
it creates databases of its own and drops them at the end.

Prints progress lines, then as its LAST line a JSON object:
  nodes, cameras, groups        the cluster and the load (file cameras, 160x120, looped)
  events_per_s                  events stored per second after the recovery (all groups running)
  events_offered_per_s          the baseline: what the cameras produce (health every interval)
  node_kill_recovery_s          from the kill to every group of the dead node alive elsewhere
  events_lost                   sequence numbers recorded in an outbox and never stored
  events_duplicated             sequence numbers stored twice (under different event ids)
  events_stored, killed_node, groups_moved, outbox_left (rows not acknowledged at the end)
  servers                       API servers in the servers phase (2)
  subscription_delivery_ratio   camera health events received by the subscriber of each server over
                                those stored, within what each subscriber watched (goal 1.0);
                                subscription_duplicates, subscription_out_of_order (per camera)
  leader_failover_s             from the SIGKILL of the leader to the survivor leading (fusion,
                                dispatch and reconciler running); events_resumed_s: to the
                                survivor's subscriber getting events produced after the kill
  failover_events_per_s         the baseline for the servers phase: stored events per second
                                before the kill, and servers_events_per_s after the fail-over
  cameras_per_core              720p cameras at 5 analysed fps sustained (< 5 % dropped) per core, on
                                this machine alone after the cluster phases (bench/cameras_per_core.py);
                                _baseline: full frames to inference on the square 416x416 input
                                (decode_resize and detector.rect off);
                                _cpu: 1 / cores used per camera (less distorted by a loaded machine)
  cluster_temp_dir              where the nodes kept their state (removed at the end)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from smartcity.actors.camera_group import CameraSpec  # noqa: E402
from smartcity.actors.local_cluster import FAST_NODE_DEATH, LocalCluster, NodeSpec  # noqa: E402
from smartcity.actors.runtime import GroupSpec, Reconciler, start_ray, stop_ray  # noqa: E402
from smartcity.app import WriterSink  # noqa: E402
from smartcity.core.bus import EventBus, Overflow  # noqa: E402
from smartcity.core.config import ActorsConfig, RayConfig  # noqa: E402
from smartcity.core.events import CameraHealth  # noqa: E402
from smartcity.core.supervisor import TaskSupervisor  # noqa: E402
from smartcity.sources import generate_test_clip  # noqa: E402
from smartcity.storage.db import Database, libpq_dsn, migrate  # noqa: E402
from smartcity.storage.tables import events as events_table  # noqa: E402
from smartcity.storage.writer import EventWriter  # noqa: E402

PG_ADMIN_DSN = os.environ.get("SMARTCITY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CAMERA_RESOURCE = "camera_slots"
HEALTH_INTERVAL_S = 0.5


def say(msg: str) -> None:
    print(msg, flush=True)


@dataclass(frozen=True, slots=True)
class Load:
    cameras: int
    groups: int
    seconds: float  # before the kill, and again after the recovery


@dataclass(frozen=True, slots=True)
class Counted:
    stored: int
    lost: int
    duplicated: int


async def wait_until(cond: Callable[[], Awaitable[bool]], limit_s: float, what: str) -> float:
    t0 = time.monotonic()
    while not await cond():
        if time.monotonic() - t0 > limit_s:
            raise TimeoutError(f"timed out after {limit_s}s waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - t0


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def cluster_nodes() -> list[NodeSpec]:
    # the head runs the server's side only: camera groups need CAMERA_RESOURCE
    return [
        NodeSpec("head", num_cpus=1, resources={"server": 1}),
        NodeSpec("worker-1", num_cpus=1, resources={CAMERA_RESOURCE: 100}),
        NodeSpec("worker-2", num_cpus=1, resources={CAMERA_RESOURCE: 100}),
    ]


def groups_for(load: Load, clip: Path) -> list[GroupSpec]:
    per = -(-load.cameras // load.groups)
    specs: list[GroupSpec] = []
    for g in range(load.groups):
        cams = tuple(
            CameraSpec(id=f"cam{c:04d}", url=f"file://{clip}", analysis_fps=1)
            for c in range(g * per, min(load.cameras, (g + 1) * per))
        )
        if cams:
            specs.append(GroupSpec(f"g{g:03d}", cams))
    return specs


async def count(db: Database) -> Counted:
    """Health events carry their outbox sequence number: per group, a gap is an event lost, a
    sequence number stored twice is a duplicate."""
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(events_table.c.payload).where(events_table.c.type == "camera_health")
            )
        ).all()
    seen: dict[str, list[int]] = {}
    for (payload,) in rows:
        p = payload if isinstance(payload, dict) else json.loads(payload)
        seen.setdefault(str(p["group"]), []).append(int(p["seq"]))
    lost = duplicated = 0
    for seqs in seen.values():
        distinct = set(seqs)
        duplicated += len(seqs) - len(distinct)
        lost += max(distinct) - len(distinct)
    return Counted(len(rows), lost, duplicated)


async def stored(db: Database) -> int:
    async with db.engine.connect() as conn:
        n = await conn.scalar(sa.select(sa.func.count()).select_from(events_table))
    return int(n or 0)


async def outbox_left(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return int(await conn.fetchval("SELECT COUNT(*) FROM actor_outbox"))
    finally:
        await conn.close()


class Harness:
    """The server's Ray side and storage, as `smartcity serve` wires them (no HTTP)."""

    def __init__(self, db: Database, url: str, groups: list[GroupSpec], spool: Path) -> None:
        self.db = db
        self.groups = groups
        self.bus = EventBus()
        self.sup = TaskSupervisor()
        self.writer = EventWriter(db, batch_size=1000, max_wait_ms=20)
        self.sub = self.bus.subscribe("writer", [CameraHealth], maxsize=100_000, overflow=Overflow.BLOCK)
        actors = ActorsConfig(
            health_interval_s=HEALTH_INTERVAL_S,
            pull_interval_s=0.1,
            reconcile_interval_s=0.5,
            outbox="database",
            group_resources={CAMERA_RESOURCE: 1},
            start_timeout_s=300,  # a loaded 2-core box starts a node's worth of groups slowly
        )
        self.rec = Reconciler(
            self.desired,
            WriterSink(self.bus, self.writer),
            actors=actors,
            ray_cfg=RayConfig(actor_cpus=0),
            spool_dir=spool,
            outbox_dsn=libpq_dsn(url),
            call_timeout_s=5.0,
        )

    async def desired(self) -> list[GroupSpec]:
        return list(self.groups)

    async def start(self) -> None:
        writer, sub = self.writer, self.sub
        self.sup.start("writer", lambda: writer.run(sub))
        self.sup.start("reconciler", self.rec.run)

    async def stop(self) -> None:
        await self.sup.stop(timeout_s=60)
        self.sub.close()
        rest = self.sub.get_nowait_batch(1_000_000)
        if rest:
            await self.writer.write(rest)


def node_names() -> dict[str, str]:
    import ray

    return {str(n["NodeID"]): str(n["NodeName"]) for n in ray.nodes()}


async def scenario(load: Load, url: str, cluster: LocalCluster, work: Path) -> dict[str, Any]:
    await migrate(url)
    db = Database(url)
    clip = generate_test_clip(work / "clip.mp4", width=160, height=120, fps=5, seconds=4)
    h = Harness(db, url, groups_for(load, clip), work / "spool")
    await h.start()
    try:
        result = await _kill_and_recover(h, load, cluster)
        # sustained rate: after the recovery, once the restarted groups' backlog is stored
        await asyncio.sleep(2.0)
        n0, t0 = await stored(db), time.monotonic()
        await asyncio.sleep(load.seconds)
        n1, t1 = await stored(db), time.monotonic()
    finally:
        await h.stop()
    counted = await count(db)
    await db.dispose()
    result.update(
        events_stored=counted.stored,
        events_per_s=round((n1 - n0) / (t1 - t0), 1),
        events_offered_per_s=round(load.cameras / HEALTH_INTERVAL_S, 1),
        events_lost=counted.lost,
        events_duplicated=counted.duplicated,
        outbox_left=await outbox_left(libpq_dsn(url)),
    )
    return result


async def _kill_and_recover(h: Harness, load: Load, cluster: LocalCluster) -> dict[str, Any]:
    names = [g.name for g in h.groups]

    async def all_alive() -> bool:
        st = h.rec.status()
        return all(n in st and st[n].alive and st[n].node_id for n in names)

    await wait_until(all_alive, 300, "every camera group alive")
    say(f"{len(names)} groups alive; running {load.seconds}s before the kill")
    await asyncio.sleep(load.seconds)
    by_node: dict[str, list[str]] = {}
    for name, st in h.rec.status().items():
        by_node.setdefault(st.node_id, []).append(name)
    node_of = node_names()
    victim = max(by_node, key=lambda n: len(by_node[n]))
    moved = by_node[victim]
    say(f"placement: { {node_of.get(n, n): len(g) for n, g in by_node.items()} }; killing {node_of[victim]}")
    killed = node_of[victim]
    cluster.kill_node(killed)

    async def moved_alive() -> bool:
        st = h.rec.status()
        return all(st[n].alive and st[n].node_id and st[n].node_id != victim for n in moved)

    recovery = await wait_until(moved_alive, 600, "the dead node's groups alive on another node")
    say(f"{len(moved)} groups of {killed} alive elsewhere after {recovery:.1f}s")
    return {"node_kill_recovery_s": round(recovery, 2), "killed_node": killed, "groups_moved": len(moved)}


def servers_nodes() -> list[NodeSpec]:
    """--servers-only: one node runs everything (the servers' camera groups need CAMERA_RESOURCE)."""
    return [NodeSpec("head", num_cpus=2, resources={"server": 1, CAMERA_RESOURCE: 100})]


def run_servers_phase(cluster: LocalCluster, quick: bool, seconds: float) -> dict[str, Any]:
    """Two API servers on the cluster, a database of their own; see bench/cluster_servers.py."""
    from cluster_servers import servers_phase

    name = f"smartcity_servers_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            clip = generate_test_clip(work / "clip.mp4", width=160, height=120, fps=5, seconds=4)
            cameras, groups = (4, 2) if quick else (8, 4)
            return asyncio.run(
                servers_phase(
                    url, libpq_dsn(url), cluster.address, cluster.env(), work, clip,
                    cameras=cameras, groups=groups, seconds=seconds,
                )
            )
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="8 cameras in 4 groups, 8 s phases")
    ap.add_argument("--cameras", type=int, default=None)
    ap.add_argument("--groups", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--servers-only", action="store_true", help="only the servers phase, on a one-node cluster")
    ap.add_argument("--no-servers", action="store_true", help="skip the servers phase (keys null)")
    ap.add_argument("--no-capacity", action="store_true", help="skip the cameras-per-core phase (keys null)")
    args = ap.parse_args()
    if args.servers_only:
        servers_only(args.seconds or (5.0 if args.quick else 20.0), args.quick)
        return
    load = Load(
        cameras=args.cameras or (8 if args.quick else 200),
        groups=args.groups or (4 if args.quick else 20),
        seconds=args.seconds or (8.0 if args.quick else 30.0),
    )
    name = f"smartcity_cluster_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    cluster = LocalCluster(cluster_nodes(), system_config=FAST_NODE_DEATH)
    out: dict[str, Any] = {}
    servers: dict[str, Any] = {"servers": None, "subscription_delivery_ratio": None, "leader_failover_s": None}
    try:
        t0 = time.monotonic()
        cluster.start()
        say(f"3 nodes up in {time.monotonic() - t0:.1f}s at {cluster.address}")
        os.environ.update(cluster.env())
        start_ray(RayConfig(address=cluster.address, namespace="smartcity-bench"))
        with tempfile.TemporaryDirectory() as work:
            out = asyncio.run(scenario(load, url, cluster, Path(work)))
        stop_ray()
        if not args.no_servers:
            say("servers phase: two API servers on the surviving nodes")
            servers = run_servers_phase(cluster, args.quick, load.seconds)
    finally:
        stop_ray()
        cluster.stop()
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    capacity: dict[str, Any] = {"cameras_per_core": None}
    if not args.no_capacity:
        # on this machine alone, after the cluster is gone (bench/cameras_per_core.py)
        say("capacity phase: 720p cameras at 5 analysed fps per core")
        from cameras_per_core import measure_cameras_per_core

        cpc = measure_cameras_per_core(quick=args.quick)
        capacity = {k: cpc.get(k) for k in (
            "cameras_per_core", "cameras_per_core_baseline", "cameras_per_core_cpu",
            "cameras_per_core_cpu_baseline", "inference_ms_per_frame", "cores", "load_avg",
        )}  # fmt: skip
    result = {
        "nodes": len(cluster.specs),
        "cameras": load.cameras,
        "groups": load.groups,
        **out,
        **servers,
        **capacity,
        "cluster_temp_dir": str(cluster.temp_dir),
    }
    print(json.dumps(result))


def servers_only(seconds: float, quick: bool) -> None:
    """Just the servers phase on a one-node cluster; the same last-line JSON keys."""
    cluster = LocalCluster(servers_nodes(), system_config=FAST_NODE_DEATH)
    out: dict[str, Any] = {}
    try:
        t0 = time.monotonic()
        cluster.start()
        say(f"1 node up in {time.monotonic() - t0:.1f}s at {cluster.address}")
        out = run_servers_phase(cluster, quick, seconds)
    finally:
        cluster.stop()
    print(json.dumps({"nodes": len(cluster.specs), **out, "cluster_temp_dir": str(cluster.temp_dir)}))


if __name__ == "__main__":
    main()
