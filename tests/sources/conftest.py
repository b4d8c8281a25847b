"""Fixtures for camera-source tests: generated clips, a loopback RTSP server, a loopback HTTP server."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from source_helpers import SYSTEM_PYTHON, RtspServer
from testkit import free_port

from smartcity.sources import CameraSource, generate_test_clip

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def clip(clip_dir: Path) -> Callable[..., Path]:
    """`clip(name, **generate_test_clip kwargs)`: generate once per session, return its path."""

    @functools.cache
    def make(name: str, **kwargs: object) -> Path:
        path = clip_dir / name
        if not path.exists():
            generate_test_clip(path, **kwargs)  # type: ignore[arg-type]
        return path

    return make


@pytest.fixture
def sources() -> Iterator[list[CameraSource]]:
    """Sources a test registers here are stopped at the end even when the test fails."""
    created: list[CameraSource] = []
    yield created
    for s in created:
        s.stop(timeout=10)


def _rtsp_server_available() -> str | None:
    if not os.path.exists(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} not found"
    probe = (
        "import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');"
        "from gi.repository import Gst; Gst.init(None);"
        "import sys; sys.exit(0 if all(Gst.ElementFactory.find(e) for e in "
        "('qtdemux','h264parse','rtph264pay','filesrc')) else 3)"
    )
    result = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=30)
    if result.returncode != 0:
        return (
            "gst-rtsp-server unavailable (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
            f"gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad): {result.stderr[-300:]!r}"
        )
    return None


@pytest.fixture(scope="session")
def rtsp_available() -> None:
    problem = _rtsp_server_available()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"RTSP server required when CI=true: {problem}")
        pytest.skip(problem)


@pytest.fixture
def rtsp_server(rtsp_available: None, clip: Callable[..., Path]) -> Iterator[RtspServer]:
    """A started RTSP server serving a 60 s 320x240 15 fps H.264 clip on a free loopback port."""
    path = clip("rtsp_320x240_15fps.mp4", width=320, height=240, fps=15, seconds=60)
    server = RtspServer(path, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class _ClipHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the clip directory; /live/NAME?seconds=S streams NAME spread over S seconds (default 2),
    like a camera: a 2 s clip at seconds=4 arrives at half its frame rate."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if not self.path.startswith("/live/"):
            super().do_GET()
            return
        name, _, query = self.path.removeprefix("/live/").partition("?")
        params = urllib.parse.parse_qs(query)
        seconds = float(params.get("seconds", ["2"])[0])
        path = Path(self.directory) / name
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        chunk = 188 * 20
        per_chunk_s = seconds * chunk / len(data)
        start = time.monotonic()
        try:
            for i, at in enumerate(range(0, len(data), chunk)):
                self.wfile.write(data[at : at + chunk])
                self.wfile.flush()
                delay = start + (i + 1) * per_chunk_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            return


@pytest.fixture
def http_server(clip_dir: Path) -> Iterator[str]:
    """A loopback HTTP server over the clip directory; yields its base URL."""
    handler = functools.partial(_ClipHandler, directory=str(clip_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="test-http-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
