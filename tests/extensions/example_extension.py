"""A tiny extension, as a third-party author writes one (one file plus its migration): it
counts rule events, keeps each in its own table, pushes a red signal state for each through
the video control, and shows its state as a GraphQL field and an HTTP route."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import sqlalchemy as sa
import strawberry
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smartcity.core.events import RuleEvent
from smartcity.core.video import SignalPush, SignalState
from smartcity.extensions import ExtensionConfig, ExtensionContext, caller_of, register_extension

metadata = sa.MetaData()
seen = sa.Table(
    "example_seen",
    metadata,
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("camera_id", sa.String(64), nullable=False),
    sa.Column("t", sa.Float, nullable=False),
)


class ExampleConfig(ExtensionConfig):
    type: Literal["example"] = "example"
    signal_rule: str = Field("red-1", description="Red-light rule that gets a red state per event.", max_length=64)


@register_extension(ExampleConfig, metadata=metadata, migrations=Path(__file__).parent / "example_migrations")
class Example:
    instances: list[Example] = []  # noqa: RUF012 - the tests look at the one the server built

    def __init__(self, config: ExampleConfig) -> None:
        self.config = config
        self.count = 0
        self.stopped = False
        self.ctx: ExtensionContext | None = None
        Example.instances.append(self)

    async def start(self, ctx: ExtensionContext) -> None:
        self.ctx = ctx
        ctx.subscribe(RuleEvent, self.on_rule_event)
        ctx.add_routes([Route("/state", self.state), Route("/reset", self.reset, methods=["POST"])])
        ext = self

        @strawberry.type
        class ExampleQuery:
            @strawberry.field(description="Rule events the example extension has seen.")
            def example_count(self) -> int:
                return ext.count

        @strawberry.type
        class ExampleMutation:
            @strawberry.mutation(description="Start counting again; returns the old count.")
            def example_reset(self) -> int:
                old, ext.count = ext.count, 0
                return old

        ctx.add_graphql(query=ExampleQuery, mutation=ExampleMutation)

    async def on_rule_event(self, event: RuleEvent) -> None:
        assert self.ctx is not None
        async with self.ctx.tables.begin() as conn:
            await conn.execute(sa.insert(seen).values(event_id=event.event_id, camera_id=event.camera_id, t=event.t))
        self.count += 1
        await self.ctx.video.push_signal(SignalPush(event.camera_id, self.config.signal_rule, SignalState.RED, event.t))

    async def state(self, request: Request) -> Response:
        assert self.ctx is not None
        stored = await self.ctx.data.rule_events(limit=100)
        return JSONResponse({"count": self.count, "stored": len(stored), "caller": caller_of(request).username})

    async def reset(self, request: Request) -> Response:
        old, self.count = self.count, 0
        return JSONResponse({"old": old})

    async def stop(self) -> None:
        self.stopped = True
