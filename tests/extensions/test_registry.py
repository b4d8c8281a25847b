"""The extension registry and the GraphQL parts: keys, discovery, config entries, field guard."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Literal

import pytest
import strawberry

from smartcity.core.errors import ConfigError
from smartcity.extensions import ExtensionConfig, ExtensionError, parse_extensions, register_extension
from smartcity.extensions.registry import discover
from smartcity.graphql.auth import Principal
from smartcity.graphql.schema import SchemaConflict, SchemaParts, make_schema


class NoLiteralConfig(ExtensionConfig):
    type: str = "loose"


class TwoValuesConfig(ExtensionConfig):
    type: Literal["a", "b"] = "a"


class UpperConfig(ExtensionConfig):
    type: Literal["Upper"] = "Upper"


@pytest.mark.parametrize("config", [NoLiteralConfig, TwoValuesConfig, UpperConfig])
def test_a_config_must_name_its_type_with_one_literal(config: type[ExtensionConfig]) -> None:
    with pytest.raises(ExtensionError):
        register_extension(config)


class TwiceConfig(ExtensionConfig):
    type: Literal["twice"] = "twice"


class Twice:
    def __init__(self, config: TwiceConfig) -> None:
        pass

    async def start(self, ctx: object) -> None:
        return None

    async def stop(self) -> None:
        return None


def test_one_type_one_registration() -> None:
    register_extension(TwiceConfig)(Twice)
    register_extension(TwiceConfig)(Twice)  # the same class again (a reload) is fine

    class Other(Twice):
        pass

    with pytest.raises(ExtensionError) as info:
        register_extension(TwiceConfig)(Other)
    assert "registered twice" in str(info.value)


def test_entries_are_checked_and_a_missing_dependency_is_not_a_config_error() -> None:
    register_extension(TwiceConfig)(Twice)
    discover("ext_fixture_pkg")
    plan = parse_extensions([{"type": "twice"}, {"type": "needs_missing"}])
    assert [e.name for e in plan.entries] == ["twice"]
    assert isinstance(plan.entries[0].config, TwiceConfig)
    assert [u.name for u in plan.unavailable] == ["needs_missing"]
    assert plan.unavailable[0].reason == (
        "extension 'needs_missing' needs the Python package 'smartcity_test_no_such_dependency', which is not installed"
    )
    with pytest.raises(ConfigError) as info:
        parse_extensions([{"type": "twice"}, {"type": "twice", "enabled": "maybe"}, {"kind": "x"}])
    assert info.value.errors[0] == "extensions[1].type: extension 'twice' configured twice (one entry per type)"
    assert info.value.errors[1].startswith("extensions[2].type: field required (one of: ")


@strawberry.type
class Ticks:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[int, None]:
        yield 1


@strawberry.type
class Bump:
    @strawberry.mutation
    def bump(self) -> int:
        return 1


VIEWER = Principal(1, "v", "viewer", None)
OPERATOR = Principal(2, "o", "operator", None)


async def test_added_fields_are_guarded_before_any_resolver() -> None:
    schema = make_schema(parts=[SchemaParts(mutation=(Bump,), subscription=(Ticks,))])
    stream = await schema.subscribe("subscription { ticks }", context_value={"principal": None})
    first = await stream.__anext__()
    await stream.aclose()
    assert first.errors is not None
    assert "not authenticated" in first.errors[0].message
    refused = await schema.execute("mutation { bump }", context_value={"principal": VIEWER})
    assert refused.errors is not None
    assert "operator or admin" in refused.errors[0].message
    done = await schema.execute("mutation { bump }", context_value={"principal": OPERATOR})
    assert done.errors is None
    assert done.data == {"bump": 1}


def test_an_added_field_never_replaces_one_of_the_api() -> None:
    @strawberry.type
    class Login:
        @strawberry.mutation
        def login(self) -> int:
            return 0

    with pytest.raises(SchemaConflict) as info:
        make_schema(parts=[SchemaParts(mutation=(Login,))])
    assert "Mutation.login" in str(info.value)
    with pytest.raises(SchemaConflict):
        make_schema(parts=[SchemaParts(mutation=(Bump,)), SchemaParts(mutation=(Bump,))])
