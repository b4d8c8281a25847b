"""`JsonValue`: a value that `json.dumps` writes as is, for reports whose shape is free-form
(the health report's details) without falling back to Any."""

from __future__ import annotations

from typing import TypeAlias

JsonValue: TypeAlias = "str | int | float | bool | None | list[JsonValue] | dict[str, JsonValue]"
