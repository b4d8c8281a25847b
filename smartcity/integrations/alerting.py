"""Alerting wiring: fusion's service on the bus, the dispatcher and the configured alert
channels, started and stopped together by `start_alerting`.

Flow: RuleEvent (bus) -> FusionService (smartcity.fusion.service) -> incident store commit
(incident snapshots + planned deliveries, one transaction) -> Incident snapshots published on
the bus (writer, GraphQL, MQTT bridge) -> Dispatcher woken -> channels. The channels are
the plug-ins the alerts config names (smartcity.integrations.channel's registry); the store
is whatever implements the fusion.store interfaces (the app passes storage's Outbox).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from smartcity.core.aio import wait_for
from smartcity.core.bus import EventBus
from smartcity.core.clock import Clock
from smartcity.core.dispatch_state import DispatchStateStore
from smartcity.core.supervisor import TaskSupervisor
from smartcity.fusion.engine import FusionEngine
from smartcity.fusion.policy import RateLimiter
from smartcity.fusion.service import FusionService, IncidentActions, restore_fusion
from smartcity.fusion.store import DeliveryOutbox, IncidentStore
from smartcity.integrations.channel import AlertChannel, AuditSink, ChannelContext, channel_class
from smartcity.integrations.channels.sms import TwilioSms, TwilioStatusHandler
from smartcity.integrations.config import AlertsConfig
from smartcity.integrations.dispatcher import Dispatcher
from smartcity.integrations.smoke_sensors import SmokeSensors

log = logging.getLogger(__name__)


class AlertStore(IncidentStore, DeliveryOutbox, Protocol):
    """Both storage interfaces: what alerting is started with."""


@dataclass
class AlertingContext:
    """What alerting needs from the composition root."""

    bus: EventBus
    store: AlertStore
    supervisor: TaskSupervisor
    clock: Clock
    config: AlertsConfig
    sites: Mapping[str, str] = field(default_factory=dict)  # camera id -> site (correlation)
    http_transport: httpx.AsyncBaseTransport | None = None  # HTTP channels (webhook): a loopback in tests
    audit: AuditSink | None = None  # the audit log of what channels dispatch (emergency dispatch)
    dispatch_state: DispatchStateStore | None = None  # emergency dispatch state (CAP), kept across restarts


@dataclass
class Alerting:
    """The running alerting subsystem; `stop()` undoes `start_alerting`."""

    engine: FusionEngine
    outbox: AlertStore
    fusion: FusionService
    dispatcher: Dispatcher
    actions: IncidentActions
    channels: dict[str, AlertChannel]
    dispatcher_task: asyncio.Task[None]
    fusion_task: asyncio.Task[None]
    smoke_sensors: SmokeSensors | None = None
    smoke_sensors_task: asyncio.Task[None] | None = None

    @property
    def twilio_status(self) -> TwilioStatusHandler | None:
        """The handler of Twilio delivery receipts, when SMS runs with a status callback URL."""
        sms = self.channels.get(TwilioSms.type)
        return sms.status if isinstance(sms, TwilioSms) else None

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Let fusion commit what it holds, then stop sending, then close the channels."""
        if self.smoke_sensors_task is not None:  # no new alarms while fusion drains
            self.smoke_sensors_task.cancel()
            try:
                await self.smoke_sensors_task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("smoke sensors failed while stopping")
        self.fusion.sub.close("alerting stopping")
        try:
            await wait_for(asyncio.shield(self.fusion_task), timeout_s)
        except TimeoutError:
            log.error("fusion did not commit its backlog within %.1f s", timeout_s)
        except Exception:
            log.exception("fusion failed while stopping")
        self.fusion_task.cancel()
        self.dispatcher_task.cancel()
        try:
            await self.dispatcher_task
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("alert dispatcher failed while stopping")
        for ch in reversed(list(self.channels.values())):
            try:
                await ch.close()
            except Exception:
                log.exception("alert channel %s failed while closing", ch.type)


async def start_channels(cfg: AlertsConfig, ctx: ChannelContext) -> dict[str, AlertChannel]:
    """Create and start every active channel (configured, or always on); on a failure, close
    those already started and raise."""
    started: dict[str, AlertChannel] = {}
    try:
        for channel_type, channel_cfg in cfg.active_channels().items():
            cls = channel_class(channel_type)
            if cls is None:  # the config was validated against this registry
                continue
            ch = cls(channel_cfg, ctx)
            started[channel_type] = ch
            await ch.start()
    except BaseException:
        for ch in reversed(list(started.values())):
            await ch.close()
        raise
    return started


async def start_alerting(ctx: AlertingContext) -> Alerting:
    """Start fusion, the dispatcher and the channels under ctx.supervisor."""
    cfg = ctx.config
    engine = FusionEngine(cfg.fusion, ctx.sites)
    restored = await restore_fusion(engine, ctx.store, ctx.clock.time())
    if restored:
        log.info("fusion resumed %d active incidents from the register", restored)
    # channels get the dispatcher's wake-up (a receipt may escalate), the dispatcher gets them
    dispatcher = Dispatcher(ctx.store, {}, cfg.dispatcher, ctx.clock, RateLimiter(cfg.rate_limit))
    channel_ctx = ChannelContext(
        bus=ctx.bus,
        clock=ctx.clock,
        supervisor=ctx.supervisor,
        outbox=ctx.store,
        send_timeout_s=cfg.dispatcher.send_timeout_s,
        wake_dispatcher=dispatcher.notify,
        http_transport=ctx.http_transport,
        sites=ctx.sites,
        audit=ctx.audit,
        incidents=ctx.store,
        dispatch_state=ctx.dispatch_state,
    )
    channels = await start_channels(cfg, channel_ctx)
    dispatcher.senders.update(channels)
    fusion = FusionService(engine, ctx.store, ctx.bus, cfg.resolved_policies(), ctx.clock, on_commit=dispatcher.notify)
    dispatcher_task = ctx.supervisor.start("alert-dispatcher", dispatcher.run, restart=True)
    fusion_task = ctx.supervisor.start("fusion", fusion.run, restart=True)
    actions = IncidentActions(ctx.store, engine, ctx.bus, ctx.clock)
    sensors = SmokeSensors(cfg.smoke_sensors, ctx.bus, ctx.clock) if cfg.smoke_sensors is not None else None
    sensors_task = ctx.supervisor.start("smoke-sensors", sensors.run, restart=True) if sensors is not None else None
    return Alerting(
        engine, ctx.store, fusion, dispatcher, actions, channels, dispatcher_task, fusion_task, sensors, sensors_task
    )
