"""The junctions as the server runs them: rule events in, one control step per tick, commands to
the adapters in active mode, commanded states pushed to red-light rules, operator actions
(mode, forced fixed plan) applied and audited, and the release of every junction on stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from smartcity.core.clock import Clock
from smartcity.core.events import RuleEvent
from smartcity.core.video import SignalPush, SignalState, VideoControl
from smartcity.extensions.context import ExtensionTables

from .adapters import SignalAdapter
from .config import Mode, SignalsConfig
from .runtime import Decision, JunctionRuntime
from .tables import actions

log = logging.getLogger(__name__)
MODES: tuple[Mode, ...] = ("advisory", "active")


class UnknownJunction(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Action:
    at: float
    actor: str
    junction: str
    action: str
    before: str
    after: str


class SignalsService:
    def __init__(
        self,
        config: SignalsConfig,
        adapters: Mapping[str, SignalAdapter],
        db: ExtensionTables,
        clock: Clock,
        video: VideoControl,
    ) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.video = video
        self.adapters = dict(adapters)
        now = clock.time()
        self.runtimes = {
            j.id: JunctionRuntime(
                j,
                now,
                stale_after_s=config.stale_after_s,
                min_confidence=config.min_confidence,
                retime_s=config.retime_s,
            )
            for j in config.junctions
        }
        self.pushed: dict[tuple[str, str], SignalState] = {}
        self.failing: set[str] = set()  # junctions whose adapter fails (logged once)
        self.lock = asyncio.Lock()  # a tick, an operator's action and the stop never interleave
        self.stopped = False

    def runtime(self, junction: str) -> JunctionRuntime:
        rt = self.runtimes.get(junction)
        if rt is None:
            raise UnknownJunction(f"unknown junction {junction!r}")
        return rt

    async def load(self) -> None:
        """The latest mode and fixed-plan order of each junction, as operators left them."""
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(actions.c.junction, actions.c.action, actions.c.after).order_by(actions.c.id)
                )
            ).all()
        for junction, action, after in rows:
            rt = self.runtimes.get(junction)
            if rt is None:
                continue
            if action == "mode" and after in MODES:
                rt.mode = after
            elif action == "force_fixed":
                rt.forced_fixed = after == "on"

    def on_event(self, ev: RuleEvent) -> None:
        for rt in self.runtimes.values():
            rt.on_event(ev)

    async def tick(self) -> dict[str, Decision]:
        async with self.lock:
            return {} if self.stopped else await self._tick()

    async def _tick(self) -> dict[str, Decision]:
        now = self.clock.time()
        out = {}
        for jid, rt in self.runtimes.items():
            d = out[jid] = rt.tick(now)
            if rt.mode != "active":
                continue
            adapter = self.adapters[jid]
            try:
                await adapter.command(d.frame)
            except Exception as exc:  # the local controller keeps its own plan; logged when it starts failing
                if jid not in self.failing:
                    log.error("signals: junction %s: adapter %s failed: %s", jid, adapter.name, exc)
                    self.failing.add(jid)
                continue
            if jid in self.failing:
                log.info("signals: junction %s: adapter %s works again", jid, adapter.name)
                self.failing.discard(jid)
            await self._push(rt, d)
        return out

    async def _push(self, rt: JunctionRuntime, d: Decision) -> None:
        """The commanded aspects of groups feeding red-light rules, when they change."""
        for g in rt.j.signal_groups:
            state = d.frame.states.get(g.id, SignalState.UNKNOWN)
            for ref in g.red_light_rules:
                key = (ref.camera_id, ref.rule_id)
                if self.pushed.get(key) is state:
                    continue
                if await self.video.push_signal(SignalPush(ref.camera_id, ref.rule_id, state, d.frame.t)):
                    self.pushed[key] = state

    async def _record(self, actor: str, junction: str, action: str, before: str, after: str) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                sa.insert(actions).values(
                    at=self.clock.time(),
                    actor=actor[:64],
                    junction=junction,
                    action=action,
                    before=before,
                    after=after,
                )
            )

    async def set_mode(self, junction: str, mode: Mode, actor: str) -> None:
        rt = self.runtime(junction)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if mode == "active" and rt.j.adapter.type == "none":
            raise ValueError(f"junction {junction!r} has no adapter: it can only be advisory")
        async with self.lock:
            before = rt.mode
            await self._record(actor, junction, "mode", before, mode)
            if before == "active" and mode != "active":
                await self._release(junction)
            rt.mode = mode
        log.info("signals: junction %s: mode %s -> %s by %s", junction, before, mode, actor)

    async def force_fixed(self, junction: str, on: bool, actor: str) -> None:
        rt = self.runtime(junction)
        async with self.lock:
            before = "on" if rt.forced_fixed else "off"
            await self._record(actor, junction, "force_fixed", before, "on" if on else "off")
            rt.forced_fixed = on

    async def history(self, junction: str, limit: int = 50) -> list[Action]:
        self.runtime(junction)
        q = (
            sa.select(
                actions.c.at,
                actions.c.actor,
                actions.c.junction,
                actions.c.action,
                actions.c.before,
                actions.c.after,
            )
            .where(actions.c.junction == junction)
            .order_by(actions.c.id.desc())
            .limit(max(1, min(limit, 500)))
        )
        async with self.db.connect() as conn:
            return [Action(float(r[0]), *map(str, r[1:])) for r in (await conn.execute(q)).all()]

    async def _release(self, junction: str) -> None:
        adapter = self.adapters[junction]
        try:
            await adapter.release()
        except Exception as exc:  # the controller falls back to its own plan when commands stop anyway
            log.error("signals: junction %s: release through %s failed: %s", junction, adapter.name, exc)

    async def stop(self) -> None:
        """Every active junction goes back to its own plan; adapters close; later ticks do nothing."""
        async with self.lock:
            self.stopped = True
            for jid, rt in self.runtimes.items():
                if rt.mode == "active":
                    await self._release(jid)
            for adapter in self.adapters.values():
                await adapter.close()
