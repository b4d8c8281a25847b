"""Fields that extensions add to the API: merged into Query, Mutation and Subscription without
overriding a field already there, and refused before any resolver runs to anonymous callers
(every added field) and to viewers (added mutations)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import strawberry
from graphql import FieldNode, GraphQLError, ValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import get_object_definition

from smartcity.graphql.auth import Principal

NOT_AUTHENTICATED = "not authenticated: log in and send the token"
NOT_OPERATOR = "an operator or admin role is needed"


class SchemaConflict(ValueError):
    """An extension's field has the name of a field already in the API."""


@dataclass(frozen=True, slots=True)
class SchemaParts:
    """Strawberry types whose fields join the root types of the API."""

    query: tuple[type[object], ...] = ()
    mutation: tuple[type[object], ...] = ()
    subscription: tuple[type[object], ...] = ()


def _field_names(t: type[object]) -> list[str]:
    definition = get_object_definition(t, strict=True)
    names = NameConverter()  # the schema's default: auto camel case
    return [names.get_graphql_name(f) for f in definition.fields]


def _merge(root: str, base: type[object], extra: Sequence[type[object]]) -> tuple[type[object], frozenset[str]]:
    if not extra:
        return base, frozenset()
    taken = set(_field_names(base))
    added: set[str] = set()
    for t in extra:
        for name in _field_names(t):
            if name in taken:
                raise SchemaConflict(f"{root}.{name} (from {t.__qualname__}) is already a field of the API")
            taken.add(name)
            added.add(name)
    merged: type[object] = strawberry.type(type(root, (*extra, base), {}))
    return merged, frozenset(added)


def _deny(denied: Mapping[str, frozenset[str]], reason: str) -> type[ValidationRule]:
    class DenyFields(ValidationRule):
        def enter_field(self, node: FieldNode, *_args: object) -> None:
            parent = self.context.get_parent_type()
            if parent is not None and node.name.value in denied.get(parent.name, frozenset()):
                self.report_error(GraphQLError(f"{reason} ({node.name.value})", node))

    return DenyFields


class FieldGuard(SchemaExtension):
    """Adds a validation rule refusing the extensions' fields the caller may not use (one
    instance per operation: strawberry sets its execution context)."""

    def __init__(self, anonymous: type[ValidationRule], viewer: type[ValidationRule]) -> None:
        self._anonymous = anonymous
        self._viewer = viewer

    def on_operation(self) -> Iterator[None]:
        ec = self.execution_context
        context = ec.context if isinstance(ec.context, dict) else {}
        p = context.get("principal")
        if not isinstance(p, Principal):
            ec.validation_rules = (*ec.validation_rules, self._anonymous)
        elif not p.can_operate:
            ec.validation_rules = (*ec.validation_rules, self._viewer)
        yield


def merge_parts(
    query: type[object], mutation: type[object], subscription: type[object], parts: Sequence[SchemaParts]
) -> tuple[type[object], type[object], type[object], Callable[[], FieldGuard] | None]:
    """The root types with the parts' fields added, and the factory of the guard of those
    fields (None: no part)."""
    q, qa = _merge("Query", query, [t for p in parts for t in p.query])
    m, ma = _merge("Mutation", mutation, [t for p in parts for t in p.mutation])
    s, sa = _merge("Subscription", subscription, [t for p in parts for t in p.subscription])
    if not (qa or ma or sa):
        return q, m, s, None
    anonymous = _deny({"Query": qa, "Mutation": ma, "Subscription": sa}, NOT_AUTHENTICATED)
    viewer = _deny({"Mutation": ma}, NOT_OPERATOR)
    return q, m, s, lambda: FieldGuard(anonymous, viewer)
