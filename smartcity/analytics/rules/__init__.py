"""The rule types shipped with smartcity, one module per type, all registered on import.

Adding a rule type is adding a module here (its name is free; `<type>.py` by convention) whose
Rule subclass carries `@register_rule("<type>")`: every module of this package whose name does
not start with `_` is imported below. Modules starting with `_` hold machinery several rule
types share (crossing a line, staying in a zone, standing still).
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
