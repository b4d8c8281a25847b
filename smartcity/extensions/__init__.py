"""Extensions: code that consumes events and acts on an outside system (bin-fill routing,
traffic-signal control), each in `smartcity/extensions/<name>/` or a third-party package.

An extension implements `Extension` (`async start(ctx)`, `async stop()`), declares an
`ExtensionConfig` subclass whose `type` Literal is its name, and registers both with
`@register_extension(Config, metadata=..., migrations=...)`. See README, "Writing an extension".
"""

from smartcity.extensions.base import Extension, ExtensionConfig, ExtensionError, ExtensionSpec
from smartcity.extensions.context import (
    Caller,
    ExtensionContext,
    ExtensionServices,
    ExtensionTables,
    GraphQLParts,
    caller_of,
)
from smartcity.extensions.registry import ExtensionPlan, parse_extensions, register_extension, registered

__all__ = [
    "Caller",
    "Extension",
    "ExtensionConfig",
    "ExtensionContext",
    "ExtensionError",
    "ExtensionPlan",
    "ExtensionServices",
    "ExtensionSpec",
    "ExtensionTables",
    "GraphQLParts",
    "caller_of",
    "parse_extensions",
    "register_extension",
    "registered",
]
