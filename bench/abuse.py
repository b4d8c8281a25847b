"""Benchmark: an attacker's replay of issue 11 against a real `smartcity serve` on loopback.

Starts the server as a subprocess (temp data dir, SQLite, a free loopback port, two camera
groups `north` and `south` with demo:// cameras, an admin, a scoped operator per group, a
viewer, and users to attack), then replays, bounded in count and time:

  images     (1)  snapshot/evidence URLs of a user keep working after the user is disabled,
                  changes password (tokens revoked) or moves to another group; a picture URL's
                  token used on another picture or as an API token
  polygon    (2)  createRule with a 2,000-10,000 point zone
  sdp        (3)  startLiveView with a ~600 KiB offer (thousands of loopback candidates)
  login      (6)  40 concurrent wrong passwords; an attacker locking a victim out from another
                  client; X-Forwarded-For spoofing; thousands of huge user names
  db         (8)  120 concurrent mutations on SQLite
  malformed  (12) non-ASCII bearer tokens, JSON and GraphQL nested 2,000 deep
  body       (13) a 20 MB unauthenticated POST (streamed, with and without Content-Length),
                  a 4 MiB first WebSocket message
  nonfinite  (14) `until: Infinity` / NaN in rules, then `rules` read back as strict JSON

Two probes run in threads for the whole run: GET /healthz and a graphql-transport-ws ping/pong
every 25 ms. A pong is answered by the event loop alone, so its latency is the loop stall;
/healthz also waits for the database (and its pool), so it is reported apart.
`max_loop_stall_ms` = the largest ws ping latency while an attack runs (the /healthz one when
the ws probe could not run). `baseline` = the same probes with no attack, in the same run.
Client addresses 127.0.0.2-127.0.0.9 stand for distinct clients (all loopback); 127.0.0.1, the
peer that uvicorn believes by default, sends the spoofed X-Forwarded-For headers.

    python bench/abuse.py --quick     # < 3 min
    python bench/abuse.py             # more repetitions and sizes
    python bench/abuse.py --only images,login
The last line printed is a JSON object; `goals_failed` lists the goals not met (no 5xx, no
picture after revocation, no picture-token misuse, the victim not locked out, no "database is
locked" and no internal error masked behind an error id, no invalid JSON, max_loop_stall_ms <= 250).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import psutil
from websockets.sync.client import connect as ws_connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from testkit import free_port, session_processes  # type: ignore[import-not-found]  # noqa: E402  (tests/, on sys.path above)

from smartcity.core.aio import wait_for  # noqa: E402
from smartcity.sources import generate_test_clip  # noqa: E402

ATTACKS = ("images", "polygon", "sdp", "login", "db", "malformed", "body", "nonfinite")
PROBE_EVERY_S = 0.025
TIMEOUT_S = 30.0
LOGIN = (
    "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { __typename "
    "... on LoginSuccess { token } ... on LoginFailed { message retryAfterS } } }"
)
CREATE_RULE = (
    "mutation($id: ID, $input: RuleInput!) { createRule(id: $id, input: $input) { __typename "
    "... on Rule { id } ... on ValidationError { message errors { field message } } "
    "... on NotAuthorized { message } ... on NotFoundError { message } } }"
)
DELETE_RULE = "mutation($id: ID!) { deleteRule(id: $id) { __typename } }"
UPDATE_USER = (
    "mutation($u: String!, $in: UserUpdateInput!) { updateUser(username: $u, input: $in) { __typename "
    "... on ValidationError { message } } }"
)


def strict_json(text: str | bytes) -> Any:
    """json.loads that refuses NaN/Infinity (what browsers and most clients do)."""

    def refuse(const: str) -> Any:
        raise ValueError(f"non-standard JSON constant {const}")

    return json.loads(text, parse_constant=refuse)


# -- probes -------------------------------------------------------------------------------


@dataclass
class Probe:
    """A thread that measures one request kind every PROBE_EVERY_S: (sent, answered, ok)."""

    name: str
    samples: list[tuple[float, float, bool]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def window(self, a: float, b: float) -> list[float]:
        """Latencies (ms) of the samples whose round trip overlaps [a, b]."""
        return [(t1 - t0) * 1000 for t0, t1, _ in self.samples if t0 <= b and t1 >= a]

    def stats(self, a: float, b: float) -> dict[str, Any]:
        lat = sorted(self.window(a, b))
        if not lat:
            return {"n": 0}
        return {"n": len(lat), "p50_ms": round(lat[len(lat) // 2], 1), "max_ms": round(lat[-1], 1)}

    def measure(self, once: Callable[[], bool]) -> None:
        """One round trip; a failed one (a timeout) is a sample as long as it lasted, then raises."""
        t0 = time.monotonic()
        try:
            ok = once()
        except Exception:
            self.samples.append((t0, time.monotonic(), False))
            raise
        t1 = time.monotonic()
        self.samples.append((t0, t1, ok))
        self.stop.wait(max(0.0, PROBE_EVERY_S - (t1 - t0)))

    def run_in_thread(self, body: Any) -> None:
        def loop() -> None:
            while not self.stop.is_set():
                try:
                    body(self)
                except Exception as exc:  # reconnect and go on: the probe must outlive attacks
                    self.errors[type(exc).__name__] += 1
                    self.stop.wait(0.2)

        self.thread = threading.Thread(target=loop, name=f"probe-{self.name}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=TIMEOUT_S)


def healthz_probe(host: str, port: int, statuses: Counter[int]) -> Any:
    def body(p: Probe) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)

        def once() -> bool:
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            statuses[r.status] += 1
            return r.status < 500

        try:
            while not p.stop.is_set():
                p.measure(once)
        finally:
            conn.close()

    return body


def ws_ping_probe(url: str, token: str) -> Any:
    def body(p: Probe) -> None:
        with ws_connect(url, subprotocols=["graphql-transport-ws"], open_timeout=TIMEOUT_S, ping_interval=None) as ws:  # type: ignore[list-item]
            ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
            if json.loads(ws.recv(timeout=TIMEOUT_S))["type"] != "connection_ack":
                raise RuntimeError("ws probe not acknowledged")

            def once() -> bool:
                ws.send(json.dumps({"type": "ping"}))
                while True:
                    msg = json.loads(ws.recv(timeout=TIMEOUT_S))
                    if msg["type"] == "pong":
                        return True
                    if msg["type"] == "ping":
                        ws.send(json.dumps({"type": "pong"}))

            while not p.stop.is_set():
                p.measure(once)

    return body


# -- the server ---------------------------------------------------------------------------


@dataclass
class Served:
    base: str
    port: int
    proc: subprocess.Popen[bytes]
    tmp: Path
    admin_password: str
    evidence: dict[str, str]  # camera id -> event id with an evidence file


def write_config(tmp: Path, port: int) -> Path:
    cfg = tmp / "smartcity.yaml"
    cfg.write_text(
        f"""
server: {{port: {port}, log_level: warning}}
database: {{url: "sqlite+aiosqlite:///{tmp}/db.sqlite"}}
storage: {{data_dir: "{tmp}/data"}}
ray: {{num_cpus: 2, object_store_mb: 100}}
analysis: {{inference_cpus: 0.5}}
camera_groups: [{{name: north}}, {{name: south}}]
cameras:
  - {{id: north-1, name: "North gate", url: "demo://vtest", group: north, analysis_fps: 1}}
  - {{id: south-1, name: "South gate", url: "demo://vtest", group: south, analysis_fps: 1}}
"""
    )
    return cfg


def seed_evidence(tmp: Path) -> dict[str, str]:
    """One rule event with an evidence picture per camera, written before the server starts
    (so that evidence URLs exist without waiting for a rule to fire)."""
    from PIL import Image

    evidence_dir = tmp / "data" / "evidence"
    evidence_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    with sqlite3.connect(tmp / "db.sqlite") as db:
        for cam in ("north-1", "south-1"):
            event_id = f"abuse-{cam}-{secrets.token_hex(4)}"
            path = evidence_dir / f"{event_id}.jpg"
            Image.new("RGB", (64, 48), (90, 120, 150)).save(path, "JPEG")
            now = time.time()
            db.execute(
                "INSERT INTO events (event_id, type, camera_id, t, rule_id, rule_type, kind, object_class, "
                "severity, payload, evidence_path, created_at) VALUES (?, 'rule_event', ?, ?, 'seeded', 'dwell', "
                "'dwell', 'person', 'low', '{}', ?, ?)",
                (event_id, cam, now, str(path), now),
            )
            out[cam] = event_id
    return out


@contextmanager
def serve(tmp: Path) -> Iterator[Served]:
    port = free_port()
    cfg = write_config(tmp, port)
    clip = generate_test_clip(tmp / "clip.mp4", width=320, height=240, fps=10, seconds=4)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", "SMARTCITY_DEMO_VIDEO": str(clip),
           "SMARTCITY_MODEL_DIR": str(ROOT / "models")}
    env.pop("SMARTCITY_CONFIG", None)
    password = secrets.token_urlsafe(18)
    for args, stdin in (
        (["migrate", "--config", str(cfg)], ""),
        (["users", "create", "chief", "--role", "admin", "--password-stdin", "--config", str(cfg)], password + "\n"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "smartcity.cli", *args], cwd=tmp, env=env, input=stdin.encode(), capture_output=True, timeout=180
        )
        if done.returncode != 0:
            raise RuntimeError(f"smartcity {args[0]} failed: {done.stderr.decode()[-2000:]}")
    evidence = seed_evidence(tmp)
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartcity.cli", "serve", "--config", str(cfg)],
        cwd=tmp, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    try:
        yield Served(f"http://127.0.0.1:{port}", port, proc, tmp, password, evidence)
    finally:  # normally stop_server() has stopped it; whatever is left of its session is killed
        for p in session_processes(proc.pid):
            p.kill()
        proc.wait()
        log.close()


def stop_server(s: Served) -> dict[str, Any]:
    """SIGTERM, wait, then count what is left of the server's session."""
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    try:
        rc: int | None = s.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        rc = None
    stop_s = time.monotonic() - t0
    deadline = time.monotonic() + 10
    while session_processes(s.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p.name() for p in session_processes(s.proc.pid)]
    return {"rc": rc, "stop_s": round(stop_s, 1), "processes_left": left}


# -- the attacker's client ---------------------------------------------------------------


@dataclass
class Attacker:
    base: str
    statuses: Counter[int] = field(default_factory=Counter)
    requests: int = 0
    server_errors: int = 0
    transport_errors: Counter[str] = field(default_factory=Counter)
    invalid_json: int = 0
    db_locked: int = 0
    internal_errors: int = 0  # GraphQL errors masked behind an error id (what a 500 became)
    five_xx: list[str] = field(default_factory=list)
    windows: list[tuple[str, float, float]] = field(default_factory=list)
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def client(self, source: str = "127.0.0.1") -> httpx.AsyncClient:
        """One client per source address: the server sees distinct attackers."""
        if source not in self.clients:
            transport = httpx.AsyncHTTPTransport(local_address=source)
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
            self.clients[source] = httpx.AsyncClient(
                base_url=self.base, transport=transport, timeout=TIMEOUT_S, limits=limits
            )
        return self.clients[source]

    async def close(self) -> None:
        for c in self.clients.values():
            await c.aclose()

    def note(self, what: str, r: httpx.Response) -> None:
        self.requests += 1
        self.statuses[r.status_code] += 1
        # a 503 of /healthz that says what is unhealthy is an answer, not a failure
        health = r.url.path == "/healthz" and r.status_code == 503 and b'"status"' in r.content
        if r.status_code >= 500 and not health:
            self.server_errors += 1
            if len(self.five_xx) < 20:
                self.five_xx.append(f"{what}: {r.status_code} {r.text[:160]!r}")
        if b"database is locked" in r.content:
            self.db_locked += 1

    async def send(self, what: str, method: str, url: str, *, source: str = "127.0.0.1", **kw: Any) -> httpx.Response | None:
        try:
            r = await self.client(source).request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.requests += 1
            self.transport_errors[f"{what} from {source}: {type(exc).__name__} {exc}"[:120]] += 1
            return None
        self.note(what, r)
        return r

    async def gql(
        self, what: str, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None,
        source: str = "127.0.0.1", headers: dict[str, str] | None = None, raw: bytes | None = None,
    ) -> dict[str, Any]:
        """POST /graphql; the parsed body (strict JSON), or {} with `_status`/`_invalid_json`."""
        h = {"content-type": "application/json", **(headers or {})}
        if token:
            h["authorization"] = f"Bearer {token}"
        content = raw if raw is not None else json.dumps({"query": query, "variables": variables or {}}).encode()
        r = await self.send(what, "POST", "/graphql", source=source, content=content, headers=h)
        if r is None:
            return {"_status": None}
        try:
            body = strict_json(r.content)
        except ValueError:
            if "json" in r.headers.get("content-type", ""):
                self.invalid_json += 1
            return {"_status": r.status_code, "_invalid_json": True, "_text": r.text[:200]}
        if not isinstance(body, dict):
            return {"_status": r.status_code}
        if any(isinstance(e, dict) and "error_id" in (e.get("extensions") or {}) for e in body.get("errors") or []):
            self.internal_errors += 1
        body["_status"] = r.status_code
        return body

    @asynccontextmanager
    async def window(self, name: str) -> AsyncIterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.windows.append((name, t0, time.monotonic()))


def field_of(body: dict[str, Any], name: str) -> Any:
    data = body.get("data") or {}
    return data.get(name) if isinstance(data, dict) else None


def errors_of(body: dict[str, Any]) -> str:
    errs = body.get("errors") or []
    return "; ".join(str(e.get("message", e)) for e in errs)[:200] if errs else ""


async def login(a: Attacker, user: str, password: str, *, source: str = "127.0.0.1", headers: dict[str, str] | None = None) -> dict[str, Any]:
    """{'token': ...} on success, else {'limited': bool, 'message': ...}."""
    body = await a.gql("login", LOGIN, {"u": user, "p": password}, source=source, headers=headers)
    res = field_of(body, "login") or {}
    if res.get("__typename") == "LoginSuccess":
        return {"token": res["token"]}
    msg = str(res.get("message") or errors_of(body) or body.get("_status"))
    limited = float(res.get("retryAfterS") or 0) > 0 or "too many" in msg.lower()
    return {"limited": limited, "message": msg}


async def create_users(a: Attacker, admin: str) -> dict[str, str]:
    """name -> password, created through the API (createUser) as the admin."""
    plan = {
        "op-north": ("operator", ["north"]), "op-south": ("operator", ["south"]), "viewer": ("viewer", []),
        "img-disabled": ("operator", ["north"]), "img-password": ("operator", ["north"]),
        "img-moved": ("operator", ["north"]), "victim": ("operator", ["north"]), "target": ("operator", ["north"]),
    }
    q = "mutation($in: UserInput!) { createUser(input: $in) { __typename ... on ValidationError { message } } }"
    out = {}
    for name, (role, groups) in plan.items():
        pw = secrets.token_urlsafe(18)
        body = await a.gql("setup", q, {"in": {"username": name, "password": pw, "role": role, "groups": groups}}, token=admin)
        if (field_of(body, "createUser") or {}).get("__typename") != "User":
            raise RuntimeError(f"createUser {name}: {body}")
        out[name] = pw
    return out


# -- attacks ------------------------------------------------------------------------------


async def image_urls(a: Attacker, token: str, camera: str) -> list[str]:
    """The snapshot URL of `camera` and the evidence URL of one of its events, as the API gives them."""
    cams = await a.gql("images", "{ cameras { id snapshotUrl } }", token=token)
    urls = [c["snapshotUrl"] for c in field_of(cams, "cameras") or [] if c["id"] == camera]
    ev = await a.gql("images", "{ events(first: 20) { edges { node { cameraId evidenceUrl } } } }", token=token)
    edges = (field_of(ev, "events") or {}).get("edges", [])
    urls += [e["node"]["evidenceUrl"] for e in edges if e["node"]["cameraId"] == camera and e["node"]["evidenceUrl"]][:1]
    return urls


async def fetch_image(a: Attacker, url: str, token: str) -> dict[str, int | None]:
    """Status of the URL as given, with the bearer header, and with the legacy ?token= query."""
    bare = urlsplit(url).path
    out = {}
    for how, target, headers in (
        ("as_given", urljoin(a.base, url), {}),
        ("bearer", urljoin(a.base, url), {"authorization": f"Bearer {token}"}),
        ("query", f"{bare}?token={token}", {}),
    ):
        r = await a.send("images", "GET", target, headers=headers)
        out[how] = None if r is None else r.status_code
    return out


async def misuse_picture_token(a: Attacker, admin: str) -> dict[str, Any]:
    """A token that a picture URL carries (if any), used on another picture of a camera its user
    sees, and as an API token: each success is a misuse."""
    urls = await image_urls(a, admin, "north-1")
    query = urlsplit(urls[0]).query if urls else ""
    tokens = [v for k, _, v in (kv.partition("=") for kv in query.split("&")) if k == "token"]
    if not tokens:
        return {"url_token": False}
    t = tokens[0]
    other = [
        await a.send("images", "GET", f"/cameras/south-1/snapshot.jpg?token={t}"),
        await a.send("images", "GET", "/cameras/south-1/snapshot.jpg", headers={"authorization": f"Bearer {t}"}),
    ]
    me = await a.gql("images", "{ me { username } }", token=t)
    as_api = bool((field_of(me, "me") or {}).get("username"))
    other_ok = sum(1 for r in other if r is not None and r.status_code == 200)
    return {"url_token": True, "other_picture_served": other_ok, "accepted_as_api_token": as_api,
            "misuses": other_ok + int(as_api)}


async def attack_images(a: Attacker, admin: str, pw: dict[str, str]) -> dict[str, Any]:
    """Item 1: image URLs of a user after it is disabled, changes password or changes group."""
    changes: dict[str, dict[str, Any]] = {
        "img-disabled": {"disabled": True},
        "img-password": {"password": secrets.token_urlsafe(18)},
        "img-moved": {"groups": ["south"]},
    }
    out: dict[str, Any] = {"revoked_image_access": 0, "cases": {}}
    anonymous = await a.send("images", "GET", "/cameras/north-1/snapshot.jpg")
    out["anonymous_snapshot_status"] = None if anonymous is None else anonymous.status_code
    out["picture_token_misuse"] = await misuse_picture_token(a, admin)
    for user, change in changes.items():
        token = (await login(a, user, pw[user])).get("token")
        if not token:
            out["cases"][user] = {"error": "login failed"}
            continue
        urls = await image_urls(a, token, "north-1")
        before = [await fetch_image(a, u, token) for u in urls]
        body = await a.gql("images", UPDATE_USER, {"u": user, "in": change}, token=admin)
        changed = (field_of(body, "updateUser") or {}).get("__typename")
        after = [await fetch_image(a, u, token) for u in urls]
        leaks = sum(1 for f in after for st in f.values() if st == 200)
        out["revoked_image_access"] += leaks
        out["cases"][user] = {
            "change": list(change), "update": changed, "urls": len(urls),
            "served_before": sum(1 for f in before if 200 in f.values()), "leaks_after": leaks,
            "after": after,
        }
    return out


def circle(n: int) -> list[list[float]]:
    return [[round(0.5 + 0.4 * math.cos(2 * math.pi * i / n), 6), round(0.5 + 0.4 * math.sin(2 * math.pi * i / n), 6)] for i in range(n)]


async def attack_polygon(a: Attacker, token: str, sizes: list[int]) -> dict[str, Any]:
    """Item 2: createRule with a zone of thousands of points."""
    out = {}
    for n in sizes:
        rid = f"abuse-poly-{n}"
        t0 = time.monotonic()
        body = await a.gql(
            "polygon", CREATE_RULE,
            {"id": rid, "input": {"cameraId": "north-1", "type": "dwell", "params": {"zone": circle(n), "threshold_s": 30}}},
            token=token,
        )
        res = field_of(body, "createRule") or {}
        out[str(n)] = {
            "answer": res.get("__typename") or errors_of(body) or body.get("_status"),
            "message": " ".join([res.get("message") or ""] + [e["message"] for e in res.get("errors") or []][:1])[:120],
            "elapsed_ms": round((time.monotonic() - t0) * 1000),
        }
        if res.get("__typename") == "Rule":
            await a.gql("polygon", DELETE_RULE, {"id": rid}, token=token)
    return out


def big_offer(candidates: int) -> str:
    """A plausible browser offer (recvonly H.264/VP8 video) with `candidates` loopback host candidates."""
    fp = ":".join(f"{b:02X}" for b in secrets.token_bytes(32))
    lines = [
        "v=0", f"o=- {secrets.randbelow(10**12)} 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
        "a=msid-semantic: WMS", "m=video 9 UDP/TLS/RTP/SAVPF 96 102", "c=IN IP4 127.0.0.1",
        "a=rtcp:9 IN IP4 127.0.0.1", f"a=ice-ufrag:{secrets.token_hex(4)}", f"a=ice-pwd:{secrets.token_hex(12)}",
        "a=ice-options:trickle", f"a=fingerprint:sha-256 {fp}", "a=setup:actpass", "a=mid:0", "a=recvonly",
        "a=rtcp-mux", "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack", "a=rtcp-fb:96 nack pli",
        "a=rtpmap:102 H264/90000", "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    ]
    lines += [f"a=candidate:{i} 1 udp {2122260223 - i} 127.0.0.1 {20000 + i % 40000} typ host generation 0" for i in range(candidates)]
    return "\r\n".join(lines) + "\r\n"


async def attack_sdp(a: Attacker, token: str, repeats: int) -> dict[str, Any]:
    """Item 3: a ~600 KiB offer."""
    q = (
        "mutation($c: ID!, $sdp: String!) { startLiveView(cameraId: $c, offerSdp: $sdp) { __typename "
        "... on ValidationError { message } ... on NotFoundError { message } } }"
    )
    out: dict[str, Any] = {"tries": []}
    for _ in range(repeats):
        sdp = big_offer(9000)
        t0 = time.monotonic()
        body = await a.gql("sdp", q, {"c": "north-1", "sdp": sdp}, token=token)
        res = field_of(body, "startLiveView") or {}
        out["offer_kib"] = len(sdp) // 1024
        out["tries"].append({
            "answer": res.get("__typename") or errors_of(body) or body.get("_status"),
            "message": (res.get("message") or "")[:120], "elapsed_ms": round((time.monotonic() - t0) * 1000),
        })
    return out


def server_rss(pid: int) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


async def attack_login(a: Attacker, pw: dict[str, str], pid: int, huge_names: int) -> dict[str, Any]:
    """Item 6: the login limiter under concurrency, lockout, X-Forwarded-For and huge names."""
    out: dict[str, Any] = {}
    # 40 concurrent wrong passwords for one user, from one client: how many were checked?
    got = await asyncio.gather(*(login(a, "target", f"wrong-{i}-password", source="127.0.0.2") for i in range(40)))
    out["concurrent_wrong"] = {"sent": 40, "checked": sum(1 for g in got if not g.get("limited") and "token" not in g)}
    # an attacker (127.0.0.3) fails for the victim; the victim then logs in from 127.0.0.4
    for i in range(12):
        await login(a, "victim", f"attacker-guess-{i}", source="127.0.0.3")
    mine = await login(a, "victim", pw["victim"], source="127.0.0.4")
    out["victim_locked_out"] = "token" not in mine
    out["victim_answer"] = mine.get("message", "token")
    # huge distinct user names from a few clients: does the server keep them?
    name = "u" * 65536
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        async with sem:
            await login(a, f"{i:06d}{name}", "wrong-password-1", source=f"127.0.0.{7 + i % 3}")

    # three rounds: kept names grow the server in each, while the allocator's high-water mark
    # (buffers of requests in flight) grows in the first one mostly
    t0, per_round, growth = time.monotonic(), huge_names // 3, []
    for r in range(3):
        rss = server_rss(pid)
        await asyncio.gather(*(one(i) for i in range(r * per_round, (r + 1) * per_round)))
        await asyncio.sleep(0.2)
        growth.append(round((server_rss(pid) - rss) / 2**20, 1))
    out["huge_names"] = {"sent": 3 * per_round, "name_kib": 64, "elapsed_s": round(time.monotonic() - t0, 1),
                         "sent_mb_per_round": round(per_round * len(name) / 2**20, 1), "rss_growth_mb": growth,
                         # kept: the later rounds grow the server by a good part of what they sent
                         "kept": min(growth[1:]) >= 0.4 * per_round * len(name) / 2**20}
    # one client, failures for distinct names: spoofed X-Forwarded-For vs none (control). The
    # spoofer is 127.0.0.1, the peer uvicorn believes by default; it runs last, as it may lock
    # that client out of logins
    spoofed = [await login(a, f"nobody-x{i}", "wrong-password-1", source="127.0.0.1",
                           headers={"x-forwarded-for": f"198.51.100.{i}", "x-real-ip": f"198.51.100.{i}"})
               for i in range(30)]
    control = [await login(a, f"nobody-c{i}", "wrong-password-1", source="127.0.0.6") for i in range(30)]
    checked_spoofed = sum(1 for g in spoofed if not g.get("limited"))
    checked_control = sum(1 for g in control if not g.get("limited"))
    out["xff"] = {"checked_spoofed": checked_spoofed, "checked_control": checked_control,
                  "spoofing_helps": checked_spoofed > checked_control}
    return out


async def attack_db(a: Attacker, token: str, n: int) -> dict[str, Any]:
    """Item 8: n concurrent createRule, then n concurrent deleteRule (SQLite writers)."""
    locked0, internal0 = a.db_locked, a.internal_errors
    params = {"line": [[0.1, 0.5], [0.9, 0.5]], "in_direction": "left"}

    async def create(i: int) -> bool:
        body = await a.gql("db", CREATE_RULE, {"id": f"abuse-db-{i}", "input": {"cameraId": "north-1", "type": "line_count", "params": params}}, token=token)
        return (field_of(body, "createRule") or {}).get("__typename") == "Rule"

    async def delete(i: int) -> bool:
        body = await a.gql("db", DELETE_RULE, {"id": f"abuse-db-{i}"}, token=token)
        return (field_of(body, "deleteRule") or {}).get("__typename") == "Deleted"

    t0 = time.monotonic()
    created = await asyncio.gather(*(create(i) for i in range(n)))
    deleted = await asyncio.gather(*(delete(i) for i in range(n)))
    return {"mutations": 2 * n, "created": sum(created), "deleted": sum(deleted),
            "failed": 2 * n - sum(created) - sum(deleted), "db_locked_errors": a.db_locked - locked0,
            "internal_errors": a.internal_errors - internal0,
            "elapsed_s": round(time.monotonic() - t0, 1)}


async def attack_malformed(a: Attacker, token: str, ws_url: str) -> dict[str, Any]:
    """Item 12: non-ASCII bearer tokens, deeply nested JSON and GraphQL."""
    out: dict[str, Any] = {}
    bad_tokens = ["\u00e9t\u00e9", "v1.\u00e9\u00e9.\u00e9\u00e9", f"{token}\u00e9", "v1." + "\u4e2d" * 40 + ".x"]
    statuses: Counter[str] = Counter()
    for t in bad_tokens:
        raw = f"Bearer {t}".encode()  # UTF-8 bytes in the header, as a hostile client sends them
        for what, method, url, content in (
            ("graphql", "POST", "/graphql", json.dumps({"query": "{ me { username } }"}).encode()),
            ("snapshot", "GET", "/cameras/north-1/snapshot.jpg", None),
            ("healthz", "GET", "/healthz", None),
        ):
            r = await a.send("malformed", method, url, content=content,
                             headers=[(b"authorization", raw), (b"content-type", b"application/json")])
            statuses[f"{what}:{None if r is None else r.status_code}"] += 1
    out["non_ascii_bearer"] = dict(statuses)
    ws_answers = []
    for t in bad_tokens:
        ws_answers.append(await asyncio.to_thread(ws_init, ws_url, t))
    out["non_ascii_ws_init"] = ws_answers
    deep = 2000
    raw = b'{"query": "query($v: JSON) { me { username } }", "variables": {"v": ' + b"[" * deep + b"]" * deep + b"}}"
    body = await a.gql("malformed", "", raw=raw, token=token)
    out["json_nested_2000"] = body.get("_status")
    q = "{ me " + "{ username " * deep + "}" * deep + " }"
    body = await a.gql("malformed", q, token=token)
    out["graphql_nested_2000"] = body.get("_status")
    q = "query($v: JSON) { me { username } }"
    raw = json.dumps({"query": q}).encode()[:-1] + b', "variables": {"v": ' + b'{"a":' * deep + b"1" + b"}" * deep + b"}}"
    body = await a.gql("malformed", "", raw=raw, token=token)
    out["json_objects_nested_2000"] = body.get("_status")
    return out


def ws_init(url: str, token: str) -> str:
    """What the server answers a connection_init carrying `token` (close code or message type)."""
    try:
        with ws_connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10, ping_interval=None) as ws:  # type: ignore[list-item]
            ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
            try:
                return str(json.loads(ws.recv(timeout=10))["type"])
            except Exception:
                return f"closed {ws.close_code}"
    except Exception as exc:
        return type(exc).__name__


async def post_big(host: str, port: int, mib: int, chunked: bool) -> dict[str, Any]:
    """POST `mib` MiB to /graphql on a raw connection, reading the answer while sending: a server
    that refuses early answers before the body is through, then closes (httpx would only see
    the reset). Returns the status (None: no answer), the MiB sent and the seconds taken."""
    reader, writer = await asyncio.open_connection(host, port)
    head = f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {mib << 20}\r\n\r\n"
    chunk = b'{"query": "' + b"a" * ((64 << 10) - 11)
    if chunked:
        chunk = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    t0, sent = time.monotonic(), 0

    async def send() -> None:
        nonlocal sent
        writer.write(head.encode())
        for _ in range(mib * 16):
            writer.write(chunk)
            await writer.drain()
            sent += 64 << 10
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    sender = asyncio.ensure_future(send())  # awaited or cancelled below
    status = None
    try:
        line = await wait_for(reader.readline(), TIMEOUT_S)
        if line.startswith(b"HTTP/1.1 "):
            status = int(line.split()[1])
    except (TimeoutError, OSError):
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await sender
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return {"status": status, "mib_sent": round(sent / 2**20, 2), "elapsed_ms": round((time.monotonic() - t0) * 1000)}


def ws_big_message(url: str, mib: int) -> str:
    """An anonymous WebSocket client's first message of `mib` MiB: how the server ends it."""
    try:
        with ws_connect(url, subprotocols=["graphql-transport-ws"], open_timeout=10, ping_interval=None,  # type: ignore[list-item]
                        max_size=None) as ws:
            payload = {"type": "connection_init", "payload": {"pad": "x" * (mib << 20)}}
            ws.send(json.dumps(payload))
            try:
                return f"answered {json.loads(ws.recv(timeout=TIMEOUT_S))['type']}"
            except Exception:
                return f"closed {ws.close_code}"
    except Exception as exc:
        return type(exc).__name__


async def attack_body(a: Attacker, pid: int, mib: int) -> dict[str, Any]:
    """Item 13: a big unauthenticated POST, streamed, with and without Content-Length; and a big
    first WebSocket message."""
    out: dict[str, Any] = {"mib": mib}
    host, port = urlsplit(a.base).hostname or "127.0.0.1", urlsplit(a.base).port or 80
    for how in ("content_length", "chunked"):
        rss0 = server_rss(pid)
        got = await post_big(host, port, mib, how == "chunked")
        a.requests += 1
        a.statuses[got["status"] or 0] += 1
        if (got["status"] or 0) >= 500:
            a.server_errors += 1
        # refused early: answered (413) or cut off well before the whole body was through
        refused = got["status"] == 413 or (got["status"] is None and got["mib_sent"] < mib / 2)
        out[how] = {**got, "refused_early": refused, "rss_growth_mb": round((server_rss(pid) - rss0) / 2**20, 1)}
    rss0 = server_rss(pid)
    ws_url = a.base.replace("http://", "ws://") + "/graphql"
    out["websocket_message"] = {"mib": 4, "answer": await asyncio.to_thread(ws_big_message, ws_url, 4),
                                "rss_growth_mb": round((server_rss(pid) - rss0) / 2**20, 1)}
    a.requests += 1
    return out


async def attack_nonfinite(a: Attacker, token: str) -> dict[str, Any]:
    """Item 14: Infinity/NaN through JSON variables (Python's json accepts them), then read back."""
    variants = {
        "until_inf": {"kind": "until", "until": math.inf},
        "until_nan": {"kind": "until", "until": math.nan},
        "duration_inf": {"kind": "for_duration", "starts_at": time.time(), "duration_s": math.inf},
    }
    accepted = []
    for name, schedule in variants.items():
        rid = f"abuse-nf-{name.replace('_', '-')}"
        variables = {"id": rid, "input": {"cameraId": "north-1", "type": "line_count", "schedule": schedule,
                                         "params": {"line": [[0.1, 0.5], [0.9, 0.5]], "in_direction": "left"}}}
        raw = json.dumps({"query": CREATE_RULE, "variables": variables}).encode()  # allow_nan: Infinity / NaN
        body = await a.gql("nonfinite", "", raw=raw, token=token)
        if (field_of(body, "createRule") or {}).get("__typename") == "Rule":
            accepted.append(rid)
    invalid0 = a.invalid_json
    body = await a.gql("nonfinite", "{ rules { id schedule params } }", token=token)
    out = {"sent": len(variants), "accepted": accepted, "rules_invalid_json": a.invalid_json - invalid0,
           "rules_status": body.get("_status")}
    for rid in accepted:
        await a.gql("nonfinite", DELETE_RULE, {"id": rid}, token=token)
    return out


# -- the run ------------------------------------------------------------------------------


async def wait_ready(a: Attacker, s: Served, admin_pw: str, within_s: float = 240) -> str:
    """The admin's token once the server answers and both cameras have a snapshot."""
    deadline = time.monotonic() + within_s
    token = None
    while time.monotonic() < deadline:
        if s.proc.poll() is not None:
            raise RuntimeError(f"server exited: {(s.tmp / 'server.log').read_text()[-3000:]}")
        try:
            if token is None:
                token = (await login(a, "chief", admin_pw)).get("token")
            if token is not None:
                headers = {"authorization": f"Bearer {token}"}
                rs = [await a.client().get(f"/cameras/{c}/snapshot.jpg", headers=headers) for c in ("north-1", "south-1")]
                if all(r.status_code == 200 for r in rs):
                    return token
        except httpx.HTTPError:
            pass
        await asyncio.sleep(1.0)
    raise RuntimeError(f"server not ready in {within_s:.0f}s: {(s.tmp / 'server.log').read_text()[-3000:]}")


async def settle(a: Attacker, within_s: float = 180.0) -> float:
    """Seconds until /healthz answers again (any status) after an attack, at least 0.5."""
    t0 = time.monotonic()
    await asyncio.sleep(0.5)
    while time.monotonic() - t0 < within_s:
        try:
            await a.client().get("/healthz", timeout=5.0)
            break
        except httpx.HTTPError:
            continue
    return round(time.monotonic() - t0, 1)


async def attack(s: Served, quick: bool, only: set[str], results: dict[str, Any]) -> None:
    host = "127.0.0.1"
    ws_url = f"ws://{host}:{s.port}/graphql"
    a = Attacker(s.base)
    probe_statuses: Counter[int] = Counter()
    probes: list[Probe] = []
    try:
        t_start = time.monotonic()
        admin = await wait_ready(a, s, s.admin_password)
        pw = await create_users(a, admin)
        results["ready_s"] = round(time.monotonic() - t_start, 1)
        viewer = (await login(a, "viewer", pw["viewer"]))["token"]
        op_north = (await login(a, "op-north", pw["op-north"]))["token"]
        probe_token = (await login(a, "op-south", pw["op-south"]))["token"]
        hz, ws = Probe("healthz"), Probe("ws_ping")
        hz.run_in_thread(healthz_probe(host, s.port, probe_statuses))
        ws.run_in_thread(ws_ping_probe(ws_url, probe_token))
        probes = [hz, ws]
        # setup traffic is not attack traffic
        a.requests, a.statuses, a.transport_errors = 0, Counter(), Counter()
        await asyncio.sleep(1.0)
        async with a.window("baseline"):
            await asyncio.sleep(4.0 if quick else 10.0)
        plan = [
            ("images", lambda: attack_images(a, admin, pw)),
            ("polygon", lambda: attack_polygon(a, op_north, [256, 2000, 10000] if quick else [256, 2000, 5000, 10000, 10000])),
            ("sdp", lambda: attack_sdp(a, viewer, 1 if quick else 3)),
            ("login", lambda: attack_login(a, pw, s.proc.pid, 600 if quick else 1200)),
            ("db", lambda: attack_db(a, admin, 120)),
            ("malformed", lambda: attack_malformed(a, op_north, ws_url)),
            ("body", lambda: attack_body(a, s.proc.pid, 20)),
            ("nonfinite", lambda: attack_nonfinite(a, op_north)),
        ]
        attacks: dict[str, Any] = {}
        for name, run in plan:
            if only and name not in only:
                continue
            async with a.window(name):
                try:
                    attacks[name] = await run()
                except Exception as exc:  # report and go on with the other attacks
                    attacks[name] = {"bench_error": f"{type(exc).__name__}: {exc}"[:300]}
                # a stall the attack caused belongs to its window: wait until the server answers again
                attacks[name]["settle_s"] = await settle(a)
        windows = {n: (t0, t1) for n, t0, t1 in a.windows}
        for name, (t0, t1) in windows.items():
            if name in attacks:
                attacks[name]["probe"] = {p.name: p.stats(t0, t1) for p in probes}
                attacks[name]["seconds"] = round(t1 - t0, 1)
                print(f"{name:10s} {t1 - t0:5.1f}s  ws max {attacks[name]['probe']['ws_ping'].get('max_ms')} ms  "
                      f"healthz max {attacks[name]['probe']['healthz'].get('max_ms')} ms  "
                      f"{json.dumps({k: v for k, v in attacks[name].items() if k not in ('probe', 'seconds')})[:400]}",
                      flush=True)
        during = [(t0, t1) for n, t0, t1 in a.windows if n != "baseline"]
        ws_max = max((max(ws.window(t0, t1), default=0.0) for t0, t1 in during), default=0.0)
        hz_max = max((max(hz.window(t0, t1), default=0.0) for t0, t1 in during), default=0.0)
        b0, b1 = windows["baseline"]
        results.update(
            requests=a.requests,
            server_errors=a.server_errors,
            max_loop_stall_ms=round(ws_max if ws.window(b0, b1) else hz_max, 1),
            max_healthz_ms=round(hz_max, 1),
            revoked_image_access=attacks.get("images", {}).get("revoked_image_access"),
            picture_token_misuse=attacks.get("images", {}).get("picture_token_misuse", {}).get("misuses"),
            victim_locked_out=attacks.get("login", {}).get("victim_locked_out"),
            db_locked_errors=a.db_locked,
            internal_errors=a.internal_errors,
            invalid_json_responses=a.invalid_json,
            baseline={p.name: p.stats(b0, b1) for p in probes},
            statuses={str(k): v for k, v in sorted(a.statuses.items())},
            transport_errors=dict(a.transport_errors),
            five_xx=a.five_xx,
            probe={"healthz_statuses": {str(k): v for k, v in probe_statuses.items()},
                   "errors": {p.name: dict(p.errors) for p in probes}},
            attacks=attacks,
        )
    finally:
        for p in probes:
            p.close()
        await a.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (< 3 min)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (server log) and print its path")
    ap.add_argument("--only", default="", help=f"comma-separated attacks to run (default all: {', '.join(ATTACKS)})")
    args = ap.parse_args()
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    if only - set(ATTACKS):
        ap.error(f"unknown attacks {sorted(only - set(ATTACKS))}: choose among {', '.join(ATTACKS)}")
    t0 = time.monotonic()
    results: dict[str, Any] = {"bench": "abuse", "quick": args.quick}
    tmp = Path(tempfile.mkdtemp(prefix="smartcity-abuse-"))
    try:
        with serve(tmp) as s:
            try:
                asyncio.run(attack(s, args.quick, only, results))
            finally:
                results["stop"] = stop_server(s)
        log = (tmp / "server.log").read_text(errors="replace")
        results["server_log_tracebacks"] = log.count("Traceback")
    except Exception as exc:  # the JSON line still says what happened
        results["error"] = f"{type(exc).__name__}: {exc}"[-2000:]
    finally:
        if args.keep:
            print(f"temp dir kept: {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    results["elapsed_s"] = round(time.monotonic() - t0, 1)
    results["goals_failed"] = goals_failed(results)
    print(json.dumps(results))
    return 1 if "error" in results else 0


def goals_failed(r: dict[str, Any]) -> list[str]:
    """The goals of issue 11 that this run did not meet (a figure absent when its attack did not run)."""
    must_be_zero = ("server_errors", "internal_errors", "revoked_image_access", "picture_token_misuse",
                    "db_locked_errors", "invalid_json_responses")
    failed = [f"{k} = {r[k]}" for k in must_be_zero if r.get(k)]
    if r.get("victim_locked_out"):
        failed.append("victim_locked_out")
    if (r.get("max_loop_stall_ms") or 0) > 250:
        failed.append(f"max_loop_stall_ms = {r['max_loop_stall_ms']} > 250")
    if r.get("stop", {}).get("processes_left"):
        failed.append(f"processes left: {r['stop']['processes_left']}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
