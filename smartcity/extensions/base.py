"""The extension interface: the protocol an extension implements, the base of its pydantic
config, and the registration that names both (plus its own tables and migrations)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import MetaData

from smartcity.core.errors import SmartcityError

if TYPE_CHECKING:
    from smartcity.extensions.context import ExtensionContext

MAX_EXTENSIONS = 64
# a route prefix, an Alembic branch label and a Python package name at once
NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


class ExtensionError(SmartcityError):
    """An extension that cannot be registered, built or started."""


class ExtensionConfig(BaseModel):
    """Base of every extension's config entry: subclasses narrow `type` to a one-value
    Literal with that value as default (`type: Literal["bins"] = "bins"`), which is the
    registry key, the route prefix `/ext/<type>/` and the Alembic branch label."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: str = Field(description="Which extension this entry configures.", min_length=1, max_length=32)
    enabled: bool = Field(True, description="Start it with the server (False: keep the entry, do not start).")


class Extension(Protocol):
    """What the server starts after storage, the bus and alerting, and stops before them."""

    async def start(self, ctx: ExtensionContext) -> None:
        """Subscribe, start tasks, add routes and GraphQL fields through `ctx`. Raising here
        undoes what went through `ctx`; `stop()` is then not called."""
        ...

    async def stop(self) -> None:
        """Release what `start` acquired outside `ctx` (its subscriptions, tasks and routes are
        undone by the server right after)."""
        ...


@dataclass(frozen=True, slots=True)
class ExtensionSpec:
    """One registered extension type; `name` is its config `type`."""

    name: str
    config: type[ExtensionConfig]
    build: Callable[[ExtensionConfig], Extension]
    # its own tables (for the context's table access and for authors' autogenerate)
    metadata: MetaData | None = None
    # Alembic versions folder; its first revision has `branch_labels = (type,)` and no down_revision
    migrations: Path | None = None
    origin: str = ""  # the module that registered it (error messages)


def config_type(config: type[ExtensionConfig]) -> str:
    """The registry key of a config model: the single value of its `type` Literal."""
    field = config.model_fields.get("type")
    annotation = field.annotation if field is not None else None
    values = get_args(annotation) if get_origin(annotation) is Literal else ()
    if field is None or len(values) != 1 or not isinstance(values[0], str) or field.default != values[0]:
        raise ExtensionError(
            f"{config.__qualname__}: declare `type: Literal[\"name\"] = \"name\"` (one value, also the default)"
        )
    name: str = values[0]
    if not NAME.fullmatch(name):
        raise ExtensionError(f"{config.__qualname__}: extension type {name!r} must match {NAME.pattern}")
    return name
