"""A tiny alert channel defined outside the package: the whole of what adding a channel takes.

`alerts.pager: {url: ..., pagers: [...]}` configures it; policies name it as `channel: pager`.
It POSTs one line of text per page to a paging gateway through the context's HTTP transport
(injectable: the test passes its own).
"""

from __future__ import annotations

from typing import Literal

import httpx
from pydantic import Field, field_validator

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


class PagerConfig(ChannelConfig):
    type: Literal["pager"] = "pager"
    url: str = Field(description="Paging gateway the pages are POSTed to.")
    prefix: str = Field("PAGE", description="First word of every page.", min_length=1, max_length=16)
    pagers: tuple[str, ...] = Field(("duty",), description="Pager names policies may target.", max_length=10)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return http_url(v)


@register_channel
class PagerChannel(AlertChannel):
    type = "pager"
    config_model = PagerConfig
    rate_limited = True  # the per-recipient alerts.rate_limit applies
    cfg: PagerConfig

    def __init__(self, cfg: ChannelConfig, ctx: ChannelContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg = expect_config(cfg, PagerConfig)
        self.client = httpx.AsyncClient(timeout=ctx.send_timeout_s, transport=ctx.http_transport)

    @classmethod
    def target_error(cls, cfg: ChannelConfig, target: str) -> str | None:
        return None if target in expect_config(cfg, PagerConfig).pagers else f"unknown pager {target!r}"

    async def send(self, delivery: DeliveryRecord, incident: IncidentRecord) -> DeliveryState:
        inc = incident.incident
        text = f"{self.cfg.prefix} {delivery.target}: {inc.kind} at {','.join(inc.camera_ids)} ({inc.severity})"
        try:
            resp = await self.client.post(self.cfg.url, content=text.encode(), headers={"Idempotency-Key": delivery.idempotency_key})
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(f"pager gateway: {exc}") from exc
        if resp.status_code >= 500:
            raise TransientDeliveryError(f"pager gateway: HTTP {resp.status_code}")
        if not resp.is_success:
            raise PermanentDeliveryError(f"pager gateway: HTTP {resp.status_code}")
        return DeliveryState.DELIVERED

    async def close(self) -> None:
        await self.client.aclose()
