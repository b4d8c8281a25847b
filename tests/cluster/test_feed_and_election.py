"""Several servers in one process, on a real PostgreSQL: the event feed gives every other
server's bus each event once, in order, marked remote (and never back to its origin), and the
leader election moves the leadership when the leader's session dies, with a new fencing epoch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from smartcity.cluster import ClusterFeed, LeaderElection, Term
from smartcity.core.bus import EventBus, Subscription
from smartcity.core.events import (
    CameraHealth,
    CameraState,
    Event,
    Incident,
    IncidentState,
    RuleEvent,
    Severity,
)
from smartcity.core.supervisor import TaskSupervisor
from smartcity.storage.db import libpq_dsn

pytestmark = [pytest.mark.postgres]


def health(camera: str, seq: int) -> CameraHealth:
    return CameraHealth(camera_id=camera, t=float(seq), group="g", state=CameraState.ONLINE, seq=seq)


def incident(state: IncidentState) -> Incident:
    return Incident(
        camera_id="cam-a", t=1.0, incident_id="inc-1", rule_id="r", kind="dwell", state=state, severity=Severity.HIGH,
        camera_ids=("cam-a",), first_seen=1.0, last_seen=1.0, count=1, event_ids=("e1",),
    )


async def take(sub: Subscription[Event], n: int) -> list[Event]:
    return [await asyncio.wait_for(sub.get(), 20) for _ in range(n)]


class Node:
    """One server's bus, feed and supervisor."""

    def __init__(self, dsn: str, name: str) -> None:
        self.dsn = dsn
        self.bus = EventBus(dedupe=1000)
        self.sup = TaskSupervisor()
        self.feed = ClusterFeed(self.connect, self.bus, name, poll_s=0.5)
        self.live = self.bus.subscribe("live", maxsize=10_000)  # a GraphQL subscriber's view
        self.own = self.bus.subscribe("writer", maxsize=10_000, remote=False)  # the writer's view

    async def connect(self) -> Any:
        return await asyncpg.connect(self.dsn, timeout=10)

    async def stop(self) -> None:
        await self.feed.stop(timeout_s=5)
        await self.sup.stop(timeout_s=5)


@pytest.fixture
async def two(pg_url: str) -> AsyncIterator[tuple[Node, Node]]:
    a, b = Node(libpq_dsn(pg_url), "a"), Node(libpq_dsn(pg_url), "b")
    await a.feed.start(a.sup)
    await b.feed.start(b.sup)
    yield a, b
    await a.stop()
    await b.stop()


async def test_every_other_server_gets_each_event_once_in_order(two: tuple[Node, Node]) -> None:
    a, b = two
    sent: list[Event] = [health(cam, seq) for seq in range(1, 41) for cam in ("cam-a", "cam-b")]
    sent.append(incident(IncidentState.OPEN))
    await a.bus.publish_many(sent)
    await a.feed.flushed()  # what the leader's bridge waits for before acknowledging its actor
    assert await b.feed.catch_up()  # what a new leader waits for before pulling from the actors
    assert b.live.qsize() == len(sent)
    got = await take(b.live, len(sent))
    assert [e.event_id for e in got] == [e.event_id for e in sent]
    assert isinstance(got[-1], Incident) and got[-1].incident_id == "inc-1"
    # the origin's own subscribers got them once, from its bus; none came back through the feed
    assert [e.event_id for e in await take(a.live, len(sent))] == [e.event_id for e in sent]
    await asyncio.sleep(1.5)  # three polls: anything coming back would be here
    assert a.live.qsize() == 0 and b.live.qsize() == 0
    assert b.own.qsize() == 0  # b's writer never stores what a stored
    assert (a.feed.sent, b.feed.received, a.feed.received, b.feed.missed) == (len(sent), len(sent), 0, 0)


async def test_a_repeated_event_reaches_only_the_acknowledging_side(two: tuple[Node, Node]) -> None:
    """A new leader pulls again what the old one had fanned out: its writer and fusion see it
    again (their acknowledgements need it), no live subscriber on any server does."""
    a, b = two
    first = RuleEvent(camera_id="cam-a", t=1.0, rule_id="r", rule_type="line_count", kind="crossing")
    await a.bus.publish(first)
    await a.feed.flushed()
    assert (await take(b.live, 1))[0].event_id == first.event_id
    await b.bus.publish(first)  # b took over and pulled it again
    await b.bus.publish(health("cam-a", 99))  # a marker after it
    assert (await take(b.own, 2))[0].event_id == first.event_id  # b's writer: both
    marker = (await take(b.live, 1))[0]
    assert isinstance(marker, CameraHealth) and marker.seq == 99  # b's subscriber: only the new one
    await b.feed.flushed()
    assert isinstance((await take(a.live, 2))[1], CameraHealth)  # a: its own event first, then the marker
    assert a.bus.repeated_total == 1 and b.bus.repeated_total == 1


async def test_an_incident_moved_on_a_follower_is_told_to_the_leader(two: tuple[Node, Node]) -> None:
    a, b = two
    seen: list[Event] = []
    undo = a.feed.watch(Incident, seen.append)
    acked = incident(IncidentState.ACKNOWLEDGED)
    await b.bus.publish(acked)
    await b.feed.flushed()
    assert (await take(a.live, 1))[0].event_id == acked.event_id
    assert [e.event_id for e in seen] == [acked.event_id]
    undo()


async def test_the_leadership_moves_when_the_leader_session_dies(pg_url: str) -> None:
    dsn = libpq_dsn(pg_url)
    log: list[str] = []
    elected = {"a": asyncio.Event(), "b": asyncio.Event()}

    def election(name: str) -> LeaderElection:
        async def connect() -> Any:
            return await asyncpg.connect(dsn, timeout=10, server_settings={"application_name": f"election-{name}"})

        async def on_elected(term: Term) -> None:
            log.append(f"{name} elected {term.epoch}")
            elected[name].set()

        async def on_deposed() -> None:
            log.append(f"{name} deposed")

        return LeaderElection(connect, name, on_elected=on_elected, on_deposed=on_deposed, interval_s=0.2)

    a = election("a")
    task_a = asyncio.create_task(a.run())
    await asyncio.wait_for(elected["a"].wait(), 20)
    b = election("b")
    task_b = asyncio.create_task(b.run())
    try:
        await asyncio.sleep(1.0)  # five tries of b
        assert log == ["a elected 1"] and not b.leader
        # a's lock session ends as a killed process's would (its socket closed by the server)
        admin = await asyncpg.connect(dsn, timeout=10)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'election-a'"
            )
            assert killed == 1
            await asyncio.wait_for(elected["b"].wait(), 20)
            for _ in range(200):  # recorded once its duties run
                row = await admin.fetchrow("SELECT epoch, server_id FROM cluster_leader")
                if row["server_id"] == "b":
                    break
                await asyncio.sleep(0.1)
        finally:
            await admin.close()
        # the old leader stopped its duties before the new one started its own
        assert log == ["a elected 1", "a deposed", "b elected 2"]
        assert (row["epoch"], row["server_id"]) == (2, "b")
        assert b.term == Term("b", 2) and not a.leader
    finally:
        for task, e in ((task_a, a), (task_b, b)):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await e.release()
    assert log[-1] == "b deposed"  # released while leading: its duties stopped
