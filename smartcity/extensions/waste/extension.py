"""The `waste` extension as the server runs it: its registration, start/stop, HTTP routes and the daily planning task."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smartcity.core.events import RuleEvent
from smartcity.extensions.base import ExtensionError
from smartcity.extensions.context import ExtensionContext, caller_of
from smartcity.extensions.registry import register_extension

from .api import graphql_parts
from .camera import overflow_reading
from .config import SensorFormat, WasteConfig
from .distances import DistanceSource, MatrixFile, OsrmTable
from .links import ClientFactory, FleetSender, MqttIngest, default_client
from .sensors import PayloadError
from .service import Trigger, UnknownBin, WasteService, next_day, next_run
from .store import StoredPlan, plans
from .tables import metadata

log = logging.getLogger(__name__)

FORMATS: tuple[SensorFormat, ...] = ("native", "tts_v3", "field_map")
MAX_COLLECTION_BODY = 4096


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@register_extension(WasteConfig, metadata=metadata, migrations=Path(__file__).parent / "migrations")
class WasteExtension:
    """Bins, sensor readings, forecasts and daily plans of one city (config `type: waste`).

    `mqtt_client` and `http_transport` replace the broker client and the webhook transport
    (tests, or a proxy); the server builds it with the defaults."""

    def __init__(
        self,
        config: WasteConfig,
        *,
        mqtt_client: ClientFactory = default_client,
        http_transport: httpx.AsyncBaseTransport | None = None,
        osrm_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self._mqtt_client = mqtt_client
        self._transport = http_transport
        self._osrm_transport = osrm_transport
        self._osrm: httpx.Client | None = None
        self.ctx: ExtensionContext | None = None
        self.service: WasteService | None = None
        self.mqtt: MqttIngest | None = None
        self.fleet: FleetSender | None = None

    async def start(self, ctx: ExtensionContext) -> None:
        cfg = self.config
        try:
            registry = cfg.load_bins()
        except (OSError, ValueError) as exc:
            raise ExtensionError(f"waste bins: {exc}") from exc
        self.ctx = ctx
        svc = self.service = WasteService(cfg, registry, ctx.tables, ctx.clock, self._distances())
        await svc.load()
        ctx.add_metrics(svc.metrics)
        ctx.subscribe(RuleEvent, self.on_rule_event)
        ctx.add_routes(
            [
                Route("/readings", self.post_reading, methods=["POST"]),
                Route("/readings/{format}", self.post_reading, methods=["POST"]),
                Route("/collections", self.post_collection, methods=["POST"]),
                Route("/plans/latest.geojson", self.latest_geojson, methods=["GET"]),
                Route("/plans/latest.json", self.latest_json, methods=["GET"]),
            ]
        )
        parts = graphql_parts(svc, self.plan_for)
        ctx.add_graphql(query=parts.query[0], mutation=parts.mutation[0], subscription=parts.subscription[0])
        for more in parts.mutation[1:]:
            ctx.add_graphql(mutation=more)
        if cfg.mqtt is not None:
            self.mqtt = MqttIngest(cfg.mqtt, svc.ingest, ctx.clock, self._mqtt_client)
            ctx.supervisor.start("waste:mqtt", self.mqtt.run, restart=True)
        if cfg.fleet is not None:
            self.fleet = FleetSender(cfg.fleet, svc.stats, ctx.clock, self.mqtt, self._transport)
        if cfg.schedule.enabled:
            ctx.supervisor.start("waste:daily-plan", self.daily, restart=True)
        log.info("waste: %d bins, %d depots, %d truck kinds", len(registry), len(cfg.depots), len(cfg.trucks))

    def _distances(self) -> DistanceSource | None:
        roads = self.config.roads
        if roads.matrix_file is not None:
            try:
                return MatrixFile.from_json(roads.matrix_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ExtensionError(f"waste roads.matrix_file: {exc}") from exc
        if roads.osrm_url is not None:
            # synchronous: the planner asks it from its worker thread
            self._osrm = httpx.Client(transport=self._osrm_transport, timeout=roads.timeout_s)
            return OsrmTable(self._osrm, roads.osrm_url, roads.osrm_profile)
        return None  # straight lines times the detour factor

    async def stop(self) -> None:
        # its tasks belong to ctx.supervisor; the OSRM client is its own
        if self._osrm is not None:
            self._osrm.close()

    def _svc(self) -> WasteService:
        if self.service is None:
            raise ExtensionError("waste extension not started")
        return self.service

    async def plan(self, trigger: Trigger, day: datetime | None = None) -> StoredPlan:
        """Make, store and (when configured) send a plan."""
        stored = await self._svc().make_plan(trigger, day)
        log.info("waste: plan %d for %s (%s): %.1f km", stored.id, stored.day, trigger, stored.plan.km)
        fleet, ctx = self.fleet, self.ctx
        if fleet is not None and ctx is not None:
            ctx.supervisor.start(f"waste:push:{stored.id}", lambda: fleet.send(stored))
        return stored

    async def plan_for(self, day: date | None) -> StoredPlan:
        tz = self.config.schedule.tz
        return await self.plan("demand", None if day is None else datetime(day.year, day.month, day.day, tzinfo=tz))

    async def scheduled(self, day: datetime) -> StoredPlan | None:
        """The scheduled plan for `day`; None on a weekday without collection (nothing stored or
        sent: the fleet system hears only of days the trucks go out)."""
        if self.config.planner.day_kind(day.weekday()) == "off":
            self._svc().stats.days_off += 1
            log.info("waste: no collection on %s (a day off): no plan", day.date().isoformat())
            return None
        return await self.plan("schedule", day)

    async def daily(self) -> None:
        """Plan the next day at the configured local time; a run missed while the server was down is made at start."""
        svc, clock = self._svc(), self._svc().clock
        at, tz = self.config.schedule.at, self.config.schedule.tz
        now = clock.time()
        todays = next_run(now - 86_400.0, at, tz)  # today's (or the last past) planning time
        try:
            if todays <= now and not await svc.has_plan(next_day(todays, tz), "schedule"):
                await self.scheduled(next_day(todays, tz))
        except Exception:  # logged and counted; the next run is still due
            log.exception("waste: the missed daily plan could not be made")
        while True:
            now = clock.time()
            when = next_run(now, at, tz)
            await clock.sleep(when - now)
            try:
                await self.scheduled(next_day(when, tz))
            except Exception:  # logged and counted; tomorrow's run is still due
                log.exception("waste: the daily plan failed")

    async def on_rule_event(self, event: RuleEvent) -> None:
        """An `overflow` rule's event raises its bin to full; other rules' events are not ours."""
        svc = self._svc()
        try:
            reading = overflow_reading(event)
        except PayloadError as exc:
            svc.stats.camera["invalid"] += 1
            log.warning("waste: overflow event %s of rule %r (camera %s): %s", event.event_id, event.rule_id, event.camera_id, exc)
            return
        if reading is None:
            return
        got = await svc.camera_reading(reading)
        if got.outcome == "rejected":  # the rule names a bin the registry lacks: the operator's to fix
            log.warning("waste: overflow rule %r (camera %s): %s", event.rule_id, event.camera_id, got.message)

    async def post_reading(self, request: Request) -> Response:
        fmt = request.path_params.get("format") or request.query_params.get("format", "native")
        if fmt not in FORMATS:
            return _error(404, f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
        got = await self._svc().ingest(await request.body(), fmt)
        if got.outcome == "rejected":
            return _error(400, got.message)
        assert got.reading is not None
        return JSONResponse(
            {"status": got.outcome, "bin_id": got.reading.bin_id, "message_id": got.reading.message_id},
            status_code=201 if got.outcome == "stored" else 200,
        )

    async def post_collection(self, request: Request) -> Response:
        body = await request.body()
        try:
            doc = json.loads(body) if len(body) <= MAX_COLLECTION_BODY else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("bin_id"), str) or set(doc) - {"bin_id", "t"}:
            return _error(400, 'expected {"bin_id": "...", "t": "ISO 8601 time (optional)"}')
        t: float | None = None
        if doc.get("t") is not None:
            try:
                at = datetime.fromisoformat(str(doc["t"]).replace("Z", "+00:00"))
            except ValueError:
                return _error(400, "t: expected an ISO 8601 time")
            if at.tzinfo is None:
                return _error(400, "t: time has no zone")
            t = at.timestamp()
        try:
            at_s = await self._svc().collected(doc["bin_id"], t, caller_of(request).username, "http")
        except UnknownBin as exc:
            return _error(404, str(exc))
        return JSONResponse({"bin_id": doc["bin_id"], "t": at_s, "level": 0.0}, status_code=201)

    async def _latest(self) -> StoredPlan | None:
        found = await plans(self._svc().db, 1)
        return found[0] if found else None

    async def latest_geojson(self, request: Request) -> Response:
        latest = await self._latest()
        if latest is None:
            return _error(404, "no plan yet")
        doc = latest.plan.to_geojson()
        doc["properties"] = {"plan_id": latest.id, "day": latest.day, "trigger": latest.trigger, "created_at": latest.created_at}
        return JSONResponse(doc, media_type="application/geo+json")

    async def latest_json(self, request: Request) -> Response:
        latest = await self._latest()
        if latest is None:
            return _error(404, "no plan yet")
        return Response(FleetSender.document(latest), media_type="application/json")  # what the fleet system gets
