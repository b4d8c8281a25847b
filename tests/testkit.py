"""Helpers shared by test folders (on sys.path through pytest's `pythonpath`)."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import psutil


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
