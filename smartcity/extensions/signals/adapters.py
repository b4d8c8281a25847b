"""How commanded aspects reach the signals: the adapter protocol, its generic HTTP and MQTT
gateways and SUMO's TraCI, each with an injectable transport, and the factory over the config.
(NTCIP 1202 lives in ntcip.py.) `release()` hands the junction back to its local plan."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from smartcity.core.video import SignalState

from .config import (
    AdapterConfig,
    HttpAdapterConfig,
    MqttAdapterConfig,
    NoAdapter,
    NtcipAdapterConfig,
    TraciAdapterConfig,
)
from .junction import JunctionConfig
from .ntcip import NtcipAdapter
from .safety import SignalFrame


class SignalAdapter(Protocol):
    name: str

    async def command(self, frame: SignalFrame) -> None:
        """Make the signals show `frame` (idempotent: the same frame again is harmless)."""
        ...

    async def release(self) -> None:
        """Hand the junction back to its own (fixed) plan."""
        ...

    async def close(self) -> None: ...


def frame_document(junction: str, frame: SignalFrame) -> dict[str, Any]:
    return {
        "junction": junction,
        "t": frame.t,
        "phase": frame.phase,
        "target": frame.target,
        "states": {g: s.value for g, s in frame.states.items()},
    }


class NullAdapter:
    """Advisory only: nothing is commanded."""

    name = "none"

    async def command(self, frame: SignalFrame) -> None:
        return None

    async def release(self) -> None:
        return None

    async def close(self) -> None:
        return None


class HttpAdapter:
    """POSTs each changed frame as JSON; `{"junction": ..., "release": true}` on release."""

    name = "http"

    def __init__(
        self, cfg: HttpAdapterConfig, junction: str, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.cfg = cfg
        self.junction = junction
        self.client = httpx.AsyncClient(transport=transport, timeout=cfg.timeout_s, headers=cfg.headers)
        self.last: dict[str, str] | None = None

    async def command(self, frame: SignalFrame) -> None:
        states = {g: s.value for g, s in frame.states.items()}
        if states != self.last:
            r = await self.client.post(self.cfg.url, json=frame_document(self.junction, frame))
            r.raise_for_status()
            self.last = states

    async def release(self) -> None:
        r = await self.client.post(self.cfg.url, json={"junction": self.junction, "release": True})
        r.raise_for_status()
        self.last = None

    async def close(self) -> None:
        await self.client.aclose()


class Publisher(Protocol):
    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None: ...


class AiomqttPublisher:
    """One aiomqtt connection per publish burst (commands are a few a second at most)."""

    def __init__(self, cfg: MqttAdapterConfig) -> None:
        self.cfg = cfg

    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        import aiomqtt

        async with aiomqtt.Client(self.cfg.host, self.cfg.port, identifier=self.cfg.client_id) as client:
            await client.publish(topic, payload, qos=qos, retain=retain)


class MqttAdapter:
    """Publishes each changed frame (retained, QoS 1) on the topic; release on `<topic>/release`."""

    name = "mqtt"

    def __init__(self, cfg: MqttAdapterConfig, junction: str, publisher: Publisher | None = None) -> None:
        self.cfg = cfg
        self.junction = junction
        self.pub = publisher if publisher is not None else AiomqttPublisher(cfg)
        self.last: dict[str, str] | None = None

    async def command(self, frame: SignalFrame) -> None:
        states = {g: s.value for g, s in frame.states.items()}
        if states != self.last:
            await self.pub.publish(
                self.cfg.topic, json.dumps(frame_document(self.junction, frame)).encode(), 1, True
            )
            self.last = states

    async def release(self) -> None:
        await self.pub.publish(
            f"{self.cfg.topic}/release", json.dumps({"junction": self.junction}).encode(), 1, False
        )
        self.last = None

    async def close(self) -> None:
        return None


_SUMO = {SignalState.GREEN: "G", SignalState.AMBER: "y", SignalState.RED: "r"}


class TraciAdapter:
    """Sets a SUMO traffic light's state string; release restores its own programme.

    `connect` returns a TraCI connection (default: traci.connect to host:port); calls run in a thread."""

    name = "traci"

    def __init__(self, cfg: TraciAdapterConfig, connect: Callable[[], Any] | None = None) -> None:
        self.cfg = cfg
        self._connect = connect or self._default
        self.conn: Any = None
        self.program: str | None = None
        self.size = max(i for idx in cfg.links.values() for i in idx) + 1

    def _default(self) -> Any:
        import traci

        return traci.connect(port=self.cfg.port, host=self.cfg.host, numRetries=2)

    def state(self, frame: SignalFrame) -> str:
        chars = ["r"] * self.size
        for g, idx in self.cfg.links.items():
            for i in idx:
                chars[i] = _SUMO.get(frame.states.get(g, SignalState.RED), "r")
        return "".join(chars)

    def _set(self, state: str) -> None:
        if self.conn is None:
            self.conn = self._connect()
            self.program = self.conn.trafficlight.getProgram(self.cfg.tls_id)
        self.conn.trafficlight.setRedYellowGreenState(self.cfg.tls_id, state)

    async def command(self, frame: SignalFrame) -> None:
        await asyncio.to_thread(self._set, self.state(frame))

    def _release(self) -> None:
        if self.conn is not None and self.program is not None:
            self.conn.trafficlight.setProgram(self.cfg.tls_id, self.program)

    async def release(self) -> None:
        await asyncio.to_thread(self._release)

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            await asyncio.to_thread(conn.close)


def build_adapter(cfg: AdapterConfig, junction: JunctionConfig, **transports: Any) -> SignalAdapter:
    """The adapter of a junction; `transports` (tests): snmp=, http=, mqtt=, traci= replace the default I/O."""
    if isinstance(cfg, NtcipAdapterConfig):
        return NtcipAdapter(cfg, junction, transports.get("snmp"))
    if isinstance(cfg, HttpAdapterConfig):
        return HttpAdapter(cfg, junction.id, transports.get("http"))
    if isinstance(cfg, MqttAdapterConfig):
        return MqttAdapter(cfg, junction.id, transports.get("mqtt"))
    if isinstance(cfg, TraciAdapterConfig):
        return TraciAdapter(cfg, transports.get("traci"))
    assert isinstance(cfg, NoAdapter)
    return NullAdapter()
