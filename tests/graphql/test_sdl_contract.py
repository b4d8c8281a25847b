"""The committed SDL is the API contract: it must match the code exactly."""

from __future__ import annotations

from pathlib import Path

import smartcity.graphql
from smartcity.graphql.schema import make_schema

SDL = Path(smartcity.graphql.__file__).parent / "schema.graphql"


def test_committed_sdl_matches_the_code() -> None:
    code = make_schema().as_str().rstrip() + "\n"
    assert SDL.read_text() == code, (
        "smartcity/graphql/schema.graphql is out of date: regenerate it with\n"
        "  .venv/bin/python -c \"from smartcity.graphql.schema import make_schema; "
        "open('smartcity/graphql/schema.graphql','w').write(make_schema().as_str().rstrip()+'\\\\n')\""
    )


def test_introspection_can_be_refused() -> None:
    result = make_schema(introspection=False).execute_sync("{ __schema { types { name } } }")
    assert result.errors
    assert "introspection" in str(result.errors[0]).lower()
