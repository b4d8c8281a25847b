"""The servers phase of bench/cluster.py: two `smartcity serve` processes (`cluster.enabled`)
attached to one Ray cluster and one PostgreSQL database, a GraphQL cameraStatus subscriber on
each; the leader is killed with SIGKILL mid-stream, the survivor takes over. Every camera health
event carries its group's outbox sequence number, so that what each subscriber received can be
compared with what was stored: delivered once, in order per camera, nothing missing.

Not a script: bench/cluster.py calls `servers_phase()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from websockets.asyncio.client import connect as ws_connect

ROOT = Path(__file__).resolve().parents[1]
SERVERS = 2
PASSWORD = "bench password for the cluster"
HEALTH_S = 0.5


def say(msg: str) -> None:
    print(msg, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Served:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Subscriber:
    """What one server's cameraStatus subscriber received: (camera, seq) in arrival order."""

    server: str
    got: list[tuple[str, int, float]] = field(default_factory=list)  # camera, seq, arrival (monotonic)
    ended: str = ""


def _config(work: Path, url: str, ray_address: str, name: str, port: int, cameras: list[tuple[str, str]], clip: Path) -> Path:
    groups = sorted({g for _, g in cameras})
    cams = "\n".join(f"  - {{id: {c}, url: 'file://{clip}', group: {g}, analysis_fps: 1}}" for c, g in cameras)
    cfg = work / f"{name}.yaml"
    cfg.write_text(
        f"""
server: {{port: {port}, shutdown_timeout_s: 8}}
database: {{url: "{url}", migrate_on_start: false}}
storage: {{data_dir: "{work / name}"}}
ray: {{address: "{ray_address}", namespace: smartcity-servers, actor_cpus: 0}}
actors: {{outbox: database, health_interval_s: {HEALTH_S}, pull_interval_s: 0.1, reconcile_interval_s: 0.5,
          group_resources: {{camera_slots: 1}}, start_timeout_s: 120}}
analysis: {{enabled: false}}
cluster: {{enabled: true, server_id: {name}, election_interval_s: 0.5, feed_poll_s: 0.5}}
camera_groups: [{", ".join(f"{{name: {g}}}" for g in groups)}]
cameras_policy: {{file_roots: ["{clip.parent}"]}}
cameras:
{cams}
"""
    )
    return cfg


def _cli(args: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smartcity.cli", *args], cwd=cwd, env=env, input=stdin.encode(), capture_output=True,
        timeout=300, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"smartcity {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")


def _serve(cfg: Path, name: str, port: int, env: dict[str, str], work: Path) -> Served:
    log = work / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smartcity.cli", "serve", "--config", str(cfg)],
            cwd=work, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    return Served(name, port, proc, log)


async def _wait_healthy(s: Served, limit_s: float = 300) -> None:
    t0 = time.monotonic()
    async with httpx.AsyncClient(timeout=3) as client:
        while time.monotonic() - t0 < limit_s:
            if s.proc.poll() is not None:
                raise RuntimeError(f"server {s.name} exited: {s.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{s.base}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise TimeoutError(f"server {s.name} not healthy in {limit_s}s: {s.log.read_text()[-3000:]}")


async def _token(s: Served) -> str:
    q = f'mutation {{ login(username: "bench", password: "{PASSWORD}") {{ ... on LoginSuccess {{ token }} }} }}'
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(f"{s.base}/graphql", json={"query": q})
    token: str = r.json()["data"]["login"]["token"]
    return token


async def _subscribe(s: Served, token: str, into: Subscriber) -> None:
    """Receive cameraStatus until the server goes away or the task is cancelled."""
    try:
        async with ws_connect(s.base.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            query = "subscription { cameraStatus { cameraId seq } }"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif msg["type"] == "next":
                    st = msg["payload"]["data"]["cameraStatus"]
                    into.got.append((st["cameraId"], int(st["seq"]), time.monotonic()))
                else:
                    into.ended = json.dumps(msg)[:300]
                    return
    except Exception as exc:  # the killed server's subscriber ends here
        into.ended = f"{type(exc).__name__}: {exc}"[:300]


async def _leader(dsn: str) -> tuple[str, int] | None:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        row = await conn.fetchrow("SELECT server_id, epoch FROM cluster_leader WHERE id = 1")
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()
    return None if row is None else (str(row["server_id"]), int(row["epoch"]))


async def _stored(dsn: str) -> dict[str, set[int]]:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await conn.fetch("SELECT camera_id, payload FROM events WHERE type = 'camera_health'")
    finally:
        await conn.close()
    out: dict[str, set[int]] = {}
    for r in rows:
        p = r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"])
        out.setdefault(str(r["camera_id"]), set()).add(int(p["seq"]))
    return out


async def _count(dsn: str) -> int:
    return sum(len(v) for v in (await _stored(dsn)).values())


def delivery(subs: list[Subscriber], stored: dict[str, set[int]]) -> dict[str, Any]:
    """Per subscriber and camera, within the sequence numbers it saw (first to last): stored
    events received (distinct) over stored; duplicates; arrivals lower than the previous one."""
    received = produced = dups = disorder = 0
    by_server: dict[str, float | None] = {}
    for sub in subs:
        r_s = p_s = 0
        last: dict[str, int] = {}
        seen: dict[str, set[int]] = {}
        for cam, seq, _ in sub.got:
            if seq in seen.setdefault(cam, set()):
                dups += 1
            seen[cam].add(seq)
            if seq < last.get(cam, -1):
                disorder += 1
            last[cam] = max(seq, last.get(cam, -1))
        for cam, seqs in seen.items():
            lo, hi = min(seqs), max(seqs)
            window = {q for q in stored.get(cam, set()) if lo <= q <= hi}
            p_s += len(window)
            r_s += len(window & seqs)
        by_server[sub.server] = round(r_s / p_s, 4) if p_s else None
        received += r_s
        produced += p_s
    return {
        "subscription_delivery_ratio": round(received / produced, 4) if produced else None,
        "subscription_delivery_by_server": by_server,
        "subscription_events_checked": produced,
        "subscription_duplicates": dups,
        "subscription_out_of_order": disorder,
    }


async def _until(cond: Any, limit_s: float, what: str) -> float:
    t0 = time.monotonic()
    while not await cond():
        if time.monotonic() - t0 > limit_s:
            raise TimeoutError(f"timed out after {limit_s}s waiting for {what}")
        await asyncio.sleep(0.1)
    return time.monotonic() - t0


async def _phase(servers: list[Served], dsn: str, cameras: list[str], seconds: float) -> dict[str, Any]:
    tokens = [await _token(s) for s in servers]
    subs = [Subscriber(s.name) for s in servers]
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(_subscribe(s, t, sub)) for s, t, sub in zip(servers, tokens, subs, strict=True)]

        async def all_flowing() -> bool:
            return all({c for c, _, _ in sub.got} >= set(cameras) for sub in subs)

        await _until(all_flowing, 300, "events of every camera on every server's subscriber")
        say(f"both subscribers receive every camera; running {seconds}s before killing the leader")
        m0, u0 = await _count(dsn), time.monotonic()
        await asyncio.sleep(seconds)
        m1, u1 = await _count(dsn), time.monotonic()
        before = await _leader(dsn)
        assert before is not None and not before[0].endswith("(starting)"), before
        victim = next(s for s in servers if s.name == before[0])
        survivor_i = next(i for i, s in enumerate(servers) if s is not victim)
        survivor = servers[survivor_i]
        seen_at_kill = {c: max((q for cc, q, _ in subs[survivor_i].got if cc == c), default=0) for c in cameras}
        os.killpg(victim.proc.pid, signal.SIGKILL)
        t_kill = time.monotonic()
        victim.proc.wait()
        say(f"killed leader {victim.name} (epoch {before[1]})")

        async def survivor_leads() -> bool:
            now = await _leader(dsn)
            return now is not None and now[0] == survivor.name

        await _until(survivor_leads, 120, f"{survivor.name} leading")
        failover = time.monotonic() - t_kill
        after = await _leader(dsn)
        say(f"{survivor.name} leads (epoch {after[1] if after else '?'}) {failover:.1f}s after the kill")

        async def resumed() -> bool:  # events produced by the new leader's actors
            got = subs[survivor_i].got
            return all(any(c == cam and q > seen_at_kill[cam] + 4 for c, q, _ in got) for cam in cameras)

        await _until(resumed, 300, "events after the fail-over on the survivor")
        resume = time.monotonic() - t_kill
        say(f"the survivor's subscriber gets new events {resume:.1f}s after the kill; running {seconds}s more")
        n0, t0 = await _count(dsn), time.monotonic()
        await asyncio.sleep(seconds)
        n1, t1 = await _count(dsn), time.monotonic()
        async with httpx.AsyncClient(timeout=10, headers={"authorization": f"Bearer {tokens[survivor_i]}"}) as client:
            health = (await client.get(f"{survivor.base}/healthz")).json()
            metrics = (await client.get(f"{survivor.base}/metrics")).text
        for t in tasks:
            t.cancel()
    return {
        "servers": len(servers),
        "leader_failover_s": round(failover, 2),
        "events_resumed_s": round(resume, 2),
        "killed_leader": victim.name,
        "leader_epochs": [before[1], after[1] if after else None],
        "failover_events_per_s": round((m1 - m0) / (u1 - u0), 1),
        "servers_events_per_s": round((n1 - n0) / (t1 - t0), 1),
        "subscribers_ended": {sub.server: sub.ended for sub in subs},
        "survivor_cluster": health.get("cluster"),
        "survivor_metrics_leader": "smartcity_cluster_leader 1.0" in metrics,
        "_subs": subs,
    }


@contextlib.contextmanager
def _servers_stopped(servers: list[Served]) -> Iterator[None]:
    """Whatever happens, no server is left: SIGTERM (a clean stop), then SIGKILL to its session."""
    try:
        yield
    finally:
        for s in servers:
            if s.proc.poll() is None:
                s.proc.send_signal(signal.SIGTERM)
        for s in servers:
            try:
                s.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                say(f"server {s.name} did not stop in 60 s: killed")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(s.proc.pid, signal.SIGKILL)
            s.proc.wait()


async def servers_phase(
    url: str, dsn: str, ray_address: str, ray_env: dict[str, str], work: Path, clip: Path, *,
    cameras: int = 4, groups: int = 2, seconds: float = 6.0,
) -> dict[str, Any]:
    """Two servers on `url` (an empty database) attached to the cluster at `ray_address`."""
    env = {**os.environ, **ray_env, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    env.pop("SMARTCITY_CONFIG", None)
    cams = [(f"sc{c:03d}", f"s{c % groups:02d}") for c in range(cameras)]
    names = [f"server-{k}" for k in range(SERVERS)]
    ports = [_free_port() for _ in names]
    cfgs = [_config(work, url, ray_address, n, p, cams, clip) for n, p in zip(names, ports, strict=True)]
    _cli(["migrate", "--config", str(cfgs[0])], env, work)
    _cli(["users", "create", "bench", "--role", "admin", "--password-stdin", "--config", str(cfgs[0])], env, work,
         PASSWORD + "\n")
    servers: list[Served] = []
    with _servers_stopped(servers):
        t0 = time.monotonic()
        for name, port, cfg in zip(names, ports, cfgs, strict=True):  # one after the other: one syncs the cameras
            servers.append(_serve(cfg, name, port, env, work))
            await _wait_healthy(servers[-1])
        say(f"{len(servers)} servers healthy in {time.monotonic() - t0:.1f}s")
        out = await _phase(servers, dsn, [c for c, _ in cams], seconds)
        # the survivor stops cleanly (SIGTERM): its actors drain into the database first
    subs: list[Subscriber] = out.pop("_subs")
    out.update(delivery(subs, await _stored(dsn)))
    out["server_pids"] = [s.proc.pid for s in servers]
    return out
