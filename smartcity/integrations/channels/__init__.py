"""The built-in alert channels, one module each; importing this package registers every module
in it, so a new built-in channel is one new module here and nothing else.

A module whose optional dependency is missing is logged and left out; the other channels run
(a policy naming the missing one is then refused by the config check). A channel of a third
party is a module of its own package declared under the `smartcity.channels` entry-point group
(see `smartcity.core.plugins` and README, "Adding an alert channel").
"""

from __future__ import annotations

from smartcity.core.plugins import PluginFailure, load_plugins

ENTRY_POINTS = "smartcity.channels"

unavailable: tuple[PluginFailure, ...] = load_plugins("alert channel", __name__, __path__, group=ENTRY_POINTS)
