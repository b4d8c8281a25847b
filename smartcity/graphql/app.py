"""The ASGI GraphQL endpoint (HTTP + graphql-transport-ws) with per-request services and the
caller's identity (token checked, then the user's current role and scope read from the
database): `Authorization: Bearer <token>` over HTTP, `{"authorization": "Bearer
<token>"}` in the WebSocket `connection_init` payload."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from smartcity.graphql.access import authenticate
from smartcity.graphql.auth import AuthError, bearer
from smartcity.graphql.context import ApiServices
from smartcity.graphql.limits import decode_request_json, finite_json
from smartcity.graphql.schema import make_schema
from smartcity.graphql.session import CheckedTransportWSHandler, CheckedWSHandler


class GraphQLApp(GraphQL[dict[str, Any], None]):
    """`services()` is called per request/connection: the app injects what the API may use."""

    # a WebSocket connection's user is read again before each operation it starts (session)
    graphql_transport_ws_handler_class = CheckedTransportWSHandler
    graphql_ws_handler_class = CheckedWSHandler

    def __init__(self, services: Callable[[], ApiServices], *, introspection: bool = False) -> None:
        super().__init__(
            make_schema(introspection=introspection),
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL],
            # no GraphiQL: strawberry's page loads React and GraphiQL from a third-party CDN
            # (unpkg.com) into the origin that holds the operators' tokens, which the console's
            # Content-Security-Policy forbids (smartcity.http_headers); a GraphQL client is used instead
            graphql_ide=None,
        )
        self._services = services

    # request bodies: a document nested too deep for the parser is a 400 like any malformed body
    # (the size is bounded in front of the app, smartcity.http_limits); responses: NaN or
    # Infinity, which no JSON parser reads, become null instead of breaking the whole response

    def decode_json(self, data: str | bytes) -> object:
        return decode_request_json(data)  # a JSONDecodeError: strawberry answers 400

    def encode_json(self, data: object) -> str:
        try:
            return json.dumps(data, separators=(",", ":"), allow_nan=False)
        except ValueError:
            return json.dumps(finite_json(data), separators=(",", ":"), allow_nan=False)

    async def get_context(self, request: Any, response: Any = None) -> dict[str, Any]:
        services = self._services()
        ctx: dict[str, Any] = {"services": services, "request": request, "response": response, "principal": None}
        headers = getattr(request, "headers", None)
        token = bearer(headers.get("authorization") if headers is not None else None)
        if token:
            try:
                ctx["principal"] = await authenticate(services.db, services.signer, token)
            except AuthError as exc:
                ctx["auth_error"] = f"not authenticated: {exc}"
        return ctx

    async def on_ws_connect(self, context: dict[str, Any]) -> Any:
        params = context.get("connection_params") or {}
        raw = params.get("authorization") or params.get("Authorization") or params.get("token")
        token = bearer(raw if isinstance(raw, str) else None)
        if token:
            services: ApiServices = context["services"]
            try:
                context["principal"] = await authenticate(services.db, services.signer, token)
            except AuthError as exc:
                raise ConnectionRejectionError({"reason": f"not authenticated: {exc}"}) from None
        elif context.get("principal") is None:
            raise ConnectionRejectionError({"reason": "send authorization in connection_init"})
        return None
