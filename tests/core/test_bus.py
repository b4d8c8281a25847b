from __future__ import annotations

import asyncio

import pytest

from smartcity.core.bus import EventBus, Overflow
from smartcity.core.errors import SubscriptionClosed
from smartcity.core.events import CameraHealth, CameraState, RuleEvent, event_from_dict
from smartcity.core.supervisor import TaskSupervisor


def health(i: int, cam: str = "c1") -> CameraHealth:
    return CameraHealth(camera_id=cam, t=float(i), group="g", state=CameraState.ONLINE, seq=i)


async def test_typed_subscription_receives_only_its_types() -> None:
    bus = EventBus()
    sub = bus.subscribe("h", [CameraHealth])
    await bus.publish(RuleEvent(camera_id="c1", t=1.0, rule_id="r", rule_type="line_count", kind="crossing"))
    await bus.publish(health(1))
    got = await sub.get()
    assert isinstance(got, CameraHealth) and got.seq == 1
    assert sub.qsize() == 0
    sub.close()


async def test_drop_oldest_keeps_latest_and_counts() -> None:
    bus = EventBus()
    sub = bus.subscribe("status", [CameraHealth], maxsize=3, overflow=Overflow.DROP_OLDEST)
    for i in range(10):
        await bus.publish(health(i))
    assert [e.seq for e in sub.get_nowait_batch(10)] == [7, 8, 9]
    assert sub.dropped == 7
    assert bus.dropped_total == 7
    sub.close()


async def test_block_applies_backpressure_and_loses_nothing() -> None:
    bus = EventBus()
    sub = bus.subscribe("writer", [CameraHealth], maxsize=2, overflow=Overflow.BLOCK)
    received: list[int] = []

    async def produce() -> None:
        for i in range(50):
            await bus.publish(health(i))

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.01)
    assert not producer.done()  # blocked on the full queue
    while len(received) < 50:
        received.append((await sub.get()).seq)
    await producer
    assert received == list(range(50))
    assert sub.dropped == 0
    sub.close()


async def test_close_policy_disconnects_slow_subscriber_only() -> None:
    bus = EventBus()
    slow = bus.subscribe("slow", [CameraHealth], maxsize=2, overflow=Overflow.CLOSE)
    fast = bus.subscribe("fast", [CameraHealth], maxsize=100, overflow=Overflow.CLOSE)
    for i in range(5):
        await bus.publish(health(i))
    assert slow.closed and slow.closed_reason is not None and "too slow" in slow.closed_reason
    assert [e.seq for e in fast.get_nowait_batch(10)] == [0, 1, 2, 3, 4]
    assert bus.closed_by_overflow == 1
    # the slow one still yields what it had, then the reason
    assert (await slow.get()).seq == 0
    assert (await slow.get()).seq == 1
    with pytest.raises(SubscriptionClosed, match="too slow"):
        await slow.get()
    fast.close()


async def test_listen_survives_failing_handler_and_undo_stops_it() -> None:
    bus = EventBus()
    sup = TaskSupervisor()
    seen: list[int] = []

    async def handler(e: CameraHealth) -> None:
        if e.seq == 1:
            raise RuntimeError("boom")
        seen.append(e.seq)

    undo = bus.listen("l", [CameraHealth], handler, start=sup.start)
    for i in range(3):
        await bus.publish(health(i))
    await asyncio.sleep(0.05)
    assert seen == [0, 2]
    undo()
    await bus.publish(health(3))
    await asyncio.sleep(0.02)
    assert seen == [0, 2]
    assert bus.subscriptions == []
    await sup.stop()


async def test_remote_events_reach_only_remote_subscriptions_and_repeats_only_local_ones() -> None:
    """Several servers: events of another server go to the live side only; an id published
    again goes to no live subscriber twice, but to those that acknowledge it (writer, fusion)."""
    bus = EventBus(dedupe=100)
    live = bus.subscribe("live")
    writer = bus.subscribe("writer", remote=False)
    mine, theirs = health(1), health(2, "c2")
    await bus.publish(mine)
    await bus.publish(theirs, remote=True)
    await bus.publish(mine)  # pulled again by a new leader
    await bus.publish(theirs, remote=True)  # the feed read twice
    assert [e.event_id for e in live.get_nowait_batch(10)] == [mine.event_id, theirs.event_id]
    assert [e.event_id for e in writer.get_nowait_batch(10)] == [mine.event_id, mine.event_id]
    assert bus.repeated_total == 2
    plain = EventBus()  # one server: a repeat reaches everyone, as always
    sub = plain.subscribe("live")
    await plain.publish(mine)
    await plain.publish(mine)
    assert len(sub.get_nowait_batch(10)) == 2


def test_event_round_trip() -> None:
    e = RuleEvent(camera_id="c", t=2.5, rule_id="r1", rule_type="dwell", kind="dwell_start", payload={"s": 31})
    back = event_from_dict(e.to_dict())
    assert back == e
    h = health(4)
    assert event_from_dict(h.to_dict()) == h
