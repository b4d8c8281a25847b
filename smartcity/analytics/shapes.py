"""The drawable shapes of a rule: every polyline or polygon in its parameters (normalised)."""

from __future__ import annotations

from typing import Any


def rule_shapes(params: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """Every polyline/polygon in a rule's parameters (normalised points), for drawing."""
    shapes: list[list[tuple[float, float]]] = []

    def visit(v: Any) -> None:
        if isinstance(v, list | tuple) and len(v) >= 2 and all(_is_point(p) for p in v):
            shapes.append([(float(p[0]), float(p[1])) for p in v])
        elif isinstance(v, dict):
            for x in v.values():
                visit(x)
        elif isinstance(v, list | tuple):
            for x in v:
                visit(x)

    visit(params)
    return shapes


def _is_point(p: Any) -> bool:
    return (
        isinstance(p, list | tuple)
        and len(p) == 2
        and all(isinstance(c, int | float) and not isinstance(c, bool) for c in p)
    )
