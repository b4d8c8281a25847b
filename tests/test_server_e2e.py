"""The real server process end to end: `smartcity serve` with local Ray and SQLite, a camera
produced by a Ray actor, /healthz, /metrics, GraphQL over HTTP and a cameraStatus subscription
over graphql-transport-ws, then SIGTERM: a clean exit that leaves no process behind."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest
from testkit import free_port, session_processes
from websockets.sync.client import connect

from smartcity.sources import generate_test_clip
from smartcity.storage.db import head_revision

pytestmark = [pytest.mark.slow]
METRICS_TOKEN = "scrape-token-for-prometheus"




@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    clip = generate_test_clip(tmp_path / "clip.mp4", width=160, height=120, fps=10, seconds=2)
    port = free_port()
    cfg = tmp_path / "smartcity.yaml"
    cfg.write_text(
        f"""
server: {{port: {port}, metrics_token: "{METRICS_TOKEN}"}}
database: {{url: "sqlite+aiosqlite:///{tmp_path}/db.sqlite"}}
storage: {{data_dir: "{tmp_path}/data"}}
ray: {{num_cpus: 2, object_store_mb: 100}}
analysis: {{inference_cpus: 0.5}}
actors: {{health_interval_s: 0.2}}
camera_groups: [{{name: police}}]
cameras_policy: {{file_roots: ["{tmp_path}"]}}
cameras:
  - {{id: cam-1, name: "Gare", url: "file://{clip}", group: police, analysis_fps: 2}}
"""
    )
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("SMARTCITY_CONFIG", None)
    for args, stdin in (
        (["migrate", "--config", str(cfg)], ""),
        (["users", "create", "chief", "--role", "admin", "--password-stdin", "--config", str(cfg)], "chief's password\n"),
    ):
        done = subprocess.run([sys.executable, "-m", "smartcity.cli", *args], cwd=tmp_path, env=env, input=stdin.encode(), capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartcity.cli", "serve", "--config", str(cfg)],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for p in session_processes(proc.pid):
            p.kill()
        log.close()


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited during start-up"
        try:
            r = httpx.get(f"{base}/healthz", timeout=2)
            last = r.text
            if r.status_code == 200:
                body: dict[str, object] = r.json()
                return body
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"server not healthy in {timeout}s: {last}")


def test_serve_health_graphql_subscription_and_clean_sigterm(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, proc = server
    assert wait_healthy(base, proc) == {"status": "healthy"}  # anyone: liveness only

    login = httpx.post(
        f"{base}/graphql",
        json={"query": 'mutation { login(username: "chief", password: "chief\'s password") { ... on LoginSuccess { token } } }'},
        timeout=10,
    )
    token = login.json()["data"]["login"]["token"]
    auth = {"authorization": f"Bearer {token}"}
    health = httpx.get(f"{base}/healthz", headers=auth, timeout=5).json()  # an admin: the details
    assert health["status"] == "healthy", health  # which part is not, when it fails
    assert health["database"] == {"ok": True, "revision": head_revision(), "dialect": "sqlite"}
    actors = health["actors"]
    assert isinstance(actors, dict)
    assert actors["police"]["alive"] is True
    node = actors["police"]["node"]  # the Ray node that runs the group (one here)
    assert isinstance(node, str) and len(node) == 56
    r = httpx.post(f"{base}/graphql", json={"query": "{ cameras { id name group url } }"}, headers=auth, timeout=5)
    assert r.json() == {
        "data": {"cameras": [{"id": "cam-1", "name": "Gare", "group": "police", "url": r.json()["data"]["cameras"][0]["url"]}]}
    }
    assert r.json()["data"]["cameras"][0]["url"].startswith("file://")

    received = []
    with connect(base.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
        ws.send(
            json.dumps(
                {
                    "id": "s1",
                    "type": "subscribe",
                    "payload": {"query": 'subscription { cameraStatus(cameraIds: ["cam-1"]) { cameraId group state seq inputFps } }'},
                }
            )
        )
        while len(received) < 3:
            msg = json.loads(ws.recv(timeout=20))
            if msg["type"] == "ping":
                ws.send(json.dumps({"type": "pong"}))
                continue
            assert msg["type"] == "next", msg
            received.append(msg["payload"]["data"]["cameraStatus"])
    assert {m["cameraId"] for m in received} == {"cam-1"}
    assert {m["group"] for m in received} == {"police"}
    seqs = [m["seq"] for m in received]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 3

    assert httpx.get(f"{base}/cameras/cam-1/snapshot.jpg", timeout=15).status_code == 401
    snap = httpx.get(f"{base}/cameras/cam-1/snapshot.jpg", headers=auth, timeout=15)
    assert snap.status_code == 200, snap.text
    assert snap.headers["content-type"] == "image/jpeg"
    with av.open(io.BytesIO(snap.content)) as c:
        assert next(c.decode(video=0)).width == 160
    assert httpx.get(f"{base}/cameras/nope/snapshot.jpg", headers=auth, timeout=15).status_code == 404
    # what an <img> tag uses: the URL from the API, with its own picture token and no header
    url = httpx.post(f"{base}/graphql", json={"query": "{ cameras { snapshotUrl } }"}, headers=auth, timeout=5)
    picture_url = url.json()["data"]["cameras"][0]["snapshotUrl"]
    by_url = httpx.get(base + picture_url, timeout=15)
    assert by_url.status_code == 200 and by_url.headers["content-type"] == "image/jpeg"

    assert httpx.get(f"{base}/metrics", timeout=5).status_code == 401
    metrics = httpx.get(f"{base}/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5).text
    assert 'smartcity_actor_alive{group="police"} 1.0' in metrics
    assert f'smartcity_node_cameras{{node="{node}"}} 1.0' in metrics
    assert "smartcity_writer_committed_total" in metrics

    ray_procs = [p for p in session_processes(proc.pid) if p.pid != proc.pid]
    assert ray_procs, "expected Ray daemons started by the server"
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=10)  # the documented stop bound
    # uvicorn re-raises the signal once its graceful shutdown is complete
    assert rc in (0, -signal.SIGTERM)
    log = (Path(proc.args[5]).parent / "server.log").read_text()  # type: ignore[index]
    assert "smartcity stopped" in log
    assert "Application shutdown complete" in log
    # the access log shows where pictures were fetched, never the token that opened them
    assert "/cameras/cam-1/snapshot.jpg?token=[redacted]" in log
    assert picture_url.split("token=")[1] not in log
    deadline = time.monotonic() + 5
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [p.name() for p in session_processes(proc.pid)] == []


def test_a_second_ctrl_c_while_stopping_exits_at_once_and_leaves_nothing(
    server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    """uvicorn alone answers a second Ctrl-C by skipping the application's shutdown, after which
    the process could hang on tasks waiting for Ray; ours stops Ray and exits."""
    base, proc = server
    wait_healthy(base, proc)
    assert [p for p in session_processes(proc.pid) if p.pid != proc.pid], "expected Ray daemons"
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=15)
    log = (Path(proc.args[5]).parent / "server.log").read_text()  # type: ignore[index]
    assert rc == 128 + signal.SIGINT, log[-2000:]
    assert "second SIGINT while stopping: stopping Ray and exiting now" in log
    deadline = time.monotonic() + 10
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [p.name() for p in session_processes(proc.pid)] == []
