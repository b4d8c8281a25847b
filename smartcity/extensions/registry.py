"""The extension registry: types registered with `register_extension`, found in
`smartcity/extensions/<name>/` subpackages and in the `smartcity.extensions` entry points,
and the `extensions:` config entries validated against it."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy import MetaData

from smartcity.core.config import format_validation_error
from smartcity.core.errors import ConfigError
from smartcity.core.plugins import load_plugins
from smartcity.extensions.base import (
    MAX_EXTENSIONS,
    Extension,
    ExtensionConfig,
    ExtensionError,
    ExtensionSpec,
    config_type,
)

log = logging.getLogger(__name__)

PACKAGE = "smartcity.extensions"
ENTRY_POINTS = "smartcity.extensions"

C = TypeVar("C", bound=ExtensionConfig)
E = TypeVar("E", bound=Extension)

_registry: dict[str, ExtensionSpec] = {}
_unavailable: dict[str, str] = {}  # type -> why it cannot load (a missing dependency)
_discovered: set[str] = set()


def register_extension(
    config: type[C], *, metadata: MetaData | None = None, migrations: Path | None = None
) -> Callable[[Callable[[C], E]], Callable[[C], E]]:
    """Class (or factory) decorator: `@register_extension(BinsConfig, metadata=..., migrations=...)`
    over `class Bins:` whose `__init__(config)` takes the validated config."""
    key = config_type(config)

    def decorate(factory: Callable[[C], E]) -> Callable[[C], E]:
        origin = f"{factory.__module__}.{getattr(factory, '__qualname__', factory)}"
        known = _registry.get(key)
        if known is not None and known.origin != origin:
            raise ExtensionError(f"extension type {key!r} registered twice: {known.origin} and {origin}")

        def build(cfg: ExtensionConfig) -> Extension:
            if not isinstance(cfg, config):
                raise ExtensionError(f"extension {key!r} got a {type(cfg).__name__}, not a {config.__name__}")
            return factory(cfg)

        _registry[key] = ExtensionSpec(key, config, build, metadata, migrations, origin)
        _unavailable.pop(key, None)
        return factory

    return decorate


def discover(package: str = PACKAGE) -> None:
    """Import every subpackage of `package` (each registers its extension) and, for ours, every
    `smartcity.extensions` entry point, once; one that cannot be imported is remembered as
    unavailable, with the reason, instead of failing."""
    if package in _discovered:
        return
    _discovered.add(package)
    pkg = importlib.import_module(package)
    group = ENTRY_POINTS if package == PACKAGE else None
    for failure in load_plugins("extension", package, pkg.__path__, group=group, packages_only=True):
        _unavailable[failure.name] = failure.reason


def registered() -> dict[str, ExtensionSpec]:
    """Every registered extension type (after discovery)."""
    discover()
    return dict(_registry)


@dataclass(frozen=True, slots=True)
class Configured:
    """One valid `extensions:` entry and its registration."""

    spec: ExtensionSpec
    config: ExtensionConfig

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A configured extension whose code could not be imported: logged, not started."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class ExtensionPlan:
    """The configured extensions, in config order."""

    entries: tuple[Configured, ...] = ()
    unavailable: tuple[Unavailable, ...] = ()


def _entry(where: str, entry: Mapping[str, object], specs: Mapping[str, ExtensionSpec]) -> Configured | Unavailable | list[str]:
    """One entry checked: its registration and valid config, unavailable, or its errors."""
    kind = entry.get("type")
    if not isinstance(kind, str):
        return [f"{where}.type: field required (one of: {', '.join(sorted(specs)) or 'none registered'})"]
    spec = specs.get(kind)
    if spec is None:
        if kind in _unavailable:
            return Unavailable(kind, _unavailable[kind])
        return [f"{where}.type: unknown extension type {kind!r} (known: {', '.join(sorted(specs)) or 'none registered'})"]
    try:
        return Configured(spec, spec.config.model_validate(dict(entry)))
    except ValidationError as exc:
        return [
            f"{where}{line[6:]}" if line.startswith("(root)") else f"{where}.{line}"
            for line in format_validation_error(exc)
        ]


def parse_extensions(entries: Sequence[Mapping[str, object]]) -> ExtensionPlan:
    """Validate `extensions:` entries through the registry; raises ConfigError listing every
    problem as `extensions[i].field: message` (an unknown type names the known ones)."""
    if len(entries) > MAX_EXTENSIONS:
        raise ConfigError([f"extensions: at most {MAX_EXTENSIONS} entries"])
    specs = registered()
    errors: list[str] = []
    out: list[Configured] = []
    missing: list[Unavailable] = []
    seen: set[object] = set()
    for i, entry in enumerate(entries):
        kind = entry.get("type")
        if isinstance(kind, str) and kind in seen:
            errors.append(f"extensions[{i}].type: extension {kind!r} configured twice (one entry per type)")
            continue
        seen.add(kind)
        got = _entry(f"extensions[{i}]", entry, specs)
        if isinstance(got, Configured):
            out.append(got)
        elif isinstance(got, Unavailable):
            missing.append(got)
        else:
            errors.extend(got)
    if errors:
        raise ConfigError(errors)
    return ExtensionPlan(tuple(out), tuple(missing))
