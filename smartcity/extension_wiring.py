"""Wiring of the extensions into the server, for app.py and `smartcity migrate`: their Alembic
branches, the host that runs them (their routes behind the API's sign-in), and the GraphQL
schema with their fields."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from smartcity.core.config import Settings
from smartcity.extensions import Caller, ExtensionPlan, GraphQLParts, parse_extensions, registered
from smartcity.storage.db import MigrationBranch

if TYPE_CHECKING:  # the API's modules are imported where they are used: `smartcity migrate` needs none
    import strawberry
    from starlette.requests import Request

    from smartcity.extensions.host import ExtensionHost
    from smartcity.graphql.auth import Principal


def extension_branches(plan: ExtensionPlan) -> tuple[list[MigrationBranch], list[MigrationBranch]]:
    """The Alembic branches of the configured extensions (migrated and checked), and of every
    registered one (whose revisions a database may hold from an earlier configuration)."""
    configured = [MigrationBranch(e.name, e.spec.migrations) for e in plan.entries if e.spec.migrations is not None]
    known = [MigrationBranch(n, spec.migrations) for n, spec in registered().items() if spec.migrations is not None]
    return configured, known


def extension_schema(settings: Settings, parts: Sequence[GraphQLParts]) -> strawberry.Schema:
    """The API schema with the extensions' fields (raises SchemaConflict on a name taken)."""
    from smartcity.graphql.schema import SchemaParts, make_schema

    extra = [SchemaParts(p.query, p.mutation, p.subscription) for p in parts]
    return make_schema(introspection=settings.server.introspection, parts=extra)


def extension_host(settings: Settings, principal: Callable[[Request], Awaitable[Principal | None]]) -> ExtensionHost:
    """The configured extensions (raises ConfigError on an invalid entry), not started yet;
    `principal`: the API caller of a request, as the plain HTTP routes check it."""
    from smartcity.extensions.host import ExtensionHost

    async def caller(request: Request) -> Caller | None:
        p = await principal(request)
        return None if p is None else Caller(p.username, p.role, p.groups)

    return ExtensionHost(
        parse_extensions(settings.extensions), caller, lambda parts: extension_schema(settings, parts)
    )
