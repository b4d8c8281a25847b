"""Typed errors shared by every layer."""

from __future__ import annotations


class SmartcityError(Exception):
    """Base of the project's own errors."""


class ValidationFailed(SmartcityError, ValueError):
    """Input that does not match its schema; the message names the offending field."""


class ConfigError(SmartcityError):
    """An invalid configuration; `errors` holds one `path: message` line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  {e}" for e in errors))
        self.errors = errors


class NotFound(SmartcityError, LookupError):
    """A camera, rule, incident... that does not exist (or is outside the caller's scope)."""


class SubscriptionClosed(SmartcityError):
    """A bus subscription was closed; `reason` says why (overflow, shutdown, unsubscribed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
