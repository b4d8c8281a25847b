"""Webhook alerts: a JSON body POSTed with an HMAC-SHA256 signature over timestamp and body.

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

import httpx

from smartcity.core.clock import Clock
from smartcity.integrations.config import WebhookEndpoint
from smartcity.integrations.dispatcher import PermanentDeliveryError, TransientDeliveryError
from smartcity.integrations.messages import alert_document
from smartcity.storage.outbox import DELIVERED, DeliveryRow, IncidentRecord

SIGNATURE_HEADER = "X-Smartcity-Signature"
TIMESTAMP_HEADER = "X-Smartcity-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


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


class WebhookSender:
    """The `webhook` channel; `transport` is injectable (httpx transports) for tests."""

    channel = "webhook"

    def __init__(
        self,
        endpoints: tuple[WebhookEndpoint, ...],
        clock: Clock,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoints = {e.name: e for e in endpoints}
        self.clock = clock
        self.client = httpx.AsyncClient(timeout=timeout_s, transport=transport, follow_redirects=False)

    async def send(self, delivery: DeliveryRow, incident: IncidentRecord) -> str:
        ep = self.endpoints.get(delivery.target)
        if ep is None:
            raise PermanentDeliveryError(f"unknown webhook endpoint {delivery.target!r}")
        now = self.clock.time()
        body = json.dumps(alert_document(delivery, incident, now), separators=(",", ":")).encode()
        ts = f"{now:.3f}"
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: ts,
            SIGNATURE_HEADER: sign(ep.secret.get_secret_value(), ts, body),
            IDEMPOTENCY_HEADER: delivery.idempotency_key,
        }
        try:
            resp = await self.client.post(ep.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(f"{ep.name}: {type(exc).__name__}: {exc}") from exc
        if resp.is_success:
            return DELIVERED
        if resp.status_code >= 500 or resp.status_code in (408, 429):
            raise TransientDeliveryError(f"{ep.name}: HTTP {resp.status_code}")
        raise PermanentDeliveryError(f"{ep.name}: HTTP {resp.status_code}")

    async def close(self) -> None:
        await self.client.aclose()
