"""WebSocket sessions stay checked: a connection's user is read again from the database when
it starts an operation (the protocol handlers below, which the GraphQL app uses) and, while a
subscription streams, every `server.session_check_s` (subscriptions.py).

An HTTP request checks its token against the database each time; a graphql-transport-ws
connection checks it once, at `connection_init`, and may then stream for days. A disabled
account, a role or scope change or revoked tokens (every user change revokes them) therefore
end the connection's session: its subscriptions close with "session revoked: <why>" and any
operation it starts afterwards is refused as not authenticated.
"""

from __future__ import annotations

import contextlib
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from smartcity.graphql.access import current_principal
from smartcity.graphql.auth import AuthError, Principal


class SessionRevoked(Exception):
    """The connection's user may no longer use it; the message says why."""


def _revoke(context: dict[str, Any], why: str) -> SessionRevoked:
    context["principal"] = None
    context["auth_error"] = f"not authenticated: session revoked: {why}"
    return SessionRevoked(f"session revoked: {why}")


async def recheck(context: dict[str, Any]) -> Principal:
    """The connection's user as the database knows it now, if nothing about them changed;
    else the connection is marked unauthenticated and SessionRevoked raised."""
    p: Principal | None = context.get("principal")
    if p is None:
        raise SessionRevoked(context.get("auth_error") or "not authenticated")
    try:
        now = await current_principal(context["services"].db, p)
    except AuthError as exc:
        raise _revoke(context, str(exc)) from None
    if (now.role, now.groups) != (p.role, p.groups):
        raise _revoke(context, "role or camera groups changed: log in again")
    return p


async def _before_operation(context: Any) -> None:
    if isinstance(context, dict) and context.get("principal") is not None:
        with contextlib.suppress(SessionRevoked):  # the operation meets the unset principal and says so
            await recheck(context)


class CheckedTransportWSHandler(BaseGraphQLTransportWSHandler[dict[str, Any], None]):
    """graphql-transport-ws: `recheck` before each operation a connection starts."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        await _before_operation(self.context)
        await super().handle_subscribe(message)


class CheckedWSHandler(BaseGraphQLWSHandler[dict[str, Any], None]):
    """The legacy graphql-ws protocol: the same."""

    async def handle_start(self, message: StartMessage) -> None:
        await _before_operation(self.context)
        await super().handle_start(message)
