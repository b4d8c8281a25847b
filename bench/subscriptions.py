"""Benchmark: live GraphQL subscriptions, event published on the bus -> received by the client.

One server process (the real app without Ray: uvicorn + strawberry + graphql-transport-ws,
SQLite, the writer persisting every event) and client processes using the `websockets`
library. Each subscriber authenticates in `connection_init` with a bearer token (10 operator
users, logged in once over HTTP) and subscribes to the rule events of one camera
(`events(cameraId:)`, 10 subscribers per camera); every camera gets events at `--rate` per
second (2 by default), spread evenly over time, so every subscriber receives `--rate` events
per second. Each event carries the wall-clock time of its publication on the bus; a client
takes the difference as soon as it has the message (same machine, same clock).

Phases, in one run: a baseline of 10 subscribers (each on its own camera), the target (1,000
by default) with the server as configured by default, then (unless `--no-gc-comparison`) the
target again with the server process's garbage-collector thresholds set to
`--compare-gc-threshold` (Python's defaults unless told), to show what the server's own GC
setting is worth. "dropped" counts the events a subscriber should have received in the
measured window but did not; "closed_subscribers" counts subscriptions ended by the server
(too slow) or with an error.

Also measured inside the server process: the time until the server handed each event's
message to the socket (`server_send_*`, without the client's share), garbage-collection
pauses and event-loop lag; the client processes report their own loop lag and CPU.

    python bench/subscriptions.py --quick          # 10, then 1,000 subscribers twice, 8 s each
    python bench/subscriptions.py --subscribers 2000 --seconds 30

The last line printed is a JSON object (the default target, with the baseline and the GC
comparison inside).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SUBSCRIPTION = "subscription($cam: ID!) { events(cameraId: $cam) { id kind cameraId payload } }"
SUBSCRIBERS_PER_CAMERA = 10
USERS = 10
PASSWORD = "bench password 123"
PYTHON_DEFAULT_GC = (700, 10, 10)
STALL_S = 0.020


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


async def _lag_monitor(out: list[float], window: list[float], period: float = 0.005) -> None:
    """Records, inside `window`, how late the event loop wakes a 5 ms sleep (loop busy or blocked)."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(period)
        if window[0] <= time.time() < window[1]:
            out.append(time.perf_counter() - before - period)


# ---- client process ----------------------------------------------------------------------------
async def _client_main(url: str, tokens: list[str], cameras: list[str], first: int, n: int) -> None:
    """Open subscribers [first, first + n), wait for `start t0 t1` and `stop` on stdin, print results."""
    import websockets
    from websockets.typing import Subprotocol

    latencies: list[float] = []
    received: dict[int, int] = {}
    closed: list[str] = []
    lags: list[float] = []
    window = [float("inf"), float("-inf")]
    loop = asyncio.get_running_loop()

    async def one(i: int, ready: asyncio.Event) -> None:
        cam = cameras[i % len(cameras)]
        async with websockets.connect(
            url, subprotocols=[Subprotocol("graphql-transport-ws")], compression=None, max_queue=None
        ) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "connection_init",
                        "payload": {"authorization": f"Bearer {tokens[i % len(tokens)]}"},
                    }
                )
            )
            ack = json.loads(await ws.recv())
            if ack["type"] != "connection_ack":
                raise RuntimeError(f"subscriber {i}: {ack}")
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": SUBSCRIPTION, "variables": {"cam": cam}},
                    }
                )
            )
            ready.set()
            count = 0
            async for raw in ws:
                now = time.time()
                msg = json.loads(raw)
                kind = msg["type"]
                if kind == "next":
                    data = msg["payload"].get("data")
                    if data is None:
                        closed.append(str(msg["payload"].get("errors")))
                        return
                    pub = data["events"]["payload"]["pub"]
                    if window[0] <= pub < window[1]:
                        latencies.append(now - pub)
                        count += 1
                        received[i] = count
                elif kind == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif kind in ("error", "complete"):
                    closed.append(json.dumps(msg)[:200])
                    return

    tasks: list[asyncio.Task[None]] = []
    for i in range(first, first + n):
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(one(i, ready)))
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait([waiter, tasks[-1]], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if tasks[-1].done():
            tasks[-1].result()
    print("ready", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks.append(asyncio.create_task(_lag_monitor(lags, window)))
    while True:
        line = (await reader.readline()).decode().split()
        if not line or line[0] == "stop":
            break
        if line[0] == "start":
            window[0], window[1] = float(line[1]), float(line[2])
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(
        json.dumps({"latencies": latencies, "received": received, "closed": closed, "lags": lags}), flush=True
    )


# ---- server side -------------------------------------------------------------------------------
_PUB = re.compile(r'"pub":\s*([0-9.eE+-]+)')


class ServerProbe:
    """Instruments inside the server process, for one measured window at a time.

    - an ASGI wrapper that times each WebSocket message carrying an event once the server has
      handed it to the transport (bus -> socket write, without the client's share);
    - a `gc.callbacks` hook timing each garbage collection (a collection stops the event loop);
    - an event-loop lag monitor.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.window = [float("inf"), float("-inf")]
        self.send_latencies: list[float] = []
        self.gc_pauses: list[tuple[int, float, float]] = []  # generation, wall s, thread CPU s
        self.loop_lags: list[float] = []
        self.stalls: list[tuple[float, float]] = []  # loop lag over STALL_S: wall s, process CPU s
        self.tracked_objects = 0
        self._gc_started = (0.0, 0.0)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return

        async def timed_send(message: Any) -> None:
            await send(message)
            text = message.get("text") if message["type"] == "websocket.send" else None
            if text:
                m = _PUB.search(text)
                if m:
                    now, pub = time.time(), float(m.group(1))
                    if self.window[0] <= pub < self.window[1]:
                        self.send_latencies.append(now - pub)

        await self.app(scope, receive, timed_send)

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = (time.perf_counter(), time.thread_time())
        elif self.window[0] <= time.time() < self.window[1]:
            wall, cpu = self._gc_started
            self.gc_pauses.append(
                (int(info["generation"]), time.perf_counter() - wall, time.thread_time() - cpu)
            )

    async def watch_loop(self) -> None:
        """Like `_lag_monitor`, and for each stall the CPU the server process got meanwhile:
        the stall's length or more (CPU of all its threads) when the server itself was busy, far
        less when the machine ran something else (2 shared cores)."""
        period = 0.005
        while True:
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.sleep(period)
            if self.window[0] <= time.time() < self.window[1]:
                lag = time.perf_counter() - wall - period
                self.loop_lags.append(lag)
                if lag > STALL_S:
                    self.stalls.append((lag, time.process_time() - cpu))

    def start(self, t0: float, t1: float) -> None:
        self.tracked_objects = len(gc.get_objects())
        self.window[0], self.window[1] = t0, t1
        self.send_latencies.clear()
        self.gc_pauses.clear()
        self.loop_lags.clear()
        self.stalls.clear()

    def report(self) -> dict[str, Any]:
        full = [d for g, d, _ in self.gc_pauses if g == 2]
        return {
            "server_send_p50_ms": _ms(_pct(self.send_latencies, 0.50)),
            "server_send_p95_ms": _ms(_pct(self.send_latencies, 0.95)),
            "server_send_p99_ms": _ms(_pct(self.send_latencies, 0.99)),
            "server_gc_tracked_objects": self.tracked_objects,
            "server_gc_collections": len(self.gc_pauses),
            "server_gc_total_ms": _ms(sum(d for _, d, _ in self.gc_pauses)),
            "server_gc_total_cpu_ms": _ms(sum(c for _, _, c in self.gc_pauses)),
            "server_gc_full_collections": len(full),
            "server_gc_full_max_ms": _ms(max(full, default=0.0)),
            "server_gc_max_ms": _ms(max((d for _, d, _ in self.gc_pauses), default=0.0)),
            "server_gc_by_generation": {
                g: [
                    sum(1 for x in self.gc_pauses if x[0] == g),
                    _ms(max((x[1] for x in self.gc_pauses if x[0] == g), default=0.0)),
                ]
                for g in (0, 1, 2)
            },
            "server_loop_lag_p99_ms": _ms(_pct(self.loop_lags, 0.99)),
            "server_loop_lag_max_ms": _ms(max(self.loop_lags, default=0.0)),
            "server_stalls_over_20ms": len(self.stalls),
            "server_stalls_total_ms": _ms(sum(w for w, _ in self.stalls)),
            "server_stalls_cpu_share": round(
                sum(c for _, c in self.stalls) / sum(w for w, _ in self.stalls), 2
            )
            if self.stalls
            else None,
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _phase(
    server: Any,
    probe: ServerProbe,
    base: str,
    tokens: list[str],
    subscribers: int,
    args: argparse.Namespace,
    procs: int,
    gc_threshold: tuple[int, ...] | None = None,
    per_camera: int = SUBSCRIBERS_PER_CAMERA,
) -> dict[str, Any]:
    import psutil

    from smartcity.core.events import RuleEvent

    rate, seconds = args.rate, args.seconds
    cameras = [f"cam-{k:03d}" for k in range(max(1, subscribers // per_camera))]
    url = base.replace("http", "ws") + "/graphql"
    procs = max(1, min(procs, subscribers))
    shares = [subscribers // procs + (1 if k < subscribers % procs else 0) for k in range(procs)]
    children: list[asyncio.subprocess.Process] = []
    first = 0
    closed_before = server.bus.closed_by_overflow
    shipped_gc = gc.get_threshold()
    if gc_threshold is not None:
        gc.set_threshold(*gc_threshold)
    ramp = time.monotonic()
    try:
        for share in shares:
            children.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--client",
                    url,
                    json.dumps(tokens),
                    json.dumps(cameras),
                    str(first),
                    str(share),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    limit=1 << 28,
                )
            )
            first += share
        for child in children:
            assert child.stdout is not None
            line = (await asyncio.wait_for(child.stdout.readline(), 300)).decode().strip()
            if line != "ready":
                raise RuntimeError(f"client process failed: {line!r}")
        deadline = time.monotonic() + 30
        while sum(1 for s in server.bus.subscriptions if s.name.startswith("graphql:")) < subscribers:
            if time.monotonic() > deadline:
                raise RuntimeError("subscriptions did not all reach the bus")
            await asyncio.sleep(0.05)
        ramp_s = time.monotonic() - ramp
        print(
            f"# {subscribers} subscribers connected in {ramp_s:.1f} s; publishing",
            file=sys.stderr,
            flush=True,
        )

        warmup = 2.0
        interval = 1.0 / (rate * len(cameras))
        published: dict[str, int] = dict.fromkeys(cameras, 0)
        t_start = time.time()
        t0, t1 = t_start + warmup, t_start + warmup + seconds
        for child in children:
            assert child.stdin is not None
            child.stdin.write(f"start {t0} {t1}\n".encode())
            await child.stdin.drain()
        probe.start(t0, t1)
        client_ps = [psutil.Process(c.pid) for c in children]
        client_cpu0 = sum(sum(c.cpu_times()[:2]) for c in client_ps)
        cpu0 = time.process_time()
        i = 0
        mono0 = time.monotonic()
        while True:
            due = mono0 + i * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.time()
            if now >= t1:
                break
            cam = cameras[i % len(cameras)]
            # the same timestamp decides "in the window" here and in the clients
            await server.bus.publish(
                RuleEvent(
                    camera_id=cam,
                    t=now,
                    rule_id="bench",
                    rule_type="line_crossing",
                    kind="crossing",
                    payload={"pub": now},
                )
            )
            if t0 <= now:
                published[cam] += 1
            i += 1
        cpu = time.process_time() - cpu0
        load_1m = os.getloadavg()[0]
        client_cpu = sum(sum(c.cpu_times()[:2]) for c in client_ps) - client_cpu0
        await asyncio.sleep(1.5)  # let the last events arrive
        results = []
        for child in children:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(b"stop\n")
            await child.stdin.drain()
            results.append(json.loads((await asyncio.wait_for(child.stdout.readline(), 60)).decode()))
            await child.wait()
        # the subscribers are gone: what a full collection cannot free is still referenced
        # (compare across phases to see memory kept per connection or per event)
        await asyncio.sleep(0.5)
        gc.collect()
        objects_after = len(gc.get_objects())
    finally:
        gc.set_threshold(*shipped_gc)
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    latencies = [x for r in results for x in r["latencies"]]
    client_lags = [x for r in results for x in r["lags"]]
    expected = sum(published[cameras[i % len(cameras)]] for i in range(subscribers))
    got = sum(int(v) for r in results for v in r["received"].values())
    closed = [c for r in results for c in r["closed"]]
    return {
        "subscribers": subscribers,
        "cameras": len(cameras),
        "events_per_s_per_subscriber": rate,
        "seconds": seconds,
        "server_gc_threshold": list(gc_threshold or shipped_gc),
        "ramp_up_s": round(ramp_s, 1),
        "published": sum(published.values()),
        "published_per_s": round(sum(published.values()) / seconds, 1),
        "expected": expected,
        "delivered": got,
        "delivered_per_s": round(got / seconds, 1),
        "p50_ms": _ms(_pct(latencies, 0.50)),
        "p95_ms": _ms(_pct(latencies, 0.95)),
        "p99_ms": _ms(_pct(latencies, 0.99)),
        "max_ms": _ms(max(latencies, default=float("nan"))),
        "mean_ms": _ms(statistics.fmean(latencies)) if latencies else None,
        "dropped": max(0, expected - got),
        "closed_subscribers": len(closed) + (server.bus.closed_by_overflow - closed_before),
        "server_cpu_s_per_s": round(cpu / (seconds + warmup), 3),
        "client_cpu_s_per_s": round(client_cpu / (seconds + warmup), 3),
        "client_processes": len(children),
        "machine_load_1m": round(load_1m, 2),
        "client_loop_lag_p99_ms": _ms(_pct(client_lags, 0.99)),
        "client_loop_lag_max_ms": _ms(max(client_lags, default=0.0)),
        **probe.report(),
        "server_objects_after_phase_collected": objects_after,
    }


async def _main(args: argparse.Namespace) -> None:
    import httpx
    import uvicorn

    from smartcity.app import create_app
    from smartcity.core.config import load_settings
    from smartcity.storage.users import create_user

    target = args.subscribers
    cameras = max(1, target // SUBSCRIBERS_PER_CAMERA)
    comparison: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="smartcity-bench-subs-") as tmp:
        port = _free_port()
        settings = load_settings(
            overrides={
                "server": {"port": port, "subscription_queue": 256, "log_level": "warning"},
                "database": {"url": f"sqlite+aiosqlite:///{tmp}/bench.db"},
                "storage": {"data_dir": f"{tmp}/data"},
                "alerts": {"enabled": False},
                "camera_groups": [{"name": "bench"}],
                "cameras": [
                    {"id": f"cam-{k:03d}", "url": f"rtsp://10.0.0.1/{k}", "group": "bench", "enabled": False}
                    for k in range(cameras)
                ],
            },
            environ={},
        )
        app = create_app(settings, with_ray=False)
        server = app.state.server
        probe = ServerProbe(app)
        gc.callbacks.append(probe.on_gc)
        watch = asyncio.create_task(probe.watch_loop())
        config = uvicorn.Config(
            probe,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
            backlog=4096,
        )
        uv = uvicorn.Server(config)
        serve = asyncio.create_task(uv.serve())
        try:
            while not uv.started:
                if serve.done():
                    serve.result()
                await asyncio.sleep(0.05)
            tokens = []
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                for u in range(USERS):
                    await create_user(server.db, f"bench-{u}", PASSWORD, "operator", ["bench"], actor="bench")
                    r = await http.post(
                        "/graphql",
                        json={
                            "query": f'mutation {{ login(username: "bench-{u}", password: "{PASSWORD}") {{ ... on LoginSuccess {{ token }} }} }}'
                        },
                    )
                    tokens.append(r.json()["data"]["login"]["token"])
            base = f"http://127.0.0.1:{port}"
            # one subscriber per camera: a stall of the shared machine delays 1 delivery, not 10
            baseline = await _phase(server, probe, base, tokens, 10, args, 1, per_camera=1)
            print(json.dumps({"phase": "baseline", **baseline}), flush=True)
            await asyncio.sleep(1.0)
            result = await _phase(server, probe, base, tokens, target, args, args.client_procs)
            print(json.dumps({"phase": "target, server as shipped", **result}), flush=True)
            if not args.no_gc_comparison:
                await asyncio.sleep(1.0)
                comparison = await _phase(
                    server, probe, base, tokens, target, args, args.client_procs, args.compare_gc_threshold
                )
                print(
                    json.dumps({"phase": "target, comparison: other server GC thresholds", **comparison}),
                    flush=True,
                )
        finally:
            uv.should_exit = True
            await serve
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            gc.callbacks.remove(probe.on_gc)
    goal = result["p95_ms"] <= 100 and result["dropped"] == 0 and result["closed_subscribers"] == 0
    keys = ("subscribers", "delivered_per_s", "p50_ms", "p95_ms", "p99_ms", "dropped", "closed_subscribers")
    detail = (
        "server_send_p95_ms",
        "server_gc_full_collections",
        "server_gc_max_ms",
        "server_loop_lag_max_ms",
        "server_cpu_s_per_s",
        "machine_load_1m",
    )
    print(
        json.dumps(
            {
                **{k: result[k] for k in keys},
                "events_per_s_per_subscriber": args.rate,
                "seconds": args.seconds,
                **{k: result[k] for k in detail},
                "client_cpu_s_per_s": result["client_cpu_s_per_s"],
                "cpus": os.cpu_count(),
                "goal_p95_le_100ms_nothing_dropped": goal,
                "baseline": {k: baseline[k] for k in keys},
                "p50_ratio_vs_baseline": round(result["p50_ms"] / baseline["p50_ms"], 2)
                if baseline["p50_ms"]
                else None,
                "p95_ratio_vs_baseline": round(result["p95_ms"] / baseline["p95_ms"], 2)
                if baseline["p95_ms"]
                else None,
                "server_gc_threshold": result["server_gc_threshold"],
                "gc_comparison": None
                if comparison is None
                else {
                    "server_gc_threshold": comparison["server_gc_threshold"],
                    **{k: comparison[k] for k in keys + detail},
                },
            }
        )
    )


def _gc_threshold(value: str) -> tuple[int, ...]:
    parts = tuple(int(x) for x in value.split(","))
    if len(parts) != 3 or parts[0] < 1:
        raise argparse.ArgumentTypeError("three integers, e.g. 50000,20,100")
    return parts


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, tokens, cameras, first, n = sys.argv[2:7]
        with contextlib.suppress(KeyboardInterrupt):
            _run(_client_main(url, json.loads(tokens), json.loads(cameras), int(first), int(n)))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 subscribers, 8 s measured per phase")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2.0, help="events per second per subscriber")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per phase")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes for the target phases")
    parser.add_argument(
        "--compare-gc-threshold",
        type=_gc_threshold,
        default=PYTHON_DEFAULT_GC,
        help="server gc.set_threshold for the comparison phase (default: Python's %(default)s)",
    )
    parser.add_argument(
        "--no-gc-comparison", action="store_true", help="skip the phase with other GC thresholds"
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds = 8.0
    _run(_main(args))


def _run(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    uvloop.run(coro)  # as `smartcity serve` gets it through uvicorn's loop="auto"


if __name__ == "__main__":
    main()
