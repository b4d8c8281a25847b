"""The junction model: signal groups, lane groups seen by cameras, phases, the conflict matrix,
timings (minimum and maximum green, amber, all-red, pedestrian walk and clearance) and cycle
limits, validated with errors that name the problem. Pure: no I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ID = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_GROUPS = 64
MAX_PHASES = 16
MAX_LANE_GROUPS = 64


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RuleRef(_Strict):
    """A rule of a camera (its id as in the rules of that camera)."""

    camera_id: str = Field(pattern=ID, description="Camera the rule is drawn on.")
    rule_id: str = Field(pattern=ID, description="The rule's id.")


class SignalGroup(_Strict):
    """Signal heads that always show the same aspect (one movement, or one pedestrian crossing)."""

    id: str = Field(pattern=ID, description="Signal group id (unique in the junction).")
    kind: Literal["vehicle", "pedestrian"] = Field(
        "vehicle", description="Vehicle signal or pedestrian signal."
    )
    min_green_s: float = Field(5.0, ge=1, le=120, description="Vehicle: shortest green once started.")
    max_green_s: float = Field(
        60.0, ge=2, le=300, description="Longest green before the safety layer ends it."
    )
    amber_s: float = Field(3.0, ge=2, le=8, description="Vehicle: amber after green.")
    walk_s: float = Field(7.0, ge=4, le=60, description="Pedestrian: shortest walk (green man) once started.")
    clearance_s: float = Field(
        10.0, ge=2, le=60, description="Pedestrian: flashing clearance after the walk."
    )
    red_light_rules: list[RuleRef] = Field(
        default_factory=list,
        max_length=16,
        description="red_light rules (signal source external) fed this group's state.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> SignalGroup:
        if self.max_green_s < self.shortest_green_s:
            raise ValueError(
                f"max_green_s ({self.max_green_s}) is below the shortest green ({self.shortest_green_s})"
            )
        return self

    @property
    def shortest_green_s(self) -> float:
        return self.walk_s if self.kind == "pedestrian" else self.min_green_s

    @property
    def ending_s(self) -> float:
        """Amber (vehicle) or flashing clearance (pedestrian) between green and red."""
        return self.clearance_s if self.kind == "pedestrian" else self.amber_s


class LaneGroup(_Strict):
    """Lanes of one approach served by the same signal groups, and the camera rules that see them."""

    id: str = Field(pattern=ID, description="Lane group id (unique in the junction).")
    signal_groups: list[str] = Field(
        min_length=1, max_length=8, description="Signal groups that serve these lanes."
    )
    queue: RuleRef | None = Field(None, description="occupancy rule over the queue zone (vehicles waiting).")
    count: RuleRef | None = Field(None, description="line_count rule on the approach (arrivals, flow).")
    downstream: RuleRef | None = Field(
        None, description="occupancy rule over the exit (max-pressure's downstream queue)."
    )
    arrivals_direction: str = Field(
        "in",
        min_length=1,
        max_length=32,
        description="The count rule's direction name for vehicles approaching.",
    )
    lanes: int = Field(1, ge=1, le=8, description="Number of lanes.")
    saturation_flow_vph: float = Field(
        1800.0, ge=300, le=2400, description="Per lane, vehicles per green hour."
    )
    design_flow_vph: float = Field(
        300.0, ge=0, le=20_000, description="Flow used for the fixed plan until counts are measured."
    )


class Phase(_Strict):
    """Signal groups green together."""

    id: str = Field(pattern=ID, description="Phase id (unique in the junction).")
    groups: list[str] = Field(
        min_length=1, max_length=MAX_GROUPS, description="Signal groups green in this phase."
    )


class CycleLimits(_Strict):
    min_s: float = Field(30.0, ge=10, le=300, description="Shortest cycle of a computed fixed plan.")
    max_s: float = Field(
        120.0, ge=20, le=600, description="Longest a phase may wait for its turn (any controller)."
    )

    @model_validator(mode="after")
    def _order(self) -> CycleLimits:
        if self.min_s > self.max_s:
            raise ValueError(f"min_s ({self.min_s}) exceeds max_s ({self.max_s})")
        return self


class FixedPlan(_Strict):
    """An explicit fixed-time plan: green seconds per phase, in order (else Webster's from flows)."""

    greens_s: dict[str, float] = Field(
        min_length=1, max_length=MAX_PHASES, description="phase id -> green seconds"
    )


class JunctionConfig(_Strict):
    """One signalised junction."""

    id: str = Field(pattern=ID, description="Junction id.")
    name: str = Field("", max_length=200)
    signal_groups: list[SignalGroup] = Field(min_length=1, max_length=MAX_GROUPS)
    conflicts: list[tuple[str, str]] = Field(
        default_factory=list,
        max_length=MAX_GROUPS * MAX_GROUPS,
        description="Pairs of signal groups never green together.",
    )
    phases: list[Phase] = Field(
        min_length=2, max_length=MAX_PHASES, description="Phases in their default order."
    )
    lane_groups: list[LaneGroup] = Field(default_factory=list, max_length=MAX_LANE_GROUPS)
    all_red_s: float = Field(
        2.0, ge=0, le=10, description="All-red between a group's end and a conflicting start."
    )
    cycle: CycleLimits = Field(default_factory=CycleLimits)
    fixed_plan: FixedPlan | None = Field(
        None, description="Explicit plan; default: Webster's method from flows."
    )
    lost_time_s: float = Field(
        2.0,
        ge=0,
        le=10,
        description="Start-up lost time per phase for Webster's method (plus the intergreen).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> JunctionConfig:
        errors = _problems(self)
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def group(self, gid: str) -> SignalGroup:
        return next(g for g in self.signal_groups if g.id == gid)


def _dupes(kind: str, ids: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i in ids:
        if i in seen:
            out.append(f"{kind} {i!r} is defined twice")
        seen.add(i)
    return out


def _problems(j: JunctionConfig) -> list[str]:
    groups = {g.id for g in j.signal_groups}
    phases = {p.id for p in j.phases}
    errors = _dupes("signal group", [g.id for g in j.signal_groups])
    errors += _dupes("phase", [p.id for p in j.phases]) + _dupes(
        "lane group", [lg.id for lg in j.lane_groups]
    )
    bad = set()
    for a, b in j.conflicts:
        for g in (a, b):
            if g not in groups:
                errors.append(f"conflicts: unknown signal group {g!r}")
        if a == b:
            errors.append(f"conflicts: {a!r} cannot conflict with itself")
        bad.add(frozenset((a, b)))
    served: set[str] = set()
    for p in j.phases:
        for g in p.groups:
            if g not in groups:
                errors.append(f"phase {p.id!r}: unknown signal group {g!r}")
        served.update(p.groups)
        for k, a in enumerate(p.groups):
            errors += [
                f"phase {p.id!r}: {a!r} and {b!r} conflict"
                for b in p.groups[k + 1 :]
                if frozenset((a, b)) in bad
            ]
    errors += [f"signal group {g!r} is in no phase" for g in sorted(groups - served)]
    for lg in j.lane_groups:
        errors += [
            f"lane group {lg.id!r}: unknown signal group {g!r}" for g in lg.signal_groups if g not in groups
        ]
    if j.fixed_plan is not None:
        errors += [f"fixed_plan: unknown phase {p!r}" for p in j.fixed_plan.greens_s if p not in phases]
        errors += [
            f"fixed_plan: phase {p!r} has no green" for p in sorted(phases - set(j.fixed_plan.greens_s))
        ]
    if not errors:
        shortest = sum(max(j.group(g).shortest_green_s for g in p.groups) for p in j.phases)
        clear = sum(max(j.group(g).ending_s for g in p.groups) + j.all_red_s for p in j.phases)
        if shortest + clear > j.cycle.max_s:
            errors.append(
                f"cycle.max_s ({j.cycle.max_s}) is shorter than the phases' shortest greens plus clearances "
                f"({shortest + clear:.1f} s)"
            )
    return errors
