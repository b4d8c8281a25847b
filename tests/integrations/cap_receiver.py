"""A loopback emergency-services endpoint that receives signed CAP POSTs: checks each
signature, validates each document against the OASIS CAP 1.2 XSD and keeps it (tests and
bench/emergency.py)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiohttp import web
from lxml import etree

from smartcity.integrations.cap_message import CAP_NS, validation_error
from smartcity.integrations.channels.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)


@dataclass(frozen=True)
class CapReceived:
    body: bytes
    signed: bool
    schema_error: str | None
    idempotency_key: str
    at: float  # time.time() when received

    def field(self, path: str) -> str:
        """Text of the first element at `path` (CAP names, '/'-separated, e.g. 'info/certainty')."""
        root = etree.fromstring(self.body)
        q = "/".join(f"cap:{p}" for p in path.split("/"))
        found = root.find(q, {"cap": CAP_NS})
        return found.text or "" if found is not None else ""


class CapReceiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[CapReceived] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.arrived = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cap"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        signed = verify_signature(
            self.secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
            now=time.time(),
        )
        self.received.append(
            CapReceived(
                body, signed, validation_error(body), request.headers.get(IDEMPOTENCY_HEADER, ""), time.time()
            )
        )
        self.arrived.set()
        return web.Response(status=202 if signed else 401)

    def of_type(self, msg_type: str) -> list[CapReceived]:
        return [r for r in self.received if r.field("msgType") == msg_type]

    async def wait(self, msg_type: str, n: int = 1, timeout_s: float = 10.0) -> list[CapReceived]:
        deadline = time.monotonic() + timeout_s
        while len(self.of_type(msg_type)) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.of_type(msg_type))} CAP {msg_type}, wanted {n}")
            await asyncio.sleep(0.01)
        return self.of_type(msg_type)

    async def __aenter__(self) -> CapReceiver:
        app = web.Application()
        app.router.add_post("/cap", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
