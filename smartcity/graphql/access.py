"""Who is calling and what they may see: the principal of a request and camera scoping."""

from __future__ import annotations

import base64
from typing import Any

from strawberry.types import Info

from smartcity.graphql.auth import Principal
from smartcity.graphql.context import ApiServices


class NotAuthenticated(PermissionError):
    """No valid token: raised as a GraphQL error on queries and subscriptions."""


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
