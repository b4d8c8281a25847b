"""The `waste` extension's GraphQL types and fields (bins with levels and forecasts, plans, collection reports)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import UTC, date, datetime

import strawberry

from smartcity.extensions.context import GraphQLParts

from .planner import Plan
from .service import UnknownBin, WasteService
from .store import StoredPlan, plans

PlanNow = Callable[[date | None], Awaitable[StoredPlan]]


@strawberry.type(description="A bin with its last known fill level and when it is forecast to be full.")
class WasteBin:
    id: str
    lat: float
    lon: float
    stream: str
    capacity_l: int
    threshold: float
    level: float | None = strawberry.field(description="Last known fill level 0..1 (None: never reported).")
    level_at: datetime | None
    crosses_at: datetime | None = strawberry.field(description="When the level reaches the threshold (None: not within 14 days).")
    fill_per_day: float | None = strawberry.field(description="Mean forecast fill per day (level fraction).")


@strawberry.type
class WasteStop:
    bin_id: str
    lat: float
    lon: float
    arrive: datetime
    depart: datetime
    litres: int
    due: bool
    trip: int


@strawberry.type
class WasteRoute:
    truck_id: str
    stream: str
    depot_id: str
    depot_lat: float
    depot_lon: float
    km: float
    load_l: int
    start: datetime
    end: datetime
    trips: int
    stops: list[WasteStop]


@strawberry.type
class WasteUnvisited:
    bin_id: str
    due: bool
    reason: str


@strawberry.type(description="A day's collection plan.")
class WastePlan:
    id: int
    created_at: datetime
    trigger: str = strawberry.field(description="schedule (the daily run) or demand (planWasteRound).")
    day: date
    km: float
    solve_s: float
    routes: list[WasteRoute]
    unvisited: list[WasteUnvisited]
    missed_due: list[str] = strawberry.field(description="Bins due today that no route takes.")


def plan_type(stored: StoredPlan) -> WastePlan:
    p: Plan = stored.plan
    return WastePlan(
        id=stored.id,
        created_at=datetime.fromtimestamp(stored.created_at, UTC),
        trigger=stored.trigger,
        day=date.fromisoformat(stored.day),
        km=round(p.km, 3),
        solve_s=p.solve_s,
        routes=[
            WasteRoute(
                truck_id=r.truck_id, stream=r.stream, depot_id=r.depot.id, depot_lat=r.depot.lat, depot_lon=r.depot.lon, km=r.km, load_l=r.load_l,
                start=r.start, end=r.end, trips=r.trips,
                stops=[WasteStop(bin_id=s.bin_id, lat=s.lat, lon=s.lon, arrive=s.arrive, depart=s.depart, litres=s.litres, due=s.due, trip=s.trip) for s in r.stops],
            )
            for r in p.routes
        ],
        unvisited=[WasteUnvisited(bin_id=u.bin_id, due=u.due, reason=u.reason) for u in p.unvisited],
        missed_due=list(p.missed_due),
    )


def graphql_parts(service: WasteService, plan_now: PlanNow) -> GraphQLParts:
    """The Query, Mutation and Subscription fields of one running extension."""

    async def bins() -> list[WasteBin]:
        fc = await service.forecast_of()
        out = []
        for b in sorted(service.bins.values(), key=lambda b: b.id):
            lv = service.levels.get(b.id)
            f = fc.get(b.id)
            out.append(
                WasteBin(
                    id=b.id, lat=b.lat, lon=b.lon, stream=b.stream, capacity_l=b.capacity_l, threshold=b.threshold,
                    level=lv[0] if lv else None,
                    level_at=datetime.fromtimestamp(lv[1], UTC) if lv else None,
                    crosses_at=service.crossing(b.id, fc),
                    fill_per_day=float(f.daily_fill().mean()) if f is not None else None,
                )
            )
        return out

    @strawberry.type
    class WasteQuery:
        @strawberry.field(description="The bin registry with levels and forecast crossing times.")
        async def waste_bins(self) -> list[WasteBin]:
            return await bins()

        @strawberry.field(description="Collection plans, newest first.")
        async def waste_plans(self, limit: int = 10) -> list[WastePlan]:
            return [plan_type(p) for p in await plans(service.db, max(1, min(limit, 100)))]

    @strawberry.type
    class WasteMutation:
        @strawberry.mutation(description="Make a plan now (for `day`, default tomorrow in the city's time zone).")
        async def plan_waste_round(self, day: date | None = None) -> WastePlan:
            return plan_type(await plan_now(day))

        @strawberry.mutation(description="A crew emptied a bin (at `at`, default now): its level resets to 0.")
        async def report_waste_collection(self, info: strawberry.Info, bin_id: str, at: datetime | None = None) -> WasteBin:
            who = info.context.get("principal") if isinstance(info.context, dict) else None
            username = getattr(who, "username", "graphql")
            try:
                await service.collected(bin_id, at.timestamp() if at else None, str(username), "graphql")
            except UnknownBin as exc:
                raise ValueError(str(exc)) from None
            return next(b for b in await bins() if b.id == bin_id)

    @strawberry.type
    class WasteSubscription:
        @strawberry.subscription(description="Each new collection plan, as it is stored.")
        async def waste_plan_made(self) -> AsyncGenerator[WastePlan, None]:
            async for stored in service.feed.follow():
                yield plan_type(stored)

    return GraphQLParts((WasteQuery,), (WasteMutation,), (WasteSubscription,))
