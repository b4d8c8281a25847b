"""Typed outcomes shared by the resolvers: role checks, validation errors naming the field,
page-size bounds. A mutation answers a refused input with one of these, never a 500."""

from __future__ import annotations

from typing import Any

from strawberry.types import Info

from smartcity.core.errors import ValidationFailed
from smartcity.graphql.access import services
from smartcity.graphql.auth import Principal
from smartcity.graphql.types import FieldError, NotAuthorized, User, ValidationError


class ValidationLines(ValidationFailed):
    """`path: message` lines of a refused input."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def invalid(field: str, message: str) -> ValidationError:
    return ValidationError(message="invalid input", errors=[FieldError(field=field, message=message)])


def validation(exc: ValidationFailed) -> ValidationError:
    """A ValidationFailed (one `path: message` line, or `errors` lines) as a typed error."""
    lines = list(getattr(exc, "errors", None) or [str(exc)])
    errors = []
    for line in lines:
        field, _, message = str(line).partition(": ")
        errors.append(FieldError(field=field if message else "", message=message or field))
    return ValidationError(message="invalid input", errors=errors)


def denied(p: Principal | None, need: str) -> NotAuthorized | None:
    """None when `p` holds role `need` (viewer < operator < admin), else why not."""
    if p is None:
        return NotAuthorized(message="not authenticated: log in and send the token")
    if need == "operator" and not p.can_operate:
        return NotAuthorized(message=f"role {p.role} may not do this (operator or admin needed)")
    if need == "admin" and not p.is_admin:
        return NotAuthorized(message=f"role {p.role} may not do this (admin needed)")
    return None


def page_size(first: int, info: Info[Any, Any]) -> int:
    cap = services(info).max_page
    if not 1 <= first <= cap:
        raise ValueError(f"first: must be between 1 and {cap}")
    return first


def user_out(u: Any) -> User:
    return User(id=u.id, username=u.username, role=u.role, groups=list(u.groups), disabled=u.disabled)
