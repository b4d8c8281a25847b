"""The rule types shipped with smartcity, one module per type, all registered on import.

Adding a rule type is adding a module here (its name is free; `<type>.py` by convention) whose
Rule subclass carries `@register_rule("<type>")`, or a module of your own package declared under
the `smartcity.rules` entry-point group (see `smartcity.core.plugins`). Modules starting with `_`
hold machinery several rule types share (crossing a line, staying in a zone, standing still).
"""

from __future__ import annotations

from smartcity.core.plugins import PluginFailure, load_plugins

ENTRY_POINTS = "smartcity.rules"

unavailable: tuple[PluginFailure, ...] = load_plugins("rule type", __name__, __path__, group=ENTRY_POINTS)
