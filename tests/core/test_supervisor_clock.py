from __future__ import annotations

import asyncio

from smartcity.core.clock import ManualClock
from smartcity.core.supervisor import TaskSupervisor


async def test_stop_in_reverse_order() -> None:
    sup = TaskSupervisor()
    order: list[str] = []

    def worker(name: str):  # type: ignore[no-untyped-def]
        async def run() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                order.append(name)

        return run

    for n in ("a", "b", "c"):
        sup.start(n, worker(n))
    await asyncio.sleep(0)
    assert sup.running == ["a", "b", "c"]
    await sup.stop()
    assert order == ["c", "b", "a"]
    assert sup.running == []


async def test_restart_on_crash_and_failure_surfaced() -> None:
    sup = TaskSupervisor(restart_backoff_s=0.01)
    runs = 0
    done = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise ValueError(f"crash {runs}")
        done.set()
        await asyncio.Event().wait()

    sup.start("flaky", flaky, restart=True)
    await asyncio.wait_for(done.wait(), 2)
    assert runs == 3
    assert sup.failures() == {"flaky": 2}
    assert "crash 2" in str(sup.errors()["flaky"])
    await sup.stop()


async def test_manual_clock_wakes_sleepers_in_order() -> None:
    clock = ManualClock(start=100.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, s: float) -> None:
        await clock.sleep(s)
        woke.append((name, clock.time()))

    tasks = [asyncio.create_task(sleeper("late", 30)), asyncio.create_task(sleeper("early", 10))]
    await asyncio.sleep(0)
    await clock.advance(15)
    assert woke == [("early", 110.0)]
    await clock.advance(20)
    assert woke == [("early", 110.0), ("late", 130.0)]
    assert clock.time() == 135.0
    await asyncio.gather(*tasks)
