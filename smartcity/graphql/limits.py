"""Limits of the API's inputs: query cost, and the depth and finiteness of JSON values.

A document whose estimated cost exceeds the limit is refused before it runs.

Cost model: every selected field costs 1; the selections under a field with a `first`
argument (a page of a list) cost `first` times over, taking the variable's value or the
argument's default (at most the largest page). Fragments count where they are spread. Depth, tokens and aliases have
their own limiters (strawberry's); this one bounds the rows a single request can ask for.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
)
from strawberry.extensions import SchemaExtension
from strawberry.scalars import JSON
from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY
from strawberry.types.scalar import ScalarDefinition

PAGE_ARGUMENT = "first"


class _Cost:
    def __init__(self, ctx: ValidationContext, variables: Mapping[str, Any], max_page: int) -> None:
        self.ctx = ctx
        self.variables = variables
        self.max_page = max_page

    def _first(self, field: FieldNode, parent: Any) -> int:
        arg = next((a for a in field.arguments or () if a.name.value == PAGE_ARGUMENT), None)
        value: Any = None
        if arg is None:
            definition = parent.fields.get(field.name.value) if hasattr(parent, "fields") else None
            if definition is not None and PAGE_ARGUMENT in definition.args:
                value = definition.args[PAGE_ARGUMENT].default_value
        elif isinstance(arg.value, IntValueNode):
            value = int(arg.value.value)
        elif isinstance(arg.value, VariableNode):
            value = self.variables.get(arg.value.name.value)
        try:
            # a page over the maximum is refused by its resolver, with a clearer message
            return min(self.max_page, max(1, int(value))) if value is not None else 1
        except (TypeError, ValueError):
            return 1

    def selection(self, node: SelectionSetNode | None, parent: Any, seen: frozenset[str]) -> int:
        if node is None:
            return 0
        total = 0
        schema = self.ctx.schema
        for sel in node.selections:
            if isinstance(sel, FieldNode):
                child_type = None
                if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
                    definition = parent.fields.get(sel.name.value)
                    child_type = get_named_type(definition.type) if definition is not None else None
                total += 1 + self._first(sel, parent) * self.selection(sel.selection_set, child_type, seen)
            elif isinstance(sel, InlineFragmentNode):
                cond = schema.get_type(sel.type_condition.name.value) if sel.type_condition else parent
                total += self.selection(sel.selection_set, cond, seen)
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                fragment = self.ctx.get_fragment(name)
                if fragment is None or name in seen:  # unknown or cyclic: other rules report it
                    continue
                cond = schema.get_type(fragment.type_condition.name.value)
                total += self.selection(fragment.selection_set, cond, seen | {name})
        return total


def cost_rule(max_cost: int, variables: Mapping[str, Any], max_page: int) -> type[ValidationRule]:
    class CostLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            root = self.context.schema.get_root_type(node.operation)
            cost = _Cost(self.context, variables, max_page).selection(node.selection_set, root, frozenset())
            if cost > max_cost:
                name = node.name.value if node.name else "anonymous"
                self.report_error(
                    GraphQLError(
                        f"'{name}' is too complex: estimated cost {cost} exceeds {max_cost} "
                        "(ask for smaller pages or fewer fields)",
                        node,
                    )
                )

    return CostLimit


class CostLimiter(SchemaExtension):
    """Refuses documents whose estimated cost exceeds `max_cost` (variables taken into account)."""

    def __init__(self, *, max_cost: int, max_page: int = 500) -> None:
        self.max_cost = max_cost
        self.max_page = max_page

    def on_operation(self) -> Iterator[None]:
        ec = self.execution_context
        ec.validation_rules = (*ec.validation_rules, cost_rule(self.max_cost, ec.variables or {}, self.max_page))
        yield


# ---------------------------------------------------------------- JSON values

MAX_JSON_DEPTH = 32
"""Deepest nesting of a JSON value in a request (rule params need 4 levels)."""


class JSONTooDeep(json.JSONDecodeError):
    """A request body nested deeper than the JSON parser can follow: a 400, like any malformed body."""

    def __init__(self, doc: str) -> None:
        super().__init__("JSON nested too deeply", doc, 0)


def decode_request_json(data: str | bytes) -> Any:
    """`json.loads` that answers a too-deep document with JSONTooDeep instead of a RecursionError."""
    try:
        return json.loads(data)
    except RecursionError:
        raise JSONTooDeep(data[:64].decode(errors="replace") if isinstance(data, bytes) else data[:64]) from None


Trail = tuple[Any, "Trail"] | None  # (key, parent): a path built only when an error names it


def _path(trail: Trail) -> str:
    parts: list[str] = []
    while trail is not None:
        key, trail = trail
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(reversed(parts)).lstrip(".") or "(root)"


def checked_json(value: Any) -> Any:
    """A JSON input as given, or ValueError naming where it nests too deep or holds NaN/Infinity."""
    stack: list[tuple[Any, int, Trail]] = [(value, 0, None)]
    while stack:  # iterative, so that no input can exhaust the stack
        v, depth, trail = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels at {_path(trail)}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{_path(trail)}: {v} is not a finite number (NaN and Infinity are not JSON)")
        if isinstance(v, dict):
            stack.extend((x, depth + 1, (k, trail)) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, depth + 1, (i, trail)) for i, x in enumerate(v))
    return value


def finite_json(value: Any) -> Any:
    """`value` with every NaN or Infinity replaced by null: output stays valid JSON whatever was stored."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


# the JSON scalar, same name and description (the SDL does not change), with checked inputs;
# outputs are made valid JSON once per response, by GraphQLApp.encode_json, only when needed
JSON_SCALAR: ScalarDefinition = dataclasses.replace(DEFAULT_SCALAR_REGISTRY[JSON], parse_value=checked_json)
