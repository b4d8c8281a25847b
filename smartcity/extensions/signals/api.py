"""The `signals` extension's GraphQL types and fields: junction config and status (phase, aspects,
queue per lane group, estimated delay, mode, recommendation, fall-back), mode switch and forced
fixed plan (audited), and the operators' action log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry
from pydantic import ValidationError

from smartcity.core.config import format_validation_error
from smartcity.extensions.context import GraphQLParts

from .runtime import JunctionRuntime
from .service import SignalsService, UnknownJunction


@strawberry.type
class SignalGroupStatus:
    id: str
    kind: str
    state: str = strawberry.field(
        description="red | amber | green (pedestrian: green = walk, amber = clearance)."
    )


@strawberry.type
class LaneGroupStatus:
    id: str
    queue: float = strawberry.field(description="Vehicles in the queue zone (camera).")
    flow_vph: float | None
    fresh: bool = strawberry.field(description="False: the camera said nothing recently or is unsure.")


@strawberry.type
class SignalJunctionStatus:
    id: str
    name: str
    mode: str = strawberry.field(
        description="advisory (recommendations only) or active (commands the adapter)."
    )
    adapter: str
    controller: str = strawberry.field(description="The controller deciding now (fixed in fall-back).")
    forced_fixed: bool
    fallback: str | None = strawberry.field(
        description="Why the fixed plan runs instead of the configured controller."
    )
    phase: str | None = strawberry.field(description="Phase fully green now (None during a change).")
    recommendation: str = strawberry.field(description="The phase the controller wants (advisory: apply it).")
    green_s: float
    estimated_delay_s: float = strawberry.field(
        description="Mean wait per arriving vehicle now (queue / arrival rate)."
    )
    fixed_plan_greens: list[float] = strawberry.field(
        description="Fixed plan greens (s) per phase, in phase order."
    )
    phases: list[str]
    signal_groups: list[SignalGroupStatus]
    lane_groups: list[LaneGroupStatus]
    config_json: str = strawberry.field(description="The junction's configuration (JSON).")


@strawberry.type
class SignalAction:
    at: datetime
    actor: str
    junction: str
    action: str
    before: str
    after: str


def status_of(rt: JunctionRuntime) -> SignalJunctionStatus:
    j, d = rt.j, rt.last
    frame = d.frame if d is not None else None
    measures = d.measures if d is not None else {}
    stale = set(d.stale) if d is not None else {lg.id for lg in j.lane_groups}
    return SignalJunctionStatus(
        id=j.id,
        name=j.name or j.id,
        mode=rt.mode,
        adapter=j.adapter.type,
        controller=d.controller if d is not None else rt.adaptive.name,
        forced_fixed=rt.forced_fixed,
        # an operator's order shows at once (the next tick applies it)
        fallback="forced by an operator" if rt.forced_fixed else d.fallback if d is not None else None,
        phase=frame.phase if frame else None,
        recommendation=frame.target if frame else j.phases[0].id,
        green_s=round(frame.green_s, 1) if frame else 0.0,
        estimated_delay_s=rt.estimated_delay_s(measures),
        fixed_plan_greens=[round(rt.fixed.greens.get(p.id, 0.0), 1) for p in j.phases],
        phases=[p.id for p in j.phases],
        signal_groups=[
            SignalGroupStatus(id=g.id, kind=g.kind, state=(frame.states[g.id].value if frame else "red"))
            for g in j.signal_groups
        ],
        lane_groups=[
            LaneGroupStatus(
                id=lg.id,
                queue=round(measures[lg.id].queue, 2) if lg.id in measures else 0.0,
                flow_vph=measures[lg.id].flow_vph if lg.id in measures else None,
                fresh=lg.id not in stale,
            )
            for lg in j.lane_groups
        ],
        config_json=j.model_dump_json(exclude={"adapter"}),
    )


MAX_CONFIG = 200_000


def _actor(info: strawberry.Info) -> str:
    ctx: Any = info.context
    who = ctx.get("principal") if isinstance(ctx, dict) else None
    return str(getattr(who, "username", "graphql"))


def graphql_parts(service: SignalsService) -> GraphQLParts:
    def one(junction: str) -> JunctionRuntime:
        try:
            return service.runtime(junction)
        except UnknownJunction as exc:
            raise ValueError(str(exc)) from None

    @strawberry.type
    class SignalsQuery:
        @strawberry.field(description="Every junction under control, with its live status.")
        def signal_junctions(self) -> list[SignalJunctionStatus]:
            return [status_of(rt) for rt in service.runtimes.values()]

        @strawberry.field(
            description="Operators' actions on a junction, newest first (the audit of mode and plan changes)."
        )
        async def signal_actions(self, junction: str, limit: int = 50) -> list[SignalAction]:
            one(junction)
            rows = await service.history(junction, limit)
            return [
                SignalAction(
                    at=datetime.fromtimestamp(a.at, UTC),
                    actor=a.actor,
                    junction=a.junction,
                    action=a.action,
                    before=a.before,
                    after=a.after,
                )
                for a in rows
            ]

    @strawberry.type
    class SignalsMutation:
        @strawberry.mutation(description="Switch a junction between advisory and active (audited).")
        async def set_signal_mode(
            self, info: strawberry.Info, junction: str, mode: str
        ) -> SignalJunctionStatus:
            one(junction)
            if mode not in ("advisory", "active"):
                raise ValueError("mode must be advisory or active")
            await service.set_mode(junction, "active" if mode == "active" else "advisory", _actor(info))
            return status_of(one(junction))

        @strawberry.mutation(
            description="Force the fixed plan on a junction (on = true) or give control back (audited)."
        )
        async def force_signal_fixed_plan(
            self, info: strawberry.Info, junction: str, on: bool
        ) -> SignalJunctionStatus:
            one(junction)
            await service.force_fixed(junction, on, _actor(info))
            return status_of(one(junction))

        @strawberry.mutation(
            description="Replace a junction's configuration (JSON of a `junctions` entry, same id): validated, "
            "stored, audited and applied at once (the new safety layer starts all red)."
        )
        async def set_signal_junction_config(
            self, info: strawberry.Info, junction: str, config_json: str
        ) -> SignalJunctionStatus:
            one(junction)
            if len(config_json) > MAX_CONFIG:
                raise ValueError(f"configuration larger than {MAX_CONFIG} characters")
            try:
                await service.set_junction(junction, config_json, _actor(info))
            except ValidationError as exc:
                raise ValueError("; ".join(format_validation_error(exc))) from None
            return status_of(one(junction))

    return GraphQLParts((SignalsQuery,), (SignalsMutation,), ())
