"""The `webhook` channel: its endpoints (the `alerts.webhooks` section) and the alert, a JSON body POSTed with an HMAC-SHA256 signature over timestamp and body.

Headers: `X-Smartcity-Timestamp` (unix seconds), `X-Smartcity-Signature: sha256=<hex>` of
HMAC(secret, f"{timestamp}." + body), and `Idempotency-Key` (receivers de-duplicate on it).
2xx delivered; 408, 429, 5xx and network errors are retried by the dispatcher (dead letter
after max_attempts, replayable); other 4xx fail permanently. `verify_signature` is the
receiver's side, for integrators and tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator, model_validator

from smartcity.core.incidents import DeliveryRecord, DeliveryState, IncidentRecord
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
from smartcity.integrations.messages import alert_document

SIGNATURE_HEADER = "X-Smartcity-Signature"
TIMESTAMP_HEADER = "X-Smartcity-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class WebhookEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Name policies use as the webhook target.", pattern=_NAME)
    url: str = Field(description="URL the JSON alert is POSTed to.")
    secret: SecretStr = Field(description="HMAC-SHA256 key of the X-Smartcity-Signature header.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return http_url(v)

    @field_validator("secret")
    @classmethod
    def _secret_len(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return v


class WebhookConfig(ChannelConfig):
    """The `alerts.webhooks` section: a list of endpoints (the shorthand) or this mapping."""

    type: Literal["webhook"] = "webhook"
    endpoints: tuple[WebhookEndpoint, ...] = Field((), description="Webhook endpoints.", max_length=100)

    @model_validator(mode="after")
    def _unique(self) -> WebhookConfig:
        names = [w.name for w in self.endpoints]
        if len(set(names)) != len(names):
            raise ValueError("duplicate endpoint names")
        return self


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str, timestamp: str, body: bytes, signature: str, *, now: float, tolerance_s: float = 300.0
) -> bool:
    """Whether `signature` is ours for this body and the timestamp is within the tolerance."""
    try:
        t = float(timestamp)
    except ValueError:
        return False
    if abs(now - t) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


async def post_signed(
    client: httpx.AsyncClient, ep: WebhookEndpoint, body: bytes, content_type: str, idempotency_key: str, now: float
) -> None:
    """POST `body` signed for `ep`; a DeliveryError unless it answers 2xx (408, 429, 5xx and
    network errors transient, other statuses permanent)."""
    ts = f"{now:.3f}"
    headers = {
        "Content-Type": content_type,
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: sign(ep.secret.get_secret_value(), ts, body),
        IDEMPOTENCY_HEADER: idempotency_key,
    }
    try:
        resp = await client.post(ep.url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise TransientDeliveryError(f"{ep.name}: {type(exc).__name__}: {exc}") from exc
    if resp.is_success:
        return
    if resp.status_code >= 500 or resp.status_code in (408, 429):
        raise TransientDeliveryError(f"{ep.name}: HTTP {resp.status_code}")
    raise PermanentDeliveryError(f"{ep.name}: HTTP {resp.status_code}")


_ENDPOINTS = TypeAdapter(Annotated[tuple[WebhookEndpoint, ...], Field(max_length=100)])


@register_channel
class WebhookSender(AlertChannel):
    """The `webhook` channel (section `alerts.webhooks`); targets are endpoint names. The
    HTTP transport is the context's (injectable: a loopback in tests)."""

    type = "webhook"
    section = "webhooks"
    config_model = WebhookConfig
    cfg: WebhookConfig

    def __init__(self, cfg: ChannelConfig, ctx: ChannelContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg = wh = expect_config(cfg, WebhookConfig)
        self.endpoints = {e.name: e for e in wh.endpoints}
        self.clock = ctx.clock
        self.client = httpx.AsyncClient(timeout=ctx.send_timeout_s, transport=ctx.http_transport, follow_redirects=False)

    @classmethod
    def parse_section(cls, value: Any) -> ChannelConfig:
        if isinstance(value, list | tuple):  # the shorthand: the list of endpoints (errors at webhooks[i])
            return WebhookConfig(endpoints=_ENDPOINTS.validate_python(value))
        return super().parse_section(value)

    @classmethod
    def target_error(cls, cfg: ChannelConfig, target: str) -> str | None:
        if target in {e.name for e in expect_config(cfg, WebhookConfig).endpoints}:
            return None
        return f"unknown webhook {target!r}"

    @classmethod
    def outbound_hosts(cls, cfg: ChannelConfig) -> list[tuple[str, str]]:
        eps = expect_config(cfg, WebhookConfig).endpoints
        return [(f"[{i}].url", urlsplit(e.url).hostname or "") for i, e in enumerate(eps)]

    async def send(self, delivery: DeliveryRecord, incident: IncidentRecord) -> DeliveryState:
        ep = self.endpoints.get(delivery.target)
        if ep is None:
            raise PermanentDeliveryError(f"unknown webhook endpoint {delivery.target!r}")
        now = self.clock.time()
        body = json.dumps(alert_document(delivery, incident, now), separators=(",", ":")).encode()
        await post_signed(self.client, ep, body, "application/json", delivery.idempotency_key, now)
        return DeliveryState.DELIVERED

    async def close(self) -> None:
        await self.client.aclose()
