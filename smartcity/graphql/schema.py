"""The strawberry schema of the operator API, with its protections.

Roles: viewer (read), operator (rules, incidents, signals), admin (cameras, groups, users,
audit, unpixelated live views). Every user is scoped to camera groups (none = all): a camera
outside the scope does not exist for them, in queries as in subscriptions. Every mutation is
audited. Requests are bounded in depth, tokens, aliases and estimated cost (page sizes
included); introspection is off unless `server.introspection` turns it on (the demo does), and
then answers authenticated users only.

The types live in `types`, the operations in `queries`, `mutations` and `subscriptions`; the
SDL committed as `schema.graphql` is the contract (a test fails when they drift).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import strawberry
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.scalars import JSON

from smartcity.graphql.errors import MaskingSchema
from smartcity.graphql.executor import ApiExecutionContext
from smartcity.graphql.extension_fields import SchemaConflict, SchemaParts, merge_parts
from smartcity.graphql.limits import JSON_SCALAR, CostLimiter
from smartcity.graphql.mutations import Mutation
from smartcity.graphql.queries import Query
from smartcity.graphql.subscriptions import Subscription, SubscriptionEnded
from smartcity.graphql.types import ts

MAX_DEPTH = 10
MAX_TOKENS = 2000
MAX_ALIASES = 20
MAX_COST = 10_000  # about two full pages (500) of events with their fields


class IntrospectionForUsers(SchemaExtension):
    """Introspection (`__schema`, `__type`; `__typename` stays) only for a caller with a principal:
    the schema maps the whole attack surface, an anonymous client gets none of it."""

    def on_operation(self) -> Iterator[None]:
        ec = self.execution_context
        context = ec.context if isinstance(ec.context, dict) else {}
        if context.get("principal") is None:
            ec.validation_rules = (*ec.validation_rules, NoSchemaIntrospectionCustomRule)
        yield


def make_schema(*, introspection: bool = True, parts: Sequence[SchemaParts] = ()) -> strawberry.Schema:
    """The API schema, with depth/token/alias/cost limits; introspection is refused to anonymous
    callers, and to everyone when `introspection` is False. `parts`: fields that extensions add
    (smartcity.graphql.extension_fields): a name already taken raises SchemaConflict."""
    query, mutation, subscription, guard = merge_parts(Query, Mutation, Subscription, parts)
    extensions: list[Any] = [
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: CostLimiter(max_cost=MAX_COST),
    ]
    if introspection:
        extensions.append(IntrospectionForUsers)
    else:
        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    if guard is not None:
        extensions.append(guard)
    return MaskingSchema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        extensions=extensions,
        expected=(SubscriptionEnded,),  # anything unexpected reaches the client as an error id
        scalar_overrides={JSON: JSON_SCALAR},  # inputs: finite and at most MAX_JSON_DEPTH deep
        execution_context_class=ApiExecutionContext,  # subscriptions that run for days stay flat
    )


schema = make_schema()
__all__ = ["SchemaConflict", "SchemaParts", "make_schema", "schema", "ts"]
