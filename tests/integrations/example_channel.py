"""A tiny alert channel defined outside the package: the whole of what adding a channel takes.

`alerts.pager: {prefix: "..."}` configures it; policies name it as `channel: pager`. It
"pages" by appending a line to an injected inbox (its transport), which a test reads back.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from smartcity.core.incidents import DeliveryRecord, DeliveryState, IncidentRecord
from smartcity.integrations.channel import (
    AlertChannel,
    ChannelConfig,
    ChannelContext,
    PermanentDeliveryError,
    expect_config,
    register_channel,
)


class PagerConfig(ChannelConfig):
    type: Literal["pager"] = "pager"
    prefix: str = Field("PAGE", description="First word of every page.", min_length=1, max_length=16)
    pagers: tuple[str, ...] = Field(("duty",), description="Pager names policies may target.", max_length=10)


@register_channel
class PagerChannel(AlertChannel):
    type = "pager"
    config_model = PagerConfig
    rate_limited = True  # the per-recipient alerts.rate_limit applies
    cfg: PagerConfig
    # the transport: where pages go (a test swaps in its own list before alerting starts)
    inbox: ClassVar[list[str]] = []

    def __init__(self, cfg: ChannelConfig, ctx: ChannelContext) -> None:
        super().__init__(cfg, ctx)
        self.cfg = expect_config(cfg, PagerConfig)

    @classmethod
    def target_error(cls, cfg: ChannelConfig, target: str) -> str | None:
        return None if target in expect_config(cfg, PagerConfig).pagers else f"unknown pager {target!r}"

    async def send(self, delivery: DeliveryRecord, incident: IncidentRecord) -> DeliveryState:
        if delivery.target not in self.cfg.pagers:
            raise PermanentDeliveryError(f"unknown pager {delivery.target!r}")
        inc = incident.incident
        self.inbox.append(f"{self.cfg.prefix} {delivery.target}: {inc.kind} at {','.join(inc.camera_ids)} ({inc.severity})")
        return DeliveryState.DELIVERED
