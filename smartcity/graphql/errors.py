"""What the API tells a client about an error, and what it logs.

An expected error (a refused input, a missing permission, a closed subscription, a GraphQL
syntax or validation error) reaches the client as it is. Anything else (a database failure, a
bug) answers with an error id only: its text may hold SQL, parameters (a password hash once
did) or paths. The server logs the id with the exception's type, its first line and the SQL
statement without parameters, so an operator can match a user's report with the log.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy.exc import StatementError
from strawberry.types import ExecutionContext

from smartcity.core.errors import SmartcityError
from smartcity.core.logsafe import safe

log = logging.getLogger(__name__)

MAX_LOGGED = 300
"""Characters of an error's first line and of its SQL statement kept in the log."""


def is_expected(error: GraphQLError, expected: tuple[type[BaseException], ...]) -> bool:
    original = error.original_error
    return original is None or isinstance(original, (GraphQLError, *expected))


def describe(exc: BaseException) -> str:
    """Type and first line of an exception, and the SQL of a database error without its
    parameters (the driver's own message for a database error, not SQLAlchemy's, which lists
    the parameters)."""
    if isinstance(exc, StatementError) and exc.orig is not None:
        orig = exc.orig
        first = (str(orig).splitlines() or [""])[0]
        statement = " ".join((exc.statement or "").split())
        return (
            f"{type(exc).__name__}/{type(orig).__name__}: {safe(first[:MAX_LOGGED])}"
            f" [SQL: {safe(statement[:MAX_LOGGED])}]"
        )
    first = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {safe(first[:MAX_LOGGED])}"


def mask(error: GraphQLError) -> str:
    """Replace an unexpected error's message by an error id (in place: the same object is in
    the result sent to the client); returns the id."""
    error_id = secrets.token_hex(6)
    error.message = f"internal error {error_id}: the server log has the details"
    error.extensions = {"code": "INTERNAL_ERROR", "error_id": error_id}
    error.original_error = None
    return error_id


class MaskingSchema(strawberry.Schema):
    """A schema whose unexpected errors reach the client as an error id (see the module).
    `expected`: exception types whose message is meant for the client."""

    def __init__(self, *args: Any, expected: tuple[type[BaseException], ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected: tuple[type[BaseException], ...] = (ValueError, PermissionError, SmartcityError, *expected)

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            if is_expected(error, self.expected):
                log.debug("refused: %s", safe(error.message))
                continue
            original = error.original_error
            assert original is not None
            path = ".".join(str(p) for p in error.path or ())
            frames = "".join(traceback.format_tb(original.__traceback__))
            error_id = mask(error)
            log.error("unexpected error %s in %s: %s\n%s", error_id, path or "(operation)", describe(original), frames)
