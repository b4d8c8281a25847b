"""Soak: does anything grow without bound? `smartcity demo` with several cameras and their demo
rules, GraphQL subscribers (events, camera status) and a WebRTC live view, for `--minutes`;
the memory (RSS) of every process of the server is sampled and summed by kind.

Usage: python bench/soak.py [--minutes 60] [--warmup-minutes 10] [--cameras 3] [--sample-s 10]
(not part of the `--quick` runs of the other benches: it takes its minutes).

Kinds: `server` (the `smartcity demo` process), `camera_group` and `inference` (Ray actors),
`ray_workers` (Ray's idle workers), `ray_daemons` (GCS, raylet, agents, monitors; also each by
name, `ray_daemons:gcs_server`, to tell which one grows). The slope is
a least-squares fit over the samples after the warm-up, in MiB per hour. Baseline in the same
run: this bench process itself (`bench`), which holds the subscribers and the viewer.

Prints progress lines, then as its LAST line a JSON object: minutes, warmup_minutes, cameras,
samples, rss_mib_start, rss_mib_end, rss_slope_mib_per_h (each by kind), subscription_messages,
live_frames, client_failures, loadavg_end.

The server runs through bench/soak_server.py (its live views on loopback); `--trace-dir DIR`
also has the server and its camera-group and inference actors write tracemalloc snapshots and
censuses there (smartcity/core/memtrace.py; diagnostic: not for the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import aioice.ice  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402
import websockets  # noqa: E402

PASSWORD = "soak bench password"
SUBSCRIPTIONS = (
    "subscription { events { eventId kind cameraId } }",
    "subscription { cameraStatus { cameraId state } }",
)


from soak_server import loopback_only  # noqa: E402  (bench/ is this script's folder)

# the viewer offers 127.0.0.1 host candidates only (aioice skips loopback by default), as the
# server does (bench/soak_server.py): the bench addresses no other interface
aioice.ice.get_host_addresses = loopback_only  # type: ignore[assignment]


def say(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kind_of(p: psutil.Process, server_pid: int) -> str:
    """A process's kind from its title: Ray names a worker after its actor's class and the
    method it runs (`ray::CameraGroup.events`, `ray::Inference.detect`, `ray::IDLE`)."""
    if p.pid == server_pid:
        return "server"
    try:
        text = (" ".join(p.cmdline()) or p.name()).lower()
    except psutil.Error:
        return "gone"
    if "ray::cameragroup" in text:
        return "camera_group"
    if "inference" in text and "ray::" in text:
        return "inference"
    if "ray::" in text and "agent" not in text:
        return "ray_workers"  # idle or starting workers
    return "ray_daemons"  # GCS, raylet, agents, monitors


def sample(server_pid: int) -> dict[str, float]:
    """RSS in MiB by kind, over the server and every process below it."""
    try:
        root = psutil.Process(server_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return {}
    out: dict[str, float] = {"bench": psutil.Process().memory_info().rss / 2**20}
    for p in procs:
        try:
            rss = p.memory_info().rss / 2**20
        except psutil.Error:
            continue
        kind = kind_of(p, server_pid)
        out[kind] = out.get(kind, 0.0) + rss
        if kind == "ray_daemons":  # which daemon grows: `ray_daemons:gcs_server`, `...:raylet`
            name = daemon_name(p)
            out[f"ray_daemons:{name}"] = out.get(f"ray_daemons:{name}", 0.0) + rss
    return out


def daemon_name(p: psutil.Process) -> str:
    """A Ray daemon's short name: its program (gcs_server, raylet), Ray's title (ray::DashboardAgent)
    or the Python script it runs (dashboard.py, monitor.py, log_monitor.py)."""
    try:
        cmd = p.cmdline() or [p.name()]
    except psutil.Error:
        return "gone"
    if cmd[0].startswith("ray::"):
        return cmd[0].split()[0]
    scripts = [Path(a).name for a in cmd[1:3] if a.endswith(".py")]
    return scripts[0] if scripts else Path(cmd[0]).name


def slope_per_h(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB), in MiB per hour."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return 0.0 if var == 0 else sum((t - mx) * (v - my) for t, v in points) / var * 3600


def write_config(work: Path, port: int, cameras: int) -> Path:
    cams = "\n".join(
        f'  - {{id: cam-{i}, name: "Demo {i}", url: "demo://vtest", group: default, analysis_fps: 2}}'
        for i in range(cameras)
    )
    cfg = work / "smartcity.yaml"
    cfg.write_text(
        f"""
server: {{port: {port}, introspection: false}}
database: {{url: "sqlite+aiosqlite:///{work}/db.sqlite"}}
storage: {{data_dir: "{work}/data"}}
ray: {{num_cpus: 2, object_store_mb: 100}}
analysis: {{inference_cpus: 0.5}}
actors: {{health_interval_s: 1.0}}
live_view: {{advertise_addresses: ["127.0.0.1"]}}
camera_groups: [{{name: default}}]
cameras:
{cams}
"""
    )
    return cfg


async def gql(
    client: httpx.AsyncClient, query: str, token: str | None = None, **variables: Any
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=30
    )
    body: dict[str, Any] = r.json()
    return body


async def subscriber(ws_url: str, token: str, query: str, counts: dict[str, int]) -> None:
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        await ws.recv()
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        async for message in ws:
            if json.loads(message).get("type") == "next":
                counts["messages"] += 1


async def viewer(client: httpx.AsyncClient, token: str, camera: str, counts: dict[str, int]) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("video", direction="recvonly")
        got: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        pc.on("track", lambda t: got.done() or got.set_result(t))
        await pc.setLocalDescription(await pc.createOffer())
        res = await gql(
            client,
            "mutation($c: ID!, $s: String!) { startLiveView(cameraId: $c, offerSdp: $s) "
            "{ __typename ... on LiveViewAnswer { sdp } ... on ValidationError { errors { message } } } }",
            token,
            c=camera,
            s=pc.localDescription.sdp,
        )
        answer = res["data"]["startLiveView"]
        if "sdp" not in answer:
            raise RuntimeError(f"live view refused: {answer}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        track = await asyncio.wait_for(got, 30)
        while True:
            await track.recv()
            counts["frames"] += 1
    finally:
        await pc.close()


def prepare(work: Path, cfg: Path, env: dict[str, str]) -> None:
    for args, stdin in (
        (["migrate", "--config", str(cfg)], ""),
        (
            ["users", "create", "soak", "--role", "admin", "--password-stdin", "--config", str(cfg)],
            PASSWORD + "\n",
        ),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "smartcity.cli", *args],
            cwd=work,
            env=env,
            input=stdin.encode(),
            capture_output=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"smartcity {args[0]} failed: {done.stderr.decode()[-2000:]}")


async def wait_healthy(
    client: httpx.AsyncClient, proc: subprocess.Popen[bytes], limit_s: float = 300
) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get("/healthz", timeout=2)).status_code == 200:
                return
        await asyncio.sleep(1)
    raise TimeoutError("server not healthy")


async def soak(args: argparse.Namespace, base: str, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    counts = {"messages": 0, "frames": 0}
    series: dict[str, list[tuple[float, float]]] = {}
    async with httpx.AsyncClient(base_url=base) as client:
        await wait_healthy(client, proc)
        login = await gql(
            client,
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { ... on LoginSuccess { token } } }",
            u="soak",
            p=PASSWORD,
        )
        token = login["data"]["login"]["token"]
        ws_url = base.replace("http", "ws") + "/graphql"
        loads = [subscriber(ws_url, token, q, counts) for q in SUBSCRIPTIONS for _ in range(args.subscribers)]
        tasks = [asyncio.ensure_future(c) for c in [*loads, viewer(client, token, "cam-0", counts)]]
        t0 = time.monotonic()
        try:
            while (now := time.monotonic() - t0) < args.minutes * 60:
                for kind, mib in sample(proc.pid).items():
                    series.setdefault(kind, []).append((now, mib))
                failed_now = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
                if failed_now:
                    raise RuntimeError(f"a soak client failed: {failed_now[0].exception()!r}")
                say(
                    f"{now / 60:5.1f} min  "
                    + "  ".join(f"{k} {v[-1][1]:.0f}" for k, v in sorted(series.items()) if ":" not in k)
                    + f"  msgs {counts['messages']} frames {counts['frames']}"
                )
                await asyncio.sleep(args.sample_s)
        finally:
            for t in tasks:
                t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [
        repr(r) for r in results if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError)
    ]
    warm = args.warmup_minutes * 60
    after = {k: [(t, v) for t, v in pts if t >= warm] for k, pts in series.items()}
    return {
        "minutes": args.minutes,
        "warmup_minutes": args.warmup_minutes,
        "cameras": args.cameras,
        "samples": len(series.get("server", [])),
        "rss_mib_start": {k: round(p[0][1], 1) for k, p in after.items() if p},
        "rss_mib_end": {k: round(p[-1][1], 1) for k, p in after.items() if p},
        "rss_slope_mib_per_h": {k: round(slope_per_h(p), 1) for k, p in after.items() if p},
        "subscription_messages": counts["messages"],
        "live_frames": counts["frames"],
        "client_failures": failed,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--warmup-minutes", type=float, default=10)
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--subscribers", type=int, default=2, help="of each subscription")
    ap.add_argument("--sample-s", type=float, default=10, help="seconds between samples (more samples: a slope less moved by the frames in flight)")
    ap.add_argument(
        "--trace-dir",
        type=Path,
        help="diagnostic: the server and its actors under tracemalloc (smartcity/core/memtrace.py), snapshots in this folder",
    )
    args = ap.parse_args()
    if args.warmup_minutes >= args.minutes:
        ap.error("--warmup-minutes must be shorter than --minutes")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    # the server runs in a temporary folder: the checkout's models (`smartcity models install`)
    env.setdefault("SMARTCITY_MODEL_DIR", str(root / "models"))
    env.pop("SMARTCITY_CONFIG", None)
    # stopped by a signal (also SIGINT under nohup, which ignores it): stop the server and its Ray
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port = free_port()
        cfg = write_config(work, port, args.cameras)
        prepare(work, cfg, env)
        with (work / "server.log").open("wb") as log:
            if args.trace_dir is not None:
                env["SMARTCITY_MEMTRACE_DIR"] = str(args.trace_dir.resolve())
            proc = subprocess.Popen(  # the server, its live views on loopback (bench/soak_server.py)
                [sys.executable, str(root / "bench" / "soak_server.py"), "demo", "--config", str(cfg)],
                cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        try:
            result = asyncio.run(soak(args, f"http://127.0.0.1:{port}", proc))
        except BaseException:
            say((work / "server.log").read_text(errors="replace")[-3000:])
            raise
        finally:
            below = list(psutil.Process(proc.pid).children(recursive=True)) if proc.poll() is None else []
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            for p in below:
                with contextlib.suppress(psutil.Error):
                    p.kill()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
