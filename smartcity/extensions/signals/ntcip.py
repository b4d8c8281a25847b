"""NTCIP 1202 actuation over SNMP v2c (pysnmp): the safety layer's frame becomes phase hold
(groups to stay green), force-off (greens to end), vehicle and pedestrian calls (groups to
come); the controller's own conflict monitor and timings stay in charge of the lamps. On
release every hold, force-off and call is cleared, so the controller runs its own plan.

The transport is injectable: `SnmpSetter` is what sends a set of integer objects; the default
uses pysnmp's asyncio command generator, a test passes the same to a loopback agent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from smartcity.core.video import SignalState

from .config import NtcipAdapterConfig
from .junction import JunctionConfig
from .safety import SignalFrame

# phaseControlGroupTable (NTCIP 1202 v2, 1.3.6.1.4.1.1206.4.2.1.1.5.1.<column>.<group>); each value
# is a bit mask of the 8 phases of its group (bit 0 = phase 8 * (group - 1) + 1)
PHASE_CONTROL = "1.3.6.1.4.1.1206.4.2.1.1.5.1"
COLUMNS = {"hold": 4, "force_off": 5, "vehicle_call": 6, "pedestrian_call": 7}

SnmpSetter = Callable[[list[tuple[str, int]]], Awaitable[None]]


class NtcipError(RuntimeError):
    """The controller refused or did not answer a set."""


@dataclass(frozen=True, slots=True)
class PhaseControl:
    """The phase numbers to hold, force off and call."""

    hold: frozenset[int]
    force_off: frozenset[int]
    vehicle_call: frozenset[int]
    pedestrian_call: frozenset[int]

    def varbinds(self, groups: int) -> list[tuple[str, int]]:
        out = []
        for name, column in COLUMNS.items():
            phases: frozenset[int] = getattr(self, name)
            for g in range(1, groups + 1):
                mask = sum(1 << (p - 1 - 8 * (g - 1)) for p in phases if 8 * (g - 1) < p <= 8 * g)
                out.append((f"{PHASE_CONTROL}.{column}.{g}", mask))
        return out


def phase_control(j: JunctionConfig, phases: Mapping[str, int], frame: SignalFrame) -> PhaseControl:
    """What to ask the controller so that it follows the safety layer's frame."""
    target = next(p for p in j.phases if p.id == frame.target)
    wanted = set(target.groups)
    hold: set[int] = set()
    force: set[int] = set()
    vcall: set[int] = set()
    pcall: set[int] = set()
    for g in j.signal_groups:
        n = phases[g.id]
        state = frame.states.get(g.id, SignalState.RED)
        if g.id in wanted:
            (pcall if g.kind == "pedestrian" else vcall).add(n)
            if state is SignalState.GREEN:
                hold.add(n)
        elif (
            state is not SignalState.RED
        ):  # a green the layer ends (or has ended): the controller ends it too
            force.add(n)
    return PhaseControl(frozenset(hold), frozenset(force), frozenset(vcall), frozenset(pcall))


class PysnmpSetter:
    """Sets through pysnmp's asyncio command generator (one engine per adapter, closed with it)."""

    def __init__(self, cfg: NtcipAdapterConfig) -> None:
        from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

        self.cfg = cfg
        self.engine = SnmpEngine()

    async def __call__(self, varbinds: list[tuple[str, int]]) -> None:
        from pysnmp.hlapi.v3arch.asyncio import (
            CommunityData,
            ContextData,
            Integer32,
            ObjectIdentity,
            ObjectType,
            UdpTransportTarget,
            set_cmd,
        )

        cfg = self.cfg
        target = await UdpTransportTarget.create((cfg.host, cfg.port), timeout=cfg.timeout_s, retries=1)
        err, status, index, _ = await set_cmd(
            self.engine,
            CommunityData(cfg.community.get_secret_value(), mpModel=1),
            target,
            ContextData(),
            *(ObjectType(ObjectIdentity(oid), Integer32(v)) for oid, v in varbinds),
        )
        if err:
            raise NtcipError(f"NTCIP set to {cfg.host}:{cfg.port}: {err}")
        if int(status):
            raise NtcipError(f"NTCIP set to {cfg.host}:{cfg.port}: {status.prettyPrint()} at {int(index)}")

    def close(self) -> None:
        self.engine.close_dispatcher()


class NtcipAdapter:
    """Commands an NTCIP 1202 controller; sends only when what to ask changes."""

    name = "ntcip"

    def __init__(
        self, cfg: NtcipAdapterConfig, junction: JunctionConfig, setter: SnmpSetter | None = None
    ) -> None:
        self.cfg = cfg
        self.j = junction
        self.groups = (max(cfg.phases.values()) + 7) // 8
        self._own = PysnmpSetter(cfg) if setter is None else None
        self.send: SnmpSetter = setter if setter is not None else self._own  # type: ignore[assignment]
        self.last: PhaseControl | None = None

    async def command(self, frame: SignalFrame) -> None:
        pc = phase_control(self.j, self.cfg.phases, frame)
        if pc != self.last:
            await self.send(pc.varbinds(self.groups))
            self.last = pc

    async def release(self) -> None:
        empty = frozenset[int]()
        await self.send(PhaseControl(empty, empty, empty, empty).varbinds(self.groups))
        self.last = None

    async def close(self) -> None:
        if self._own is not None:
            self._own.close()
