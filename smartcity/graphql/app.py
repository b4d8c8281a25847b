"""The ASGI GraphQL endpoint (HTTP + graphql-transport-ws) with per-request services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from smartcity.graphql.context import ApiServices
from smartcity.graphql.schema import make_schema


class GraphQLApp(GraphQL[dict[str, Any], None]):
    """`services()` is called per request/connection: the app injects what the API may use."""

    def __init__(self, services: Callable[[], ApiServices], *, introspection: bool = True) -> None:
        super().__init__(
            make_schema(introspection=introspection),
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL],
            graphql_ide="graphiql" if introspection else None,
        )
        self._services = services

    async def get_context(self, request: Any, response: Any = None) -> dict[str, Any]:
        return {"services": self._services(), "request": request, "response": response}
