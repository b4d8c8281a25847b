"""asyncio helpers that keep cancellation honest.

On Python 3.11, `asyncio.wait_for` swallows a cancellation that arrives in the same loop turn
as the awaited result: the caller gets the result and never sees the CancelledError. A loop
such as ``while True: await wait_for(actor.call(), t)`` then survives its own cancellation and a
supervised shutdown waits for ever (this hung the reconciler's stop in CI). `wait_for` below is
built on `asyncio.timeout`, which re-raises the cancellation whatever the awaited object did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

__all__ = ["cancel_and_wait", "raise_if_cancelling", "wait_for"]


async def wait_for(aw: Awaitable[T], limit_s: float | None) -> T:
    """Await `aw` for at most `limit_s` seconds (None: no limit); raise TimeoutError after it.

    Unlike 3.11's `asyncio.wait_for`, a cancellation of the calling task is never lost.
    """
    async with asyncio.timeout(limit_s):
        return await aw


def raise_if_cancelling() -> None:
    """In a long-lived loop: raise CancelledError if this task was asked to stop.

    Belt and braces for code that awaits libraries which might still lose a cancellation: the
    request stays counted in `Task.cancelling()` even when the exception was swallowed.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel `task` and wait until it has finished; its own CancelledError is expected and
    swallowed, a cancellation of the caller while it waits is not."""
    if task is None:
        return
    current = asyncio.current_task()
    # a caller may already carry a cancellation it handled (a shutdown path run after its task
    # was cancelled): only one that arrives while we wait is ours to pass on
    before = current.cancelling() if current is not None else 0
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if current is not None and current.cancelling() > before:
            raise
