"""The `signals` extension as the server runs it: registration, start/stop, the control loop
task, rule events in, the status route for the console."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smartcity.core.events import CameraHealth, RuleEvent
from smartcity.extensions.base import ExtensionError
from smartcity.extensions.context import ExtensionContext
from smartcity.extensions.registry import register_extension

from .adapters import build_adapter
from .api import graphql_parts, status_of
from .config import SignalsConfig
from .service import SignalsService
from .tables import metadata

log = logging.getLogger(__name__)


@register_extension(SignalsConfig, metadata=metadata, migrations=Path(__file__).parent / "migrations")
class SignalsExtension:
    """Traffic-signal control of the configured junctions (config `type: signals`).

    `transports` replace the adapters' I/O (tests): snmp=, http=, mqtt=, traci=."""

    def __init__(self, config: SignalsConfig, **transports: Any) -> None:
        self.config = config
        self.transports = transports
        self.service: SignalsService | None = None

    async def start(self, ctx: ExtensionContext) -> None:
        svc = self.service = SignalsService(
            self.config,
            lambda j: build_adapter(j.adapter, j, **self.transports),
            ctx.tables,
            ctx.clock,
            ctx.video,
        )
        await svc.load()
        ctx.subscribe(RuleEvent, self.on_rule_event)
        ctx.subscribe(CameraHealth, self.on_camera_health)
        ctx.add_routes([Route("/junctions", self.junctions, methods=["GET"])])
        parts = graphql_parts(svc)
        ctx.add_graphql(query=parts.query[0], mutation=parts.mutation[0])
        ctx.supervisor.start("signals:control", self.control, restart=True)
        log.info(
            "signals: %d junctions (%s)",
            len(self.config.junctions),
            ", ".join(f"{j.id}: {j.mode}" for j in self.config.junctions),
        )

    def _svc(self) -> SignalsService:
        if self.service is None:
            raise ExtensionError("signals extension not started")
        return self.service

    async def control(self) -> None:
        svc = self._svc()
        while True:
            await svc.tick()
            await svc.clock.sleep(self.config.tick_s)

    async def on_rule_event(self, event: RuleEvent) -> None:
        self._svc().on_event(event)

    async def on_camera_health(self, health: CameraHealth) -> None:
        self._svc().on_health(health)

    async def junctions(self, request: Request) -> Response:
        svc = self._svc()
        out = []
        for rt in svc.runtimes.values():
            s = status_of(rt)
            out.append(
                {
                    "id": s.id,
                    "name": s.name,
                    "mode": s.mode,
                    "adapter": s.adapter,
                    "controller": s.controller,
                    "forced_fixed": s.forced_fixed,
                    "fallback": s.fallback,
                    "phase": s.phase,
                    "recommendation": s.recommendation,
                    "green_s": s.green_s,
                    "estimated_delay_s": s.estimated_delay_s,
                    "phases": s.phases,
                    "fixed_plan_greens": s.fixed_plan_greens,
                    "signal_groups": [
                        {"id": g.id, "kind": g.kind, "state": g.state} for g in s.signal_groups
                    ],
                    "lane_groups": [
                        {"id": lg.id, "queue": lg.queue, "flow_vph": lg.flow_vph, "fresh": lg.fresh}
                        for lg in s.lane_groups
                    ],
                }
            )
        return JSONResponse({"junctions": out})

    async def stop(self) -> None:
        # the control task belongs to ctx.supervisor (cancelled right after); junctions go back to their own plans
        if self.service is not None:
            await self.service.stop()
