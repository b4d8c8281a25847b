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
