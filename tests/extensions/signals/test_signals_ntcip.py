"""The NTCIP 1202 adapter, through pysnmp's real command generator, against a simulated
controller: an SNMP v2c agent on loopback (pysnmp's message codec over an asyncio UDP socket)
that keeps the phase-control objects it is set and refuses a wrong community."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api
from signals_kit import junction

from smartcity.extensions.signals.config import NtcipAdapterConfig
from smartcity.extensions.signals.ntcip import PHASE_CONTROL, NtcipAdapter, NtcipError
from smartcity.extensions.signals.safety import SafetyLayer

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]


class SimulatedController(asyncio.DatagramProtocol):
    """Answers SetRequests: stores each integer object, echoes the varbinds back."""

    def __init__(self, community: str) -> None:
        self.community = community
        self.objects: dict[str, int] = {}
        self.sets = 0
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = (
            transport  # a datagram transport (the selector one is not a DatagramTransport subclass)
        )

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        msg, _ = decoder.decode(data, asn1Spec=V2C.Message())
        if str(V2C.apiMessage.get_community(msg)) != self.community:
            return  # SNMP agents stay silent to a wrong community: the manager times out
        pdu = V2C.apiMessage.get_pdu(msg)
        resp_msg = V2C.apiMessage.get_response(msg)
        resp_pdu = V2C.apiMessage.get_pdu(resp_msg)
        binds = V2C.apiPDU.get_varbinds(pdu)
        if pdu.isSameTypeWith(V2C.SetRequestPDU()):
            self.sets += 1
            for oid, value in binds:
                self.objects[str(oid)] = int(value)
        V2C.apiPDU.set_varbinds(resp_pdu, binds)
        assert self.transport is not None
        self.transport.sendto(encoder.encode(resp_msg), addr)


async def agent(community: str = "private") -> tuple[SimulatedController, asyncio.BaseTransport, int]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: SimulatedController(community), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    return proto, transport, port


def cfg(port: int, community: str = "private") -> NtcipAdapterConfig:
    return NtcipAdapterConfig(
        host="127.0.0.1", port=port, community=community, timeout_s=0.5, phases={"ns": 2, "ew": 4, "ped": 10}
    )


async def test_hold_force_off_and_calls_follow_the_safety_layer() -> None:
    ctl, transport, port = await agent()
    j = junction()
    adapter = NtcipAdapter(cfg(port), j)
    try:
        layer = SafetyLayer(j, 0.0)
        await adapter.command(layer.step(0.0, "NS"))  # ns green: hold phase 2, call it
        assert ctl.objects[f"{PHASE_CONTROL}.4.1"] == 0b10  # hold, group 1 (phases 1-8): phase 2
        assert ctl.objects[f"{PHASE_CONTROL}.6.1"] == 0b10  # vehicle call phase 2
        assert ctl.objects[f"{PHASE_CONTROL}.5.1"] == 0  # nothing forced off
        sets = ctl.sets
        await adapter.command(layer.step(1.0, "NS"))  # nothing new to ask: nothing sent
        assert ctl.sets == sets
        await adapter.command(
            layer.step(8.0, "PED")
        )  # ns still green past its minimum: force it off, call the walk
        assert ctl.objects[f"{PHASE_CONTROL}.5.1"] == 0b10
        assert ctl.objects[f"{PHASE_CONTROL}.4.1"] == 0
        assert ctl.objects[f"{PHASE_CONTROL}.7.2"] == 0b10  # pedestrian call, group 2 (phases 9-16): phase 10
        await adapter.release()  # the controller runs its own plan: every hold, force-off and call cleared
        assert all(v == 0 for v in ctl.objects.values()) and len(ctl.objects) == 8
    finally:
        await adapter.close()
        transport.close()


async def test_a_controller_that_does_not_answer_is_an_error() -> None:
    _ctl, transport, port = await agent(community="secret")
    adapter = NtcipAdapter(cfg(port, community="private"), junction())
    try:
        with pytest.raises(NtcipError, match="127.0.0.1"):
            await adapter.command(SafetyLayer(junction(), 0.0).step(0.0, "NS"))
    finally:
        await adapter.close()
        transport.close()
