"""Extensions that cannot run: one whose start raises after subscribing, one whose GraphQL
field takes a name the API already has."""

from __future__ import annotations

from typing import Literal

import strawberry

from smartcity.core.events import RuleEvent
from smartcity.extensions import ExtensionConfig, ExtensionContext, register_extension


class FailingConfig(ExtensionConfig):
    type: Literal["failing"] = "failing"


@register_extension(FailingConfig)
class Failing:
    instances: list[Failing] = []  # noqa: RUF012 - the tests look at the one the server built

    def __init__(self, config: FailingConfig) -> None:
        self.stopped = False
        Failing.instances.append(self)

    async def start(self, ctx: ExtensionContext) -> None:
        async def ignore(event: RuleEvent) -> None:
            return None

        ctx.subscribe(RuleEvent, ignore)
        raise RuntimeError("the outside system is not there")

    async def stop(self) -> None:
        self.stopped = True


class ClashConfig(ExtensionConfig):
    type: Literal["clash"] = "clash"


@strawberry.type
class ClashQuery:
    @strawberry.field
    def me(self) -> str:
        return "not the API's me"


@register_extension(ClashConfig)
class Clash:
    instances: list[Clash] = []  # noqa: RUF012 - the tests look at the one the server built

    def __init__(self, config: ClashConfig) -> None:
        self.stopped = False
        Clash.instances.append(self)

    async def start(self, ctx: ExtensionContext) -> None:
        ctx.add_graphql(query=ClashQuery)

    async def stop(self) -> None:
        self.stopped = True
