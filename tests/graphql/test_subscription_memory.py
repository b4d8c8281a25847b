"""A long-lived subscription holds what one event needs, not what every event it ever sent
needed (smartcity.graphql.executor; found by bench/soak.py)."""

from __future__ import annotations

import gc
import time

from api_helpers import Api, connect_ws, next_message, subscribe, until_subscribed
from graphql import build_schema, parse
from graphql.execution.collect_fields import CollectedFields
from graphql.execution.executor import Executor

from smartcity.core.events import RuleEvent
from smartcity.graphql.executor import PER_EVENT_MEMOS


def live(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is kind)


async def _send_and_read(api: Api, ws: object, n: int, start: int) -> list[str]:
    """`n` events published and read back 4 at a time (the test server's queues hold 8)."""
    _, server, _ = api
    got: list[str] = []
    for first in range(start, start + n, 4):
        batch = range(first, min(first + 4, start + n))
        for i in batch:
            await server.bus.publish(RuleEvent(camera_id="cam-p", t=time.time(), rule_id="r", rule_type="dwell", kind=f"k{i}"))
        for _ in batch:
            msg = await next_message(ws)
            assert msg["type"] == "next", msg
            got.append(msg["payload"]["data"]["events"]["kind"])
    return got


async def test_subscription_memory_stays_flat_over_events(api: Api) -> None:
    base, server, clients = api
    ws = await connect_ws(base, clients["admin"].token)
    try:
        await subscribe(ws, "1", "subscription { events { id kind cameraId } }")
        await until_subscribed(server, 1)
        assert await _send_and_read(api, ws, 20, 0) == [f"k{i}" for i in range(20)]
        before = live(CollectedFields)
        assert await _send_and_read(api, ws, 300, 20) == [f"k{i}" for i in range(20, 320)]
        after = live(CollectedFields)
    finally:
        await ws.close()
    # graphql-core 3.3's shared memo kept one entry per event: +300 here
    assert after - before < 10, (before, after)


def test_graphql_core_still_has_the_memos_reset_per_event() -> None:
    """ApiExecutionContext resets these by name: an upgrade of graphql-core that renames them
    must be looked at (is the leak gone, or has it moved?)."""
    schema = build_schema("type Query { a: String } type Subscription { a: String }")
    executor = Executor.build(schema, parse("subscription { a }"))
    assert isinstance(executor, Executor)
    for name in PER_EVENT_MEMOS:
        assert hasattr(executor, name), name
