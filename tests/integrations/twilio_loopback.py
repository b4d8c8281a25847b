"""A loopback server that speaks Twilio's Messages API, for tests driving the real SDK.

POST /2010-04-01/Accounts/{sid}/Messages.json (HTTP basic auth with the account SID and
token): answers 201 with a message resource, or an injected failure status first; de-duplicates
by the I-Twilio-Idempotency-Token header; then sends signed status callbacks (sent, delivered
or failed) to the message's StatusCallback URL, as Twilio does.
POST .../Calls.json: answers 201 with a call resource and keeps To, From and the TwiML
(de-duplicated by the same header): the voice calls of emergency dispatch.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


@dataclass
class Received:
    sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    idempotency_key: str | None
    at: float = field(default_factory=time.time)


@dataclass
class ReceivedCall:
    sid: str
    to: str
    from_: str
    twiml: str
    idempotency_key: str | None
    at: float = field(default_factory=time.time)


class LoopbackTwilio:
    def __init__(self, account_sid: str, auth_token: str, *, final_status: str = "delivered") -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.final_status = final_status
        self.messages: list[Received] = []  # unique messages created
        self.requests = 0  # every POST, failed ones included
        self.fail_statuses: list[int] = []  # answered, in order, before any success
        self.hold: asyncio.Event | None = None  # while set and not released, requests wait
        self.got_request = asyncio.Event()
        self.callbacks_sent: list[tuple[str, int]] = []
        self.calls: list[ReceivedCall] = []  # unique calls placed
        self._calls_by_key: dict[str, ReceivedCall] = {}
        self._by_key: dict[str, Received] = {}
        self._seq = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)
        app.router.add_post("/2010-04-01/Accounts/{sid}/Calls.json", self._call)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _authorised(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    async def _create(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.got_request.set()
        if request.match_info["sid"] != self.account_sid or not self._authorised(request):
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_statuses:
            status = self.fail_statuses.pop(0)
            return web.json_response({"code": 20500, "message": "Internal Server Error", "status": status}, status=status)
        form = await request.post()
        key = request.headers.get(IDEMPOTENCY_HEADER)
        msg = self._by_key.get(key) if key else None
        if msg is None:
            msg = Received(
                sid=f"SM{next(self._seq):032x}",
                to=str(form.get("To", "")),
                from_=str(form.get("From", "")),
                body=str(form.get("Body", "")),
                status_callback=str(form["StatusCallback"]) if "StatusCallback" in form else None,
                idempotency_key=key,
            )
            self.messages.append(msg)
            if key:
                self._by_key[key] = msg
            if msg.status_callback:
                task = asyncio.get_running_loop().create_task(self._callbacks(msg))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return web.json_response(self._resource(msg), status=201)

    async def _call(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.match_info["sid"] != self.account_sid or not self._authorised(request):
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        if self.fail_statuses:
            status = self.fail_statuses.pop(0)
            return web.json_response({"code": 20500, "message": "Internal Server Error", "status": status}, status=status)
        form = await request.post()
        if "Twiml" not in form and "Url" not in form:
            return web.json_response({"code": 21205, "message": "Url or Twiml is required", "status": 400}, status=400)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        call = self._calls_by_key.get(key) if key else None
        if call is None:
            call = ReceivedCall(
                sid=f"CA{next(self._seq):032x}",
                to=str(form.get("To", "")),
                from_=str(form.get("From", "")),
                twiml=str(form.get("Twiml", "")),
                idempotency_key=key,
            )
            self.calls.append(call)
            if key:
                self._calls_by_key[key] = call
        resource = {
            "sid": call.sid,
            "account_sid": self.account_sid,
            "to": call.to,
            "from": call.from_,
            "status": "queued",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call.sid}.json",
        }
        return web.json_response(resource, status=201)

    async def wait_calls(self, n: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.calls) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.calls)} calls, wanted {n}")
            await asyncio.sleep(0.01)

    def _resource(self, m: Received) -> dict[str, Any]:
        return {
            "sid": m.sid,
            "account_sid": self.account_sid,
            "to": m.to,
            "from": m.from_,
            "body": m.body,
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{m.sid}.json",
        }

    def signed(self, url: str, params: dict[str, str], *, token: str | None = None) -> str:
        return str(RequestValidator(token or self.auth_token).compute_signature(url, params))

    async def post_callback(self, url: str, params: dict[str, str], signature: str) -> int:
        assert self._session is not None
        async with self._session.post(url, data=params, headers={"X-Twilio-Signature": signature}) as resp:
            self.callbacks_sent.append((params.get("MessageStatus", ""), resp.status))
            return resp.status

    async def _callbacks(self, m: Received) -> None:
        assert m.status_callback is not None
        for status in ("sent", self.final_status):
            await asyncio.sleep(0.01)
            params = {"MessageSid": m.sid, "MessageStatus": status, "AccountSid": self.account_sid, "To": m.to}
            if status in ("failed", "undelivered"):
                params["ErrorCode"] = "30003"
            await self.post_callback(m.status_callback, params, self.signed(m.status_callback, params))

    async def wait_messages(self, n: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.messages)} messages, wanted {n}")
            await asyncio.sleep(0.01)
