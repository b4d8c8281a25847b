"""Pydantic field types for rule parameters: polygons, lines and directions with clear errors."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from smartcity.analytics.geometry import validate_direction, validate_line, validate_polygon


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


PolygonParam = Annotated[list[list[float]], AfterValidator(_polygon)]
LineParam = Annotated[list[list[float]], AfterValidator(_line)]
DirectionParam = Annotated[list[float], AfterValidator(_direction)]
BoxParam = Annotated[list[float], AfterValidator(_box)]


class Params(BaseModel):
    """Base of every rule type's parameter model (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
