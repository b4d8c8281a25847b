"""The registry of rule types keyed by their `type` (`RULE_TYPES`), and what readers ask of it.

A rule type is a `Rule` subclass registered with `@register_rule("<type>")`. The types shipped
with smartcity live one per module in `smartcity.analytics.rules` and are found there when
`smartcity.analytics` is imported; a module outside the package registers its own the same way
(it only has to be imported before rules of that type are validated).

This module imports no other analytics module at run time (the Rule class is only named in
annotations), so that the spec, the rule base class and the rule modules can all import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

if TYPE_CHECKING:
    from smartcity.analytics.base import Rule
    from smartcity.analytics.spec import RuleSpec

R = TypeVar("R", bound="type[Rule]")

RULE_TYPES: dict[str, type[Rule]] = {}


def register_rule(name: str) -> Callable[[R], R]:
    """Class decorator: make a Rule subclass available under `name` (its `type` in a RuleSpec).

    Registering another class under a taken name is an error; registering the same class again
    (a module imported twice) is not.
    """

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


def required_model_roles(specs: Iterable[RuleSpec]) -> frozenset[str]:
    """The second-stage model roles (e.g. "pose") that the enabled rules among `specs` need."""
    roles: set[str] = set()
    for spec in specs:
        cls = RULE_TYPES.get(spec.type)
        if spec.enabled and cls is not None:
            roles |= cls.model_roles
    return frozenset(roles)


def reads_pixels(specs: Iterable[RuleSpec]) -> bool:
    """Whether one of the enabled rules among `specs` reads the picture (see `Rule.reads_pixels`)."""
    for spec in specs:
        cls = RULE_TYPES.get(spec.type)
        if spec.enabled and cls is not None and cls.reads_pixels:
            return True
    return False


def renders_evidence(rule_type: str) -> bool:
    """Whether routine (INFO) events of `rule_type` get an evidence snapshot (those of a type no
    longer registered do: better a snapshot too many than a missing one)."""
    cls = RULE_TYPES.get(rule_type)
    return cls is None or cls.renders_evidence


def signal_rule_types() -> list[str]:
    """The rule types that can take signal states pushed from outside."""
    return sorted(name for name, cls in RULE_TYPES.items() if cls.accepts_signals)


def takes_signal_states(rule_type: str, params: Mapping[str, Any]) -> bool:
    """Whether a stored rule of `rule_type` with these params takes pushed signal states (a type
    that can may still read its signal elsewhere, e.g. from the picture)."""
    cls = RULE_TYPES.get(rule_type)
    if cls is None or not cls.accepts_signals:
        return False
    try:
        parsed = cls.Params.model_validate(params)
    except ValidationError:
        return False
    return cls.takes_signals(parsed)
