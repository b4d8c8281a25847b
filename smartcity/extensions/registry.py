"""The extension registry: types registered with `register_extension`, found in
`smartcity/extensions/<name>/` subpackages and in the `smartcity.extensions` entry points,
and the `extensions:` config entries validated against it."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy import MetaData

from smartcity.core.config import format_validation_error
from smartcity.core.errors import ConfigError
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


def _record_failure(name: str, exc: BaseException) -> None:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        why = f"extension {name!r} needs the Python package {exc.name!r}, which is not installed"
    else:
        why = f"extension {name!r} failed to load: {type(exc).__name__}: {exc}"
    _unavailable[name] = why
    log.error("%s", why)


def discover(package: str = PACKAGE) -> None:
    """Import every subpackage of `package` (each registers its extension) once; one that
    cannot be imported is remembered as unavailable, with the reason, instead of failing."""
    if package in _discovered:
        return
    _discovered.add(package)
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.ispkg:
            try:
                importlib.import_module(f"{package}.{info.name}")
            except Exception as exc:
                _record_failure(info.name, exc)
    if package == PACKAGE:
        for ep in entry_points(group=ENTRY_POINTS):
            try:
                ep.load()
            except Exception as exc:
                _record_failure(ep.name, exc)


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


def parse_extensions(entries: Sequence[Mapping[str, object]]) -> ExtensionPlan:
    """Validate `extensions:` entries through the registry; raises ConfigError listing every
    problem as `extensions[i].field: message` (an unknown type names the known ones)."""
    specs = registered()
    errors: list[str] = []
    if len(entries) > MAX_EXTENSIONS:
        raise ConfigError([f"extensions: at most {MAX_EXTENSIONS} entries"])
    out: list[Configured] = []
    missing: list[Unavailable] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"extensions[{i}]"
        kind = entry.get("type")
        if not isinstance(kind, str):
            errors.append(f"{where}.type: field required (one of: {', '.join(sorted(specs)) or 'none registered'})")
            continue
        if kind in seen:
            errors.append(f"{where}.type: extension {kind!r} configured twice (one entry per type)")
            continue
        seen.add(kind)
        spec = specs.get(kind)
        if spec is None:
            if kind in _unavailable:
                missing.append(Unavailable(kind, _unavailable[kind]))
            else:
                known = ", ".join(sorted(specs)) or "none registered"
                errors.append(f"{where}.type: unknown extension type {kind!r} (known: {known})")
            continue
        try:
            out.append(Configured(spec, spec.config.model_validate(dict(entry))))
        except ValidationError as exc:
            errors.extend(
                f"{where}{line[6:]}" if line.startswith("(root)") else f"{where}.{line}"
                for line in format_validation_error(exc)
            )
    if errors:
        raise ConfigError(errors)
    return ExtensionPlan(tuple(out), tuple(missing))
