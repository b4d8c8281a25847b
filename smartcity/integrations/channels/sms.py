"""The `sms` channel: SMS through the real Twilio SDK (asyncio HTTP client), its config
(the `alerts.twilio` section), its text, and its delivery-status callbacks.

`TwilioSms` sends with `client.messages.create_async`; the API base URL is configurable (a
loopback server in tests). Each request carries the delivery's idempotency key in the
`I-Twilio-Idempotency-Token` header. 5xx, 429 and network errors are transient (retried by
the dispatcher), other 4xx permanent. `twilio_status_route` is the Starlette route of the
status callbacks: it validates X-Twilio-Signature with the SDK's RequestValidator (a forged
one is rejected with 403 and logged) and records delivered/failed; a failed message escalates
the incident to its next recipient at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, SecretStr, field_validator
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from smartcity.core.clock import Clock
from smartcity.core.incidents import DeliveryRecord, DeliveryState, IncidentRecord
from smartcity.core.logsafe import safe
from smartcity.fusion.store import DeliveryOutbox
from smartcity.integrations.channel import (
    AlertChannel,
    ChannelConfig,
    ChannelContext,
    PermanentDeliveryError,
    TransientDeliveryError,
    expect_config,
    http_url,
    register_channel,
)

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
STATUS_PATH = "/integrations/twilio/status"
_idempotency_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("twilio_idempotency_key", default=None)
DELIVERED, FAILED, PENDING, SENT = DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.PENDING, DeliveryState.SENT


class TwilioConfig(ChannelConfig):
    type: Literal["sms"] = "sms"
    account_sid: str = Field(description="Twilio account SID (AC...).", pattern=r"^AC[0-9a-zA-Z]{8,64}$")
    auth_token: SecretStr = Field(description="Twilio auth token (also validates status callbacks).")
    from_number: str = Field(description="Sender number (E.164) or messaging service SID.", min_length=3, max_length=64)
    api_base_url: str = Field(
        "https://api.twilio.com", description="Base URL of the Twilio REST API (a loopback server in tests)."
    )
    status_callback_url: str | None = Field(
        None,
        description="Public URL of this server's status-callback route (e.g. "
        "https://city.example/integrations/twilio/status); empty: no delivery receipts.",
    )

    @field_validator("api_base_url")
    @classmethod
    def _api(cls, v: str) -> str:
        return http_url(v)

    @field_validator("status_callback_url")
    @classmethod
    def _cb(cls, v: str | None) -> str | None:
        return None if not v else http_url(v)


def sms_text(incident: IncidentRecord) -> str:
    """The SMS of an incident: no personal data (kind, severity, cameras, time, count, id)."""
    inc = incident.incident
    when = time.strftime("%H:%M:%S", time.gmtime(inc.first_seen))
    cams = ", ".join(inc.camera_ids[:3]) + (" +" if len(inc.camera_ids) > 3 else "")
    return f"[{inc.severity.value.upper()}] {inc.kind} at {cams} since {when} UTC ({inc.count}x). Incident {inc.incident_id[:8]}"


class KeyedTwilioHttpClient(AsyncTwilioHttpClient):
    """The SDK's asyncio client, adding the current delivery's idempotency key as a header."""

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's signature; the dispatcher times sends out
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        headers = dict(headers or {})
        key = _idempotency_key.get()
        if key is not None:
            headers[IDEMPOTENCY_HEADER] = key
        if auth is not None:  # aiohttp deprecates its `auth` parameter: send the header instead
            headers["Authorization"] = aiohttp.encode_basic_auth(auth[0], auth[1])
        return await super().request(method, url, params, data, headers, None, None, allow_redirects)


@contextlib.contextmanager
def twilio_idempotency(key: str) -> Iterator[None]:
    """Requests of a KeyedTwilioHttpClient made inside carry `key` as Twilio's idempotency token."""
    token = _idempotency_key.set(key)
    try:
        yield
    finally:
        _idempotency_key.reset(token)


@register_channel
class TwilioSms(AlertChannel):
    """The `sms` channel (section `alerts.twilio`). Created inside the running loop (the SDK
    opens an aiohttp session). With `status_callback_url`, `status` validates and applies the
    delivery receipts (the app routes STATUS_PATH to it)."""

    type = "sms"
    section = "twilio"
    config_model = TwilioConfig
    rate_limited = True
    wakes_people = True
    cfg: TwilioConfig

    def __init__(self, cfg: ChannelConfig, ctx: ChannelContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg = tw = expect_config(cfg, TwilioConfig)
        self.http = KeyedTwilioHttpClient()
        self.client = Client(tw.account_sid, tw.auth_token.get_secret_value(), http_client=self.http)
        self.client.api.base_url = tw.api_base_url
        self.sent_sids: list[str] = []
        self.status = (
            TwilioStatusHandler(tw, ctx.outbox, ctx.clock, on_escalated=ctx.wake_dispatcher)
            if tw.status_callback_url
            else None
        )

    @classmethod
    def outbound_hosts(cls, cfg: ChannelConfig) -> list[tuple[str, str]]:
        return [("api_base_url", urlsplit(expect_config(cfg, TwilioConfig).api_base_url).hostname or "")]

    async def send(self, delivery: DeliveryRecord, incident: IncidentRecord) -> DeliveryState:
        callback = f"{self.cfg.status_callback_url}?delivery={delivery.id}" if self.cfg.status_callback_url else None
        try:
            with twilio_idempotency(delivery.idempotency_key):
                msg = await self.client.messages.create_async(
                    to=delivery.target, from_=self.cfg.from_number, body=sms_text(incident), status_callback=callback
                )
        except TwilioRestException as exc:
            raise twilio_delivery_error(exc) from exc
        except (aiohttp.ClientError, OSError, TwilioException) as exc:
            raise TransientDeliveryError(f"Twilio unreachable: {type(exc).__name__}: {exc}") from exc
        if msg.sid:
            self.sent_sids.append(msg.sid)
            del self.sent_sids[:-1000]
        log.info("SMS for incident %s to %s accepted by Twilio as %s", delivery.incident_id, delivery.target, msg.sid)
        return SENT

    async def close(self) -> None:
        await self.http.close()
        await asyncio.sleep(0)  # let aiohttp close its connector


def twilio_delivery_error(exc: TwilioRestException) -> TransientDeliveryError | PermanentDeliveryError:
    """5xx and 429 are worth retrying, other statuses are not."""
    if exc.status >= 500 or exc.status == 429:
        return TransientDeliveryError(f"Twilio HTTP {exc.status}: {exc.msg}")
    return PermanentDeliveryError(f"Twilio HTTP {exc.status} (code {exc.code}): {exc.msg}")


_DELIVERED = {"delivered", "read"}
_FAILED = {"failed", "undelivered", "canceled"}


class TwilioStatusHandler:
    """Validates and applies Twilio status callbacks for one outbox."""

    def __init__(
        self, cfg: TwilioConfig, outbox: DeliveryOutbox, clock: Clock, on_escalated: Callable[[], None] | None = None
    ) -> None:
        if not cfg.status_callback_url:
            raise ValueError("twilio.status_callback_url is needed to receive status callbacks")
        self.cfg = cfg
        self.outbox = outbox
        self.clock = clock
        self.validator = RequestValidator(cfg.auth_token.get_secret_value())
        self.on_escalated = on_escalated
        self.rejected = 0
        self.applied = 0

    async def __call__(self, request: Request) -> Response:
        form = await request.form()
        params: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        # The URL Twilio signed is the public one it was given, not what a proxy forwards to us.
        url = str(self.cfg.status_callback_url)
        if request.url.query:
            url = f"{url}?{request.url.query}"
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not self.validator.validate(url, params, signature):
            self.rejected += 1
            log.warning(
                "rejected a Twilio status callback with an invalid signature from %s (message %s)",
                request.client.host if request.client else "?",
                safe(params.get("MessageSid", "?"), 64),  # sent by anyone: escaped, one line
            )
            return PlainTextResponse("invalid signature", status_code=403)
        try:
            delivery_id = int(request.query_params.get("delivery", ""))
        except ValueError:
            return PlainTextResponse("missing delivery", status_code=400)
        status = str(params.get("MessageStatus", "")).lower()
        now = self.clock.time()
        if status in _DELIVERED:
            await self.outbox.finish(delivery_id, DELIVERED, now, from_states=(PENDING, SENT))
        elif status in _FAILED:
            error = f"Twilio status {safe(status, 32)} (error {safe(params.get('ErrorCode', '?'), 32)})"
            if await self.outbox.finish(delivery_id, FAILED, now, error, from_states=(PENDING, SENT)):
                rows = await self.outbox.list_deliveries_by_id([delivery_id])
                if rows:
                    nxt = await self.outbox.escalate_now(rows[0].incident_id, now)
                    log.error("SMS delivery %d failed (%s); escalated: %s", delivery_id, error, nxt is not None)
                    if nxt is not None and self.on_escalated is not None:
                        self.on_escalated()
        self.applied += 1
        return PlainTextResponse("", status_code=204)


def twilio_status_route(
    get_handler: Callable[[], TwilioStatusHandler | None], path: str = STATUS_PATH
) -> Route:
    """The POST route of Twilio status callbacks; `get_handler` returns the live handler
    (None while alerting is not running: answered 503 so Twilio retries)."""

    async def endpoint(request: Request) -> Response:
        handler = get_handler()
        if handler is None:
            return PlainTextResponse("alerting not running", status_code=503)
        return await handler(request)

    return Route(path, endpoint, methods=["POST"], name="twilio-status")

