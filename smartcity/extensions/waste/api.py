"""The `waste` extension's GraphQL types and fields (bins with levels and forecasts, plans, collection reports)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import UTC, date, datetime, time
from enum import Enum

import strawberry

from smartcity.extensions.context import GraphQLParts

from .bins import Bin, BinImportError, build_bin, load_bins_csv, load_bins_geojson
from .planner import Plan
from .service import BinRegistryError, UnknownBin, WasteService
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


@strawberry.input(description="A bin to add to the registry or to replace (by id); defaults as in the configuration.")
class WasteBinInput:
    id: str
    lat: float
    lon: float
    capacity_l: int
    stream: str | None = None
    access_start: time | None = strawberry.field(default=None, description="Earliest local time it may be emptied.")
    access_end: time | None = strawberry.field(default=None, description="Latest local time it may be emptied.")
    service_s: int | None = strawberry.field(default=None, description="Seconds to empty it.")
    threshold: float | None = strawberry.field(default=None, description="Fill level (0..1) at which it counts as full.")


@strawberry.enum
class WasteBinFormat(Enum):
    CSV = "csv"
    GEOJSON = "geojson"


def bin_of(index: int, given: WasteBinInput) -> Bin:
    """A Bin from the API's input, or a BinImportError naming its place and field."""
    return build_bin({k: v for k, v in vars(given).items() if v is not None}, "bin", index)


def _actor(info: strawberry.Info) -> str:
    who = info.context.get("principal") if isinstance(info.context, dict) else None
    return str(getattr(who, "username", "graphql"))


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


async def registry_out(service: WasteService) -> list[WasteBin]:
    """The registry as the API shows it: each bin with its level and forecast."""
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


def _registry_mutation(service: WasteService) -> type[object]:
    """Mutations that change the bin registry."""

    async def bins_out() -> list[WasteBin]:
        return await registry_out(service)

    @strawberry.type
    class WasteBinMutation:
        @strawberry.mutation(
            description="Add bins to the registry or replace them by id (not bins of the configuration); audited. Returns the registry."
        )
        async def save_waste_bins(self, info: strawberry.Info, bins: list[WasteBinInput]) -> list[WasteBin]:
            if not 1 <= len(bins) <= 1000:
                raise ValueError("bins: give 1 to 1000 bins (importWasteBins takes a whole registry)")
            try:
                await service.save_bins([bin_of(i, b) for i, b in enumerate(bins)], _actor(info), "save")
            except (BinImportError, BinRegistryError) as exc:
                raise ValueError(str(exc)) from None
            return await bins_out()

        @strawberry.mutation(
            description=(
                "Import bins from a CSV (header: id,lat,lon,capacity_l[,stream,access_start,access_end,service_s,threshold]) "
                "or a GeoJSON FeatureCollection of Points; all or nothing; audited. Returns the registry."
            )
        )
        async def import_waste_bins(self, info: strawberry.Info, format: WasteBinFormat, text: str) -> list[WasteBin]:
            try:
                found = load_bins_csv(text) if format is WasteBinFormat.CSV else load_bins_geojson(text)
                await service.save_bins(found, _actor(info), "import")
            except (BinImportError, BinRegistryError) as exc:
                raise ValueError(f"{format.value}: {exc}") from None
            return await bins_out()

        @strawberry.mutation(description="Take a bin added through the API out of the registry (its readings stay); audited.")
        async def remove_waste_bin(self, info: strawberry.Info, id: str) -> list[WasteBin]:
            try:
                await service.remove_bin(id, _actor(info))
            except (BinRegistryError, UnknownBin) as exc:
                raise ValueError(str(exc)) from None
            return await bins_out()

    return WasteBinMutation


def graphql_parts(service: WasteService, plan_now: PlanNow) -> GraphQLParts:
    """The Query, Mutation and Subscription fields of one running extension."""

    async def bins_out() -> list[WasteBin]:
        return await registry_out(service)

    @strawberry.type
    class WasteQuery:
        @strawberry.field(description="The bin registry with levels and forecast crossing times.")
        async def waste_bins(self) -> list[WasteBin]:
            return await bins_out()

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
            username = _actor(info)
            try:
                await service.collected(bin_id, at.timestamp() if at else None, str(username), "graphql")
            except UnknownBin as exc:
                raise ValueError(str(exc)) from None
            return next(b for b in await bins_out() if b.id == bin_id)

    @strawberry.type
    class WasteSubscription:
        @strawberry.subscription(description="Each new collection plan, as it is stored.")
        async def waste_plan_made(self) -> AsyncGenerator[WastePlan, None]:
            async for stored in service.feed.follow():
                yield plan_type(stored)

    return GraphQLParts((WasteQuery,), (WasteMutation, _registry_mutation(service)), (WasteSubscription,))
