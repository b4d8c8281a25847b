"""Helpers for camera-source tests: polling a source's health, free ports, a loopback RTSP server process."""

from __future__ import annotations

import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from smartcity.sources import CameraSource, SourceHealth

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def wait_health(
    source: CameraSource, predicate: Callable[[SourceHealth], bool], timeout: float
) -> SourceHealth:
    """Poll the source's health until `predicate` holds; fail with the last health otherwise."""
    last: list[SourceHealth] = []

    def check() -> bool:
        h = source.health()
        last[:] = [h]
        return predicate(h)

    if not wait_until(check, timeout):
        pytest.fail(f"health condition not met within {timeout}s; last health: {last[0]}")
    return last[0]


class RtspServer:
    """gst-rtsp-server in a child process (Debian's system Python), restartable on the same port."""

    def __init__(self, clip: Path, port: int, path: str = "/cam") -> None:
        self.clip = clip
        self.port = port
        self.path = path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def start(self, timeout: float = 15.0) -> None:
        assert self.proc is None
        self.proc = subprocess.Popen(
            [
                SYSTEM_PYTHON,
                str(RTSP_SERVER_SCRIPT),
                "--port",
                str(self.port),
                "--path",
                self.path,
                "--clip",
                str(self.clip),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        seen = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                seen += line
                if line.startswith(b"READY"):
                    return
                if not line and self.proc.poll() is not None:
                    break
        self.stop()
        raise RuntimeError(f"RTSP server did not start: {seen.decode(errors='replace')}")

    def stop(self, *, crash: bool = False) -> None:
        """Stop the server: cleanly (SIGTERM), or as a crash (SIGKILL: no RTSP teardown, no BYE)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if crash:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
