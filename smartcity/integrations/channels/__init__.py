"""The built-in alert channels, one module each; importing this package registers every module
in it, so a new built-in channel is one new module here and nothing else.

A module whose optional dependency is missing is logged and left out; the other channels run
(a policy naming the missing one is then refused by the config check). A channel of a third
party registers itself the same way when its module is imported (see README, "Adding an alert
channel").
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

log = logging.getLogger(__name__)


def _load_builtin_channels() -> None:
    for mod in pkgutil.iter_modules(__path__):
        try:
            importlib.import_module(f"{__name__}.{mod.name}")
        except ImportError as exc:
            log.error("alert channel %s is not available (%s); the other channels run", mod.name, exc)


_load_builtin_channels()
