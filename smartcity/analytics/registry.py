"""The registry of rule types by name (`RULE_TYPES`), filled by the rule modules on import."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from smartcity.analytics.base import Rule

R = TypeVar("R", bound="type[Rule]")

RULE_TYPES: dict[str, type[Rule]] = {}


def register(name: str) -> Callable[[R], R]:
    """Class decorator: make a Rule subclass available under `name` (its `type` in a RuleSpec)."""

    def deco(cls: R) -> R:
        if name in RULE_TYPES and RULE_TYPES[name] is not cls:
            raise ValueError(f"rule type {name!r} is already registered")
        cls.type_name = name
        RULE_TYPES[name] = cls
        return cls

    return deco


def params_schema(cls: type[Rule]) -> dict[str, Any]:
    """The JSON schema of a rule type's parameters, which also says what the rule watches when its
    `classes` is empty: `x-default-classes` (for programs) and a sentence of its description."""
    schema = cls.Params.model_json_schema()
    defaults = list(cls.default_classes)
    note = f"Default classes (when the rule's `classes` is empty): {', '.join(defaults)}."
    schema["x-default-classes"] = defaults
    schema["description"] = f"{schema['description'].rstrip()} {note}" if schema.get("description") else note
    return schema


# The built-in rule types register themselves on import.
from smartcity.analytics import rules_motion, rules_static  # noqa: E402,F401
