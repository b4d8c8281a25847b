"""Pydantic field types for rule parameters: polygons, lines and directions with clear errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from smartcity.analytics.geometry import (
    MAX_POLYGON_POINTS,
    validate_direction,
    validate_line,
    validate_polygon,
)

MAX_CLASS_NAMES = 100
"""Most class names in one list of a rule (its `classes`, a type's own class lists)."""


def at_most(limit: int, what: str, unit: str) -> Callable[[Any], Any]:
    """A before-validator that refuses a list longer than `limit` before any item is looked at."""

    def check(v: Any) -> Any:
        if isinstance(v, list | tuple) and len(v) > limit:
            raise ValueError(f"{what} has at most {limit} {unit}, got {len(v)}")
        return v

    return check


def _polygon(v: list[list[float]]) -> list[list[float]]:
    return [list(p) for p in validate_polygon(v)]


def _line(v: list[list[float]]) -> list[list[float]]:
    return [list(p) for p in validate_line(v)]


def _direction(v: list[float]) -> list[float]:
    validate_direction(v)
    return [float(x) for x in v]


def _box(v: list[float]) -> list[float]:
    if len(v) != 4:
        raise ValueError(f"a box needs 4 numbers [x1, y1, x2, y2], got {len(v)}")
    x1, y1, x2, y2 = (float(x) for x in v)
    if not all(0.0 <= c <= 1.0 for c in (x1, y1, x2, y2)):
        raise ValueError("box coordinates are normalised to [0, 1]")
    if x2 <= x1 or y2 <= y1:
        raise ValueError("box must have x2 > x1 and y2 > y1")
    return [x1, y1, x2, y2]


def _polygon_size(v: Any) -> Any:
    if isinstance(v, list | tuple) and len(v) > MAX_POLYGON_POINTS + (len(v) > 1 and v[0] == v[-1]):
        raise ValueError(f"a polygon has at most {MAX_POLYGON_POINTS} points, got {len(v)}")
    return v


def _state_polygon_bound(schema: dict[str, Any]) -> None:
    schema["maxItems"] = MAX_POLYGON_POINTS + 1  # an explicitly closed ring repeats its first point
    schema["description"] = f"{schema.get('description', '')} At most {MAX_POLYGON_POINTS} points.".strip()


# the sizes are checked before pydantic converts the items: an oversized list costs one len()
PolygonParam = Annotated[
    list[list[float]],
    BeforeValidator(_polygon_size),
    AfterValidator(_polygon),
    Field(json_schema_extra=_state_polygon_bound),
]
LineParam = Annotated[list[list[float]], BeforeValidator(at_most(2, "a line", "points")), AfterValidator(_line)]
DirectionParam = Annotated[list[float], BeforeValidator(at_most(2, "a direction", "numbers")), AfterValidator(_direction)]
BoxParam = Annotated[list[float], BeforeValidator(at_most(4, "a box", "numbers")), AfterValidator(_box)]
ClassNames = Annotated[list[str], BeforeValidator(at_most(MAX_CLASS_NAMES, "a list of classes", "names"))]


class Params(BaseModel):
    """Base of every rule type's parameter model (unknown keys and non-finite numbers are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
