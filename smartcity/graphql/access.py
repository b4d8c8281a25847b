"""Who is calling and what they may see: the principal of a request and camera scoping."""

from __future__ import annotations

import base64
from typing import Any

import sqlalchemy as sa
from strawberry.types import Info

from smartcity.graphql.auth import SERVICE_AUDIENCE, AuthError, Principal, TokenSigner
from smartcity.graphql.context import ApiServices
from smartcity.storage.db import Database
from smartcity.storage.tables import user_groups, users


class NotAuthenticated(PermissionError):
    """No valid token: raised as a GraphQL error on queries and subscriptions."""


async def current_principal(db: Database, token: Principal) -> Principal:
    """The token's user as the database knows it now: a role or scope change, or a disabled
    account, takes effect on the next request instead of when the token expires."""
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(users.c.username, users.c.role, users.c.disabled, users.c.tokens_valid_after).where(
                    users.c.id == token.user_id
                )
            )
        ).first()
        if row is None or row.username != token.username:
            raise AuthError("unknown user")
        if row.disabled:
            raise AuthError("account disabled")
        if row.tokens_valid_after is not None and token.issued_at <= row.tokens_valid_after:
            raise AuthError("token revoked: log in again")
        groups = frozenset((await conn.execute(sa.select(user_groups.c.group_name).where(user_groups.c.user_id == token.user_id))).scalars())
    return Principal(token.user_id, row.username, row.role, groups or None, token.issued_at)


async def authenticate(
    db: Database, signer: TokenSigner, token: str, *, image_path: str | None = None, integration: bool = False
) -> Principal:
    """The caller of an API token, or of a picture token for `image_path`, as the database
    knows them now (raises AuthError): what every route and the GraphQL API accept.
    `integration`: an integration token is accepted too (the extensions' HTTP routes only)."""
    if image_path is not None:
        claims = signer.verify_image(token, image_path)
    elif integration and signer.audience_of(token) == SERVICE_AUDIENCE:
        claims = signer.verify_service(token)
    else:
        claims = signer.verify(token)
    return await current_principal(db, claims)


def services(info: Info[Any, Any]) -> ApiServices:
    s: ApiServices = info.context["services"]
    return s


def principal(info: Info[Any, Any]) -> Principal:
    p: Principal | None = info.context.get("principal")
    if p is None:
        raise NotAuthenticated(info.context.get("auth_error") or "not authenticated: log in and send the token")
    return p


def maybe_principal(info: Info[Any, Any]) -> Principal | None:
    p: Principal | None = info.context.get("principal")
    return p


async def visible_cameras(info: Info[Any, Any]) -> dict[str, str]:
    """Camera id -> group, for every camera the caller may see."""
    p = principal(info)
    rows = await services(info).cameras.list_cameras()
    return {r.id: r.group for r in rows if p.sees_group(r.group)}


async def sees_camera(info: Info[Any, Any], camera_id: str) -> bool:
    row = await services(info).cameras.get_camera(camera_id)
    return row is not None and principal(info).sees_group(row.group)


def encode_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode("\x1f".join(str(p) for p in parts).encode()).decode()


def decode_cursor(cursor: str, n: int) -> list[str]:
    try:
        parts = base64.urlsafe_b64decode(cursor.encode()).decode().split("\x1f")
    except (ValueError, UnicodeDecodeError):
        raise ValueError("after: not a cursor returned by this API") from None
    if len(parts) != n:
        raise ValueError("after: not a cursor returned by this API")
    return parts
