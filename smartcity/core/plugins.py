"""Finding plug-ins: the modules of a package and the entry points of an installed distribution.

Every kind of plug-in (rule types, models, alert channels, extensions) registers itself when its
module is imported. `load_plugins` imports the modules shipped in the kind's package and those a
third-party distribution declares under the kind's entry-point group, e.g. in its pyproject.toml:

    [project.entry-points."smartcity.rules"]
    speeding = "city_rules.speeding"

so a new plug-in is one module plus its config entry, and it is found in every process that
imports the kind (the server and the Ray actors alike). A module that cannot be imported (a
missing optional dependency) is logged with what it needs and reported; the others load.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A plug-in module that could not be imported, and why (for logs, health and config errors)."""

    name: str
    reason: str
    missing_package: str | None = None


def _failure(kind: str, name: str, exc: BaseException) -> PluginFailure:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        why = f"{kind} {name!r} needs the Python package {exc.name!r}, which is not installed"
        return PluginFailure(name, why, exc.name)
    return PluginFailure(name, f"{kind} {name!r} failed to load: {type(exc).__name__}: {exc}")


def load_plugins(
    kind: str,
    package: str,
    path: Iterable[str],
    *,
    group: str | None = None,
    packages_only: bool = False,
) -> tuple[PluginFailure, ...]:
    """Import every module of `package` (found on `path`; names starting with `_` are shared
    machinery, not plug-ins) and every entry point of `group`. Returns what failed to load,
    each already logged once."""
    loaders: list[tuple[str, Callable[[], object]]] = []
    for info in pkgutil.iter_modules(list(path)):
        if info.name.startswith("_") or (packages_only and not info.ispkg):
            continue
        loaders.append((info.name, _importer(f"{package}.{info.name}")))
    if group is not None:
        loaders.extend((ep.name, ep.load) for ep in entry_points(group=group))
    failures: list[PluginFailure] = []
    for name, load in loaders:
        try:
            load()
        except Exception as exc:  # a broken plug-in must not stop the others
            failure = _failure(kind, name, exc)
            log.error("%s; the other %ss load", failure.reason, kind)
            failures.append(failure)
    return tuple(failures)


def _importer(module: str) -> Callable[[], object]:
    def load() -> object:
        return importlib.import_module(module)

    return load
