"""The real server for the console's browser test: `smartcity serve` in its own session on the
demo camera, with a console alert policy; stopped and its process group reaped afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aioice.ice
import httpx
from testkit import free_port, session_processes

ADMIN = ("chief", "chief's password")




def smoke_topic(port: int) -> str:
    """The MQTT topic of the test's smoke detector (one per server)."""
    return f"smartcity-test/console-{port}/smoke"


def write_config(tmp: Path, port: int) -> Path:
    # Chromium offers no loopback candidate: its ICE runs over this machine's own interface
    # addresses, which the live view must then accept and advertise (its default is loopback only)
    own = [f"{a}/32" for a in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)] or ["127.0.0.0/8"]
    cfg = tmp / "smartcity.yaml"
    cfg.write_text(
        f"""
server: {{port: {port}}}
database: {{url: "sqlite+aiosqlite:///{tmp}/db.sqlite"}}
storage: {{data_dir: "{tmp}/data"}}
ray: {{num_cpus: 2, object_store_mb: 100}}
analysis: {{inference_cpus: 1, max_batch: 2, counts_flush_s: 1}}
actors: {{health_interval_s: 0.5, pull_interval_s: 0.05, reconcile_interval_s: 0.5}}
live_view: {{allowed_candidate_networks: [{", ".join(own)}]}}
camera_groups: [{{name: police}}, {{name: technical}}]
cameras:
  - {{id: demo, name: "Hall (demo)", url: "demo://vtest", group: police, analysis_fps: 5, site: centre}}
  - {{id: demo-2, name: "Forecourt (demo)", url: "demo://vtest", group: police, analysis_fps: 1, site: centre}}
  - {{id: north-gate, name: "North gate", url: "rtsp://127.0.0.1:9/stream", group: technical, analysis_fps: 1}}
alerts:
  dispatcher: {{poll_s: 0.2}}
  smoke_sensors:
    mqtt: {{host: 127.0.0.1, port: 1883, client_id: "console-test-{port}"}}
    topic: "{smoke_topic(port)}/+"
    sensors: {{hall-1: {{camera_id: demo, location: "Hall, ground floor"}}}}
  policies:
    - name: occupancy-to-console
      rule_types: [occupancy]
      notify: [{{channel: console, target: operators}}]
    - name: emergency-to-console
      kinds: [fire, smoke]
      notify: [{{channel: console, target: operators}}]
"""
    )
    return cfg


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited during start-up"
        try:
            r = httpx.get(f"{base}/healthz", timeout=2)
            last = r.text
            if r.status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"server not healthy in {timeout}s: {last}")


@contextmanager
def running_server(tmp: Path) -> Iterator[str]:
    """Migrate, create an admin, serve; yield the base URL; kill the whole session."""
    port = free_port()
    cfg = write_config(tmp, port)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("SMARTCITY_CONFIG", None)
    cli = [sys.executable, "-m", "smartcity.cli"]
    for args, stdin in (
        (["migrate", "--config", str(cfg)], ""),
        (
            ["users", "create", ADMIN[0], "--role", "admin", "--password-stdin", "--config", str(cfg)],
            ADMIN[1] + "\n",
        ),
    ):
        done = subprocess.run(
            [*cli, *args], cwd=tmp, env=env, input=stdin.encode(), capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr.decode()
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*cli, "serve", "--config", str(cfg)],
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc)
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        deadline = time.monotonic() + 5
        while session_processes(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        for p in session_processes(proc.pid):
            p.kill()
        log.close()
