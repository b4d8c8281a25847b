"""The junctions as the server runs them: rule events in, one control step per tick, commands to
the adapters in active mode, commanded states pushed to red-light rules, operator actions
(mode, forced fixed plan) applied and audited, and the release of every junction on stop."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from pydantic import ValidationError

from smartcity.core.clock import Clock
from smartcity.core.events import CameraHealth, RuleEvent
from smartcity.core.video import SignalPush, SignalState, VideoControl
from smartcity.extensions.context import ExtensionTables

from .adapters import SignalAdapter
from .config import Mode, SignalJunction, SignalsConfig
from .runtime import Decision, JunctionRuntime
from .tables import actions, junctions

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
        make_adapter: Callable[[SignalJunction], SignalAdapter],
        db: ExtensionTables,
        clock: Clock,
        video: VideoControl,
    ) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.video = video
        self.make_adapter = make_adapter
        self.adapters = {j.id: make_adapter(j) for j in config.junctions}
        self.runtimes = {j.id: self._runtime(j) for j in config.junctions}
        self.pushed: dict[tuple[str, str], SignalState] = {}
        self.failing: set[str] = set()  # junctions whose adapter fails (logged once)
        self.lock = asyncio.Lock()  # a tick, an operator's action and the stop never interleave
        self.stopped = False

    def _runtime(self, j: SignalJunction) -> JunctionRuntime:
        c = self.config
        return JunctionRuntime(
            j,
            self.clock.time(),
            stale_after_s=c.stale_after_s,
            min_confidence=c.min_confidence,
            retime_s=c.retime_s,
        )

    def runtime(self, junction: str) -> JunctionRuntime:
        rt = self.runtimes.get(junction)
        if rt is None:
            raise UnknownJunction(f"unknown junction {junction!r}")
        return rt

    async def load(self) -> None:
        """The configurations set through the API, then the latest mode and fixed-plan order of each
        junction, as operators left them."""
        async with self.db.connect() as conn:
            stored = (await conn.execute(sa.select(junctions.c.id, junctions.c.body))).all()
        for jid, body in stored:
            if jid in self.runtimes:
                try:
                    await self._replace(SignalJunction.model_validate_json(body))
                except ValidationError as exc:  # a newer version's field, or a hand edit: keep the file's
                    log.error("signals: stored configuration of junction %s ignored: %s", jid, exc)
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

    def on_health(self, h: CameraHealth) -> None:
        """A camera's health: unsure or absent cameras put their junctions on the fixed plan."""
        for rt in self.runtimes.values():
            rt.on_health(h)

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
            # and in the server's audit log (auditLog, action signals.<action>), in the same transaction
            await self.db.audit(conn, actor=actor, action=action, target=f"junction:{junction}", before=before, after=after)

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

    async def _replace(self, j: SignalJunction) -> None:
        """Run junction `j` with its new configuration: a fresh runtime (the safety layer starts all
        red) and adapter; the operator's mode (when the new adapter allows it) and order are kept."""
        old, adapter = self.runtimes[j.id], self.adapters[j.id]
        if old.mode == "active":
            await self._release(j.id)
        await adapter.close()
        rt = self._runtime(j)
        rt.mode = old.mode if j.adapter.type != "none" else "advisory"
        rt.forced_fixed = old.forced_fixed
        self.adapters[j.id] = self.make_adapter(j)
        self.runtimes[j.id] = rt

    async def set_junction(self, junction: str, body: str, actor: str) -> SignalJunction:
        """A junction's new configuration (JSON of a `junctions` entry): validated, stored, audited
        and applied at once; raises ValidationError (its messages name the problems) or UnknownJunction."""
        self.runtime(junction)
        j = SignalJunction.model_validate_json(body)
        if j.id != junction:
            raise ValueError(
                f"the configuration is for junction {j.id!r}, not {junction!r} (the id cannot change)"
            )
        text = body  # as given: a re-dump would mask the adapter's secrets (SNMP community)
        async with self.lock:
            before = hashlib.sha256(self.runtimes[j.id].j.model_dump_json().encode()).hexdigest()[:12]
            after = hashlib.sha256(text.encode()).hexdigest()[:12]
            async with self.db.begin() as conn:
                await conn.execute(sa.delete(junctions).where(junctions.c.id == j.id))
                await conn.execute(
                    sa.insert(junctions).values(
                        id=j.id, body=text, updated_at=self.clock.time(), updated_by=actor[:64]
                    )
                )
            await self._record(actor, j.id, "config", before, after)
            await self._replace(j)
        log.info("signals: junction %s: new configuration %s by %s", j.id, after, actor)
        return j

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
