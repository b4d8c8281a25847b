"""Alert channels as plug-ins: the base class every channel extends, the context it is
started with, the delivery errors it raises, and the one registry (keyed by the config
`type`) through which configuration, start-up and the dispatcher find channels.

A channel is one module (`integrations/channels/<name>.py`, or any module of a third party)
holding its config model (a `ChannelConfig` with a `type` literal), its sender (a subclass of
`AlertChannel` decorated with `@register_channel`) and its traits as class attributes. It is
configured by its section under `alerts:` (the `section` attribute, by default its `type`)
and named by policies as `channel: <type>`.
"""

from __future__ import annotations

import builtins
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict

from smartcity.core.bus import EventBus
from smartcity.core.clock import Clock
from smartcity.core.dispatch_state import DispatchStateStore
from smartcity.core.errors import SmartcityError
from smartcity.core.incidents import DeliveryRecord, DeliveryState, IncidentRecord
from smartcity.core.supervisor import TaskSupervisor
from smartcity.fusion.store import DeliveryOutbox, IncidentStore

log = logging.getLogger(__name__)


class DeliveryError(SmartcityError):
    """A send that did not go through; `permanent` ones are not retried."""

    permanent = False


class TransientDeliveryError(DeliveryError):
    """Worth retrying: server error, timeout, connection refused, broker away."""


class PermanentDeliveryError(DeliveryError):
    """Never worth retrying: invalid number, rejected request, channel not configured."""

    permanent = True


class DeferDelivery(DeliveryError):  # noqa: N818 - a request to the dispatcher, not a failure
    """Not yet: the dispatcher leaves the delivery pending until `until` (unix seconds), or
    until the channel makes it due earlier (e.g. an operator confirmed an emergency)."""

    def __init__(self, until: float, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason


class AuditSink(Protocol):
    """Where a channel records what it dispatched (storage's AuditRepo implements it)."""

    async def record(
        self, *, at: float, actor: str, action: str, target: str, before: Any = None, after: Any = None
    ) -> None: ...


class ChannelConfig(BaseModel):
    """A channel's configuration section. Subclasses narrow `type` to a Literal with that
    literal as default, so a section need not repeat it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str


C = TypeVar("C", bound=ChannelConfig)


def expect_config(cfg: ChannelConfig, model: type[C]) -> C:
    """`cfg` as the channel's own config model (the registry validated it with that model)."""
    if not isinstance(cfg, model):
        raise TypeError(f"expected a {model.__name__}, got {type(cfg).__name__}")
    return cfg


def http_url(v: str) -> str:
    """A config validator's check of an http(s) URL (trailing slash dropped)."""
    if not v.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return v.rstrip("/")


@dataclass(frozen=True)
class ChannelContext:
    """What a channel may use: the bus, the clock, the supervisor for its own tasks, the
    stored deliveries (receipts), a way to wake the dispatcher, and injectable transports."""

    bus: EventBus
    clock: Clock
    supervisor: TaskSupervisor
    outbox: DeliveryOutbox
    send_timeout_s: float
    wake_dispatcher: Callable[[], None]
    http_transport: httpx.AsyncBaseTransport | None = None  # HTTP channels: a loopback in tests
    sites: Mapping[str, str] = field(default_factory=dict)  # camera id -> site
    audit: AuditSink | None = None  # channels that audit what they dispatch (emergency dispatch)
    incidents: IncidentStore | None = None  # channels that queue follow-up deliveries (CAP Update/Cancel)
    dispatch_state: DispatchStateStore | None = None  # what emergency dispatch sent, kept across restarts


class AlertChannel(ABC):
    """One alert channel. Traits are class attributes; `send` returns the state the delivery
    reaches (sent: a receipt follows; delivered) or raises a DeliveryError."""

    type: ClassVar[str]  # the config `type` and the name policies use
    section: ClassVar[str] = ""  # key of its section under `alerts:`; empty: `type`
    config_model: ClassVar[builtins.type[ChannelConfig]]  # `type` is the attribute above here
    rate_limited: ClassVar[bool] = False  # the per-recipient `alerts.rate_limit` applies
    wakes_people: ClassVar[bool] = False  # held back during quiet hours unless a policy lists channels
    always_on: ClassVar[bool] = False  # runs with its default config when its section is absent

    def __init__(self, cfg: ChannelConfig, ctx: ChannelContext) -> None:
        self.cfg = cfg
        self.ctx = ctx

    @classmethod
    def section_name(cls) -> str:
        return cls.section or cls.type

    @classmethod
    def parse_section(cls, value: Any) -> ChannelConfig:
        """The config of the section's value (a channel may accept a shorthand form)."""
        return cls.config_model.model_validate(value)

    @classmethod
    def target_error(cls, cfg: ChannelConfig, target: str) -> str | None:
        """Why a policy may not name `target` on this channel, or None (checked at config time)."""
        return None

    @classmethod
    def outbound_hosts(cls, cfg: ChannelConfig) -> list[tuple[str, str]]:
        """(path under the section, host) of each address the channel connects to, for the
        outbound network policy."""
        return []

    async def start(self) -> None:  # noqa: B027 - an optional hook: most channels run nothing
        """Start what the channel runs besides sending (connections, bridges) under
        `ctx.supervisor`; called once, in the running loop, before the dispatcher starts."""

    @abstractmethod
    async def send(self, delivery: DeliveryRecord, incident: IncidentRecord) -> DeliveryState:
        """Send one alert; the state it reaches, or a DeliveryError."""

    async def close(self) -> None:  # noqa: B027 - an optional hook: most channels hold nothing
        """Undo `start` and release clients (called after the dispatcher stopped)."""


_REGISTRY: dict[str, type[AlertChannel]] = {}

T = TypeVar("T", bound=AlertChannel)


class ChannelRegistryError(SmartcityError):
    """A channel that cannot be registered (name taken, section clashing)."""


RESERVED_SECTIONS = frozenset(
    {"enabled", "fusion", "policies", "rate_limit", "dispatcher", "console_channel", "channels"}
)


def register_channel(cls: type[T]) -> type[T]:
    """Class decorator: make a channel known by its `type` (once; a second class of the same
    type or section is refused)."""
    if not getattr(cls, "type", ""):
        raise ChannelRegistryError(f"{cls.__name__}: a channel needs a `type`")
    model = getattr(cls, "config_model", None)
    if model is None or model.model_fields["type"].default != cls.type:
        raise ChannelRegistryError(f"{cls.__name__}: its config_model needs `type` defaulting to {cls.type!r}")
    section = cls.section_name()
    if section in RESERVED_SECTIONS:
        raise ChannelRegistryError(f"{cls.__name__}: section {section!r} is an alerts setting")
    for other in _REGISTRY.values():
        if other is not cls and (other.type == cls.type or other.section_name() == section):
            raise ChannelRegistryError(f"{cls.__name__}: type {cls.type!r} or section {section!r} is taken by {other.__name__}")
    _REGISTRY[cls.type] = cls
    return cls


def unregister_channel(channel_type: str) -> None:
    """Forget a channel (tests that register a throwaway one)."""
    _REGISTRY.pop(channel_type, None)


def channel_class(channel_type: str) -> type[AlertChannel] | None:
    return _REGISTRY.get(channel_type)


def channel_classes() -> Iterator[type[AlertChannel]]:
    """Registered channels, in registration order."""
    return iter(list(_REGISTRY.values()))
