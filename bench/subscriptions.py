"""Benchmark: live GraphQL subscriptions, event published on the bus -> received by the client.

One server process (the real app without Ray: uvicorn + strawberry + graphql-transport-ws,
SQLite, the writer persisting every event) and client processes using the `websockets`
library. Each subscriber authenticates in `connection_init` with a bearer token and subscribes
to the rule events of one camera; every camera gets events at `--rate` per second (2 by
default), spread evenly over time, so every subscriber receives `--rate` events per second.
Each event carries the wall-clock time of its publication on the bus; a client takes the
difference when it has parsed the message (same machine, same clock).

Measured in the same run: a baseline of 10 subscribers, then the target (1,000 by default).
"dropped" counts the events that a subscriber should have received in the measured window
but did not (closed as too slow, or lost), plus subscriptions the bus closed.

    python bench/subscriptions.py --quick          # 10 then 1,000 subscribers, 8 s each
    python bench/subscriptions.py --subscribers 2000 --seconds 30

The last line printed is a JSON object (the target run, with the baseline inside).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
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


# ---- client process ----------------------------------------------------------------------------
async def _client_main(url: str, tokens: list[str], cameras: list[str], first: int, n: int) -> None:
    """Open subscribers [first, first + n), wait for `start t0 t1` and `stop` on stdin, print results."""
    import websockets

    latencies: list[float] = []
    received: dict[int, int] = {}
    closed: list[str] = []
    window = [float("inf"), float("-inf")]
    loop = asyncio.get_running_loop()

    async def one(i: int, ready: asyncio.Event) -> None:
        cam = cameras[i % len(cameras)]
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"], compression=None, max_queue=None) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {tokens[i % len(tokens)]}"}}))
            ack = json.loads(await ws.recv())
            if ack["type"] != "connection_ack":
                raise RuntimeError(f"subscriber {i}: {ack}")
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": {"cam": cam}}}))
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
        await asyncio.wait([asyncio.ensure_future(ready.wait()), tasks[-1]], return_when=asyncio.FIRST_COMPLETED)
        if tasks[-1].done():
            tasks[-1].result()
    print("ready", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().split()
        if not line or line[0] == "stop":
            break
        if line[0] == "start":
            window[0], window[1] = float(line[1]), float(line[2])
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"latencies": latencies, "received": received, "closed": closed}), flush=True)


# ---- server side -------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def _phase(
    server: Any, base: str, tokens: list[str], subscribers: int, rate: float, seconds: float, procs: int
) -> dict[str, Any]:
    from smartcity.core.events import RuleEvent

    cameras = [f"cam-{k:03d}" for k in range(max(1, subscribers // SUBSCRIBERS_PER_CAMERA))]
    url = base.replace("http", "ws") + "/graphql"
    procs = max(1, min(procs, subscribers))
    shares = [subscribers // procs + (1 if k < subscribers % procs else 0) for k in range(procs)]
    children: list[asyncio.subprocess.Process] = []
    first = 0
    closed_before = server.bus.closed_by_overflow
    try:
        for share in shares:
            children.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--client", url, json.dumps(tokens), json.dumps(cameras), str(first), str(share),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 28,
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

        warmup = 2.0
        interval = 1.0 / (rate * len(cameras))
        published: dict[str, int] = dict.fromkeys(cameras, 0)
        t_start = time.time()
        t0, t1 = t_start + warmup, t_start + warmup + seconds
        for child in children:
            assert child.stdin is not None
            child.stdin.write(f"start {t0} {t1}\n".encode())
            await child.stdin.drain()
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
            await server.bus.publish(
                RuleEvent(camera_id=cam, t=now, rule_id="bench", rule_type="line_crossing", kind="crossing", payload={"pub": time.time()})
            )
            if t0 <= now:
                published[cam] += 1
            i += 1
        cpu = time.process_time() - cpu0
        await asyncio.sleep(1.5)  # let the last events arrive
        results = []
        for child in children:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.write(b"stop\n")
            await child.stdin.drain()
            results.append(json.loads((await asyncio.wait_for(child.stdout.readline(), 60)).decode()))
            await child.wait()
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    latencies = [x for r in results for x in r["latencies"]]
    expected = sum(published[cameras[i % len(cameras)]] for i in range(subscribers))
    got = sum(int(v) for r in results for v in r["received"].values())
    closed = [c for r in results for c in r["closed"]]
    return {
        "subscribers": subscribers,
        "cameras": len(cameras),
        "events_per_s_per_subscriber": rate,
        "seconds": seconds,
        "published": sum(published.values()),
        "expected": expected,
        "delivered": got,
        "delivered_per_s": round(got / seconds, 1),
        "p50_ms": round(_pct(latencies, 0.50) * 1000, 2),
        "p95_ms": round(_pct(latencies, 0.95) * 1000, 2),
        "p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "dropped": max(0, expected - got),
        "closed_subscribers": len(closed) + (server.bus.closed_by_overflow - closed_before),
        "server_cpu_s_per_s": round(cpu / (seconds + warmup), 3),
        "client_processes": len(children),
    }


async def _main(args: argparse.Namespace) -> None:
    import uvicorn

    from smartcity.app import create_app
    from smartcity.core.config import load_settings
    from smartcity.storage.users import create_user

    target = args.subscribers
    cameras = max(1, target // SUBSCRIBERS_PER_CAMERA)
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
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", ws="websockets-sansio", backlog=4096
        )
        uv = uvicorn.Server(config)
        serve = asyncio.create_task(uv.serve())
        try:
            while not uv.started:
                if serve.done():
                    serve.result()
                await asyncio.sleep(0.05)
            import httpx

            tokens = []
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                for u in range(USERS):
                    await create_user(server.db, f"bench-{u}", PASSWORD, "operator", ["bench"], actor="bench")
                    r = await http.post(
                        "/graphql",
                        json={"query": f'mutation {{ login(username: "bench-{u}", password: "{PASSWORD}") {{ ... on LoginSuccess {{ token }} }} }}'},
                    )
                    tokens.append(r.json()["data"]["login"]["token"])
            base = f"http://127.0.0.1:{port}"
            baseline = await _phase(server, base, tokens, 10, args.rate, args.seconds, 1)
            print(json.dumps({"phase": "baseline", **baseline}), flush=True)
            await asyncio.sleep(1.0)
            result = await _phase(server, base, tokens, target, args.rate, args.seconds, args.client_procs)
            print(json.dumps({"phase": "target", **result}), flush=True)
        finally:
            uv.should_exit = True
            await serve
    goal = result["p95_ms"] <= 100 and result["dropped"] == 0 and result["closed_subscribers"] == 0
    print(
        json.dumps(
            {
                **{k: result[k] for k in ("subscribers", "delivered_per_s", "p50_ms", "p95_ms", "p99_ms", "dropped")},
                "closed_subscribers": result["closed_subscribers"],
                "events_per_s_per_subscriber": args.rate,
                "seconds": args.seconds,
                "server_cpu_s_per_s": result["server_cpu_s_per_s"],
                "cpus": os.cpu_count(),
                "goal_p95_le_100ms_nothing_dropped": goal,
                "baseline": {k: baseline[k] for k in ("subscribers", "delivered_per_s", "p50_ms", "p95_ms", "dropped")},
                "p95_ratio_vs_baseline": round(result["p95_ms"] / baseline["p95_ms"], 2) if baseline["p95_ms"] else None,
            }
        )
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, tokens, cameras, first, n = sys.argv[2:7]
        with contextlib.suppress(KeyboardInterrupt):
            _run(_client_main(url, json.loads(tokens), json.loads(cameras), int(first), int(n)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 subscribers, 8 s measured per phase")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2.0, help="events per second per subscriber")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per phase")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes for the target phase")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 8.0
    _run(_main(args))


def _run(coro: Any) -> None:
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


if __name__ == "__main__":
    main()
