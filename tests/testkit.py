"""Helpers shared by test folders (on sys.path through pytest's `pythonpath`)."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import psutil

from smartcity.core.video import CameraRuntime, LiveFrame, SignalPush


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session_processes(sid: int) -> list[psutil.Process]:
    """Live processes of session `sid` (a server started with start_new_session and its children)."""
    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (ProcessLookupError, psutil.Error):
            continue
    return out


def run_cluster_bench(*args: str) -> dict[str, Any]:
    """`bench/cluster.py *args` in its own process (a Ray driver attaches to one cluster per
    process, and the suite's may already run); asserts it succeeded and returns its last-line JSON."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [sys.executable, str(root / "bench" / "cluster.py"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def processes_mentioning(text: str) -> list[int]:
    """Pids of the processes whose command line contains `text` (a cluster's temp dir)."""
    from pathlib import Path

    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


async def run_pipeline_until(pipe: Any, analysed: int, poll_s: float = 0.001) -> None:
    """Run a CameraPipeline until it has analysed `analysed` frames, then cancel it and wait."""
    task = asyncio.get_running_loop().create_task(pipe.run())
    while pipe.stats.analysed < analysed:
        await asyncio.sleep(poll_s)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
    # host candidates as IP addresses (not mDNS names) so that aiortc can reach the browser
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


def chromium_or_skip() -> str:
    """The path of Debian's Chromium for a browser test module (call at import, before importing
    playwright): skips the module on a machine without chromium or playwright, fails under CI."""
    import importlib.util
    from pathlib import Path

    import pytest

    chromium = os.environ.get("SMARTCITY_CHROMIUM", "/usr/bin/chromium")
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    if importlib.util.find_spec("playwright") is None:  # pragma: no cover - depends on the machine
        if in_ci:
            raise RuntimeError("playwright is not installed (scripts/setup.sh --test)")
        pytest.skip("playwright is not installed (scripts/setup.sh --test)", allow_module_level=True)
    if not Path(chromium).exists():  # pragma: no cover - depends on the machine
        if in_ci:
            raise RuntimeError(f"{chromium} is missing: apt-get install chromium (scripts/setup.sh --test)")
        pytest.skip(f"{chromium} is missing (apt-get install chromium)", allow_module_level=True)
    return chromium


def serve_with_operator(tmp_path: Any, extensions: list[dict[str, Any]], username: str, password: str) -> Any:
    """The app (SQLite under `tmp_path`, no Ray) with `extensions`, served by uvicorn on a loopback
    port in a thread, with an operator `username`: a context manager yielding the base URL, the
    server stopped after (for browser tests, whose sync driver owns the test's thread)."""
    import contextlib
    import threading
    import time

    import uvicorn

    from smartcity.app import Server, create_app
    from smartcity.core.config import load_settings
    from smartcity.storage.users import create_user

    @contextlib.contextmanager
    def served() -> Any:
        port = free_port()
        settings = load_settings(
            overrides={
                "server": {"port": port, "gc_tuning": False},  # as tests/graphql/api_helpers.py
                "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/db.sqlite"},
                "storage": {"data_dir": str(tmp_path / "data")},
                "extensions": extensions,
            },
            environ={},
        )
        app = create_app(settings, with_ray=False)
        web = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_until_complete, args=(web.serve(),), daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while not web.started:
                assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
            server: Server = app.state.server
            assert server.db is not None
            made = create_user(server.db, username, password, "operator", [], actor="test")
            asyncio.run_coroutine_threadsafe(made, loop).result(30)
            yield f"http://127.0.0.1:{port}"
        finally:
            web.should_exit = True
            thread.join(30)
            loop.close()

    return served()


def gql_sync(base: str, token: str, query: str) -> dict[str, Any]:
    """The data of a GraphQL query over HTTP (blocking), asserting it had no errors."""
    import httpx

    r = httpx.post(f"{base}/graphql", json={"query": query}, headers={"authorization": f"Bearer {token}"}, timeout=30)
    body: dict[str, Any] = r.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


class RecordingVideo:
    """A VideoControl double whose cameras take every signal push and remember it."""

    def __init__(self) -> None:
        self.pushes: list[SignalPush] = []

    async def live_frame(self, camera_id: str) -> LiveFrame | None:
        return None

    async def snapshot(self, camera_id: str, *, pixelate: bool = True) -> bytes | None:
        return None

    async def push_signal(self, push: SignalPush) -> bool:
        self.pushes.append(push)
        return True

    def rules_changed(self, camera_id: str) -> None:
        return None

    def runtime(self) -> tuple[CameraRuntime, ...]:
        return ()


class TexturedSource:
    """A camera source of one random-textured W x H picture at 5 fps of simulated time (from
    t=1000 s), `n` frames handed out one by one (pipeline tests)."""

    def __init__(self, n: int, width: int = 320, height: int = 240, camera_id: str = "cam") -> None:
        import numpy as np

        self.image = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
        self.n, self.width, self.height, self.camera_id = n, width, height, camera_id
        self.i = 0

    def take_for_analysis(self) -> Any:
        from smartcity.sources.types import Frame

        if self.i >= self.n:
            return None
        self.i += 1
        return Frame(self.camera_id, self.i, 1000.0 + self.i * 0.2, self.image, self.width, self.height)


def parked_car_rule(camera_id: str = "cam") -> Any:
    """A dwell rule on a zone of the lower left of the picture, firing after 2 s."""
    from smartcity.analytics import validate_rule

    return validate_rule(
        {
            "id": "park-1",
            "camera_id": camera_id,
            "type": "dwell",
            "classes": ["car"],
            "params": {"zone": [[0.05, 0.4], [0.5, 0.4], [0.5, 0.9], [0.05, 0.9]], "threshold_s": 2.0},
        }
    )
