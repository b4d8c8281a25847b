"""Owner of every background task: starts them by name, restarts the ones asked to,
surfaces failures, and stops them all in reverse start order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

TaskFactory = Callable[[], Awaitable[None]]


@dataclass
class _Supervised:
    name: str
    factory: TaskFactory
    restart: bool
    task: asyncio.Task[None] | None = None
    failures: int = 0
    last_error: BaseException | None = None
    stopping: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class TaskSupervisor:
    """`start()` a named coroutine; `stop()` cancels everything, newest first."""

    def __init__(self, *, restart_backoff_s: float = 0.5, max_backoff_s: float = 10.0) -> None:
        self._entries: list[_Supervised] = []
        self._backoff = restart_backoff_s
        self._max_backoff = max_backoff_s
        self._stopped = False

    def start(self, name: str, factory: TaskFactory, *, restart: bool = False) -> asyncio.Task[None]:
        """Run `factory()` in a task owned by the supervisor. With `restart`, a crash restarts it."""
        if self._stopped:
            raise RuntimeError("supervisor is stopped")
        entry = _Supervised(name, factory, restart)
        entry.task = asyncio.get_running_loop().create_task(self._run(entry), name=name)
        self._entries.append(entry)
        return entry.task

    async def _run(self, entry: _Supervised) -> None:
        delay = self._backoff
        try:
            while True:
                try:
                    await entry.factory()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    entry.failures += 1
                    entry.last_error = exc
                    log.exception("task %s failed (%d failures)", entry.name, entry.failures)
                    if not entry.restart or entry.stopping:
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._max_backoff)
                    log.info("restarting task %s", entry.name)
        finally:
            entry.done.set()

    @property
    def running(self) -> list[str]:
        return [e.name for e in self._entries if e.task is not None and not e.task.done()]

    def failures(self) -> dict[str, int]:
        return {e.name: e.failures for e in self._entries if e.failures}

    def errors(self) -> dict[str, BaseException]:
        return {e.name: e.last_error for e in self._entries if e.last_error is not None}

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel tasks in reverse start order, waiting for each before the next.

        The wait is checked once a second until `timeout_s`; a task found running with no
        cancellation pending any more (something uncancelled it) is cancelled again, so that a
        cancellation lost inside a library call does not leave a loop running for ever.
        """
        self._stopped = True
        for entry in reversed(self._entries):
            entry.stopping = True
            task = entry.task
            if task is None or task.done():
                continue
            task.cancel()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while not task.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    log.error("task %s did not stop within %.1fs", entry.name, timeout_s)
                    break
                await asyncio.wait({task}, timeout=min(1.0, remaining))
                if not task.done() and task.cancelling() == 0:
                    log.warning("task %s swallowed its cancellation; cancelling it again", entry.name)
                    task.cancel()
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("task %s raised while stopping: %r", entry.name, task.exception())
        self._entries = [e for e in self._entries if e.task is not None and not e.task.done()]
