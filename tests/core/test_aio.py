"""Cancellation is never lost: the helper that replaces 3.11's asyncio.wait_for, and a
supervised loop whose awaited call completes in the same loop turn as its cancellation."""

from __future__ import annotations

import asyncio

import pytest

from smartcity.core.aio import cancel_and_wait, raise_if_cancelling, wait_for
from smartcity.core.supervisor import TaskSupervisor


async def _cancel_as_result_arrives(use_helper: bool) -> bool:
    """True when the task saw its cancellation."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()

    async def worker() -> int:
        if use_helper:
            return await wait_for(fut, 10)
        return await asyncio.wait_for(fut, 10)

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)
    fut.set_result(1)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return True
    return False


async def test_helper_keeps_a_cancellation_that_stdlib_wait_for_loses() -> None:
    assert await _cancel_as_result_arrives(use_helper=True)
    import sys

    if sys.version_info < (3, 12):  # the bug the helper exists for
        assert not await _cancel_as_result_arrives(use_helper=False)


async def test_helper_times_out_and_returns_results() -> None:
    assert await wait_for(asyncio.sleep(0, result=7), 1) == 7
    with pytest.raises(TimeoutError):
        await wait_for(asyncio.Event().wait(), 0.01)
    assert await wait_for(asyncio.sleep(0, result=3), None) == 3


async def test_loop_that_lost_its_cancellation_stops_at_the_next_turn() -> None:
    """A loop around a call that swallows cancellation (like stdlib wait_for on 3.11) stops
    through raise_if_cancelling, so the supervisor's stop returns."""
    loop = asyncio.get_running_loop()
    turns = 0

    async def swallowing_call() -> None:
        fut: asyncio.Future[None] = loop.create_future()
        loop.call_soon(fut.set_result, None)
        try:
            await fut
        except asyncio.CancelledError:
            pass  # the library loses it

    async def forever() -> None:
        nonlocal turns
        while True:
            raise_if_cancelling()
            turns += 1
            await swallowing_call()

    sup = TaskSupervisor()
    task = sup.start("loop", forever)
    while turns < 3:
        await asyncio.sleep(0)
    await sup.stop(timeout_s=5)
    assert task.done()
    assert sup.running == []


def test_package_code_does_not_use_stdlib_wait_for() -> None:
    """The reconciler hung in CI on 3.11's wait_for; package code uses core.aio.wait_for."""
    from pathlib import Path

    import smartcity

    root = Path(smartcity.__file__).parent
    offenders = [
        f"{p.relative_to(root)}:{n}"
        for p in root.rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if "asyncio.wait_for(" in line and p.name != "aio.py"
    ]
    assert offenders == []


async def test_cancel_and_wait_ends_the_task_and_keeps_the_callers_cancellation() -> None:
    finished: list[str] = []

    async def worker() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            finished.append("worker")

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)
    await cancel_and_wait(task)  # the task's own cancellation is the expected end: no error
    assert task.cancelled() and finished == ["worker"]

    stubborn_release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await stubborn_release.wait()  # takes its time to stop
            raise

    inner = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    outer = asyncio.create_task(cancel_and_wait(inner))
    await asyncio.sleep(0)
    outer.cancel()  # the caller is cancelled while it waits
    stubborn_release.set()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert outer.cancelled() and inner.cancelled()


async def test_cancel_and_wait_in_a_shutdown_path_after_a_handled_cancellation_finishes() -> None:
    """A stop routine that runs after its own task was cancelled (and handled it) still stops
    every worker: the stale cancellation is not taken for a new one."""
    stopped: list[int] = []

    async def worker(i: int) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            stopped.append(i)

    async def owner() -> str:
        workers = [asyncio.create_task(worker(i)) for i in range(3)]
        await asyncio.sleep(0)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # handled: now shut down cleanly
        for w in workers:
            await cancel_and_wait(w)
        return "stopped"

    task = asyncio.create_task(owner())
    await asyncio.sleep(0.01)
    task.cancel()
    assert await task == "stopped"
    assert sorted(stopped) == [0, 1, 2]
