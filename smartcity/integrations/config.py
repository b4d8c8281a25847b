"""Configuration of alerting: fusion, policies, the dispatcher, and one section per alert channel.

One `AlertsConfig` section (Settings keeps it as `alerts`). Every model forbids unknown keys
and bounds its fields; secrets are SecretStr so they never appear in logs or reprs. Channel
sections (`twilio`, `webhooks`, `mqtt`, a plug-in's own) are validated by the model of the
channel registered for them, and the channel names policies use are checked against the
channel registry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SerializeAsAny,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails

import smartcity.integrations.channels  # noqa: F401  (registers the built-in channels)
from smartcity.core.netpolicy import NetworkPolicy, check_host
from smartcity.fusion.config import FusionConfig
from smartcity.fusion.policy import AlertPolicy, RateLimit
from smartcity.integrations.channel import ChannelConfig, channel_class, channel_classes
from smartcity.integrations.smoke_sensors import SmokeSensorsConfig

MAX_CHANNELS = 64


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DispatcherConfig(_Section):
    concurrency: int = Field(32, description="Deliveries sent at once.", ge=1, le=1024)
    claim_batch: int = Field(200, description="Deliveries claimed per database round trip.", ge=1, le=10_000)
    lease_s: float = Field(
        30.0,
        description="Seconds a claimed delivery is reserved; after a crash it is sent again once this passes.",
        gt=0,
        le=3600,
    )
    poll_s: float = Field(1.0, description="Seconds between looks for due deliveries (escalations, retries).", gt=0, le=60)
    max_attempts: int = Field(8, description="Attempts before a delivery is dead-lettered.", ge=1, le=100)
    backoff_initial_s: float = Field(1.0, description="First retry delay, seconds (doubles each time).", gt=0, le=600)
    backoff_max_s: float = Field(300.0, description="Longest retry delay, seconds.", gt=0, le=86_400)
    send_timeout_s: float = Field(10.0, description="Seconds one send may take before it counts as failed.", gt=0, le=300)


def _details(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[InitErrorDetails]:
    return [
        InitErrorDetails(type=e["type"], loc=(*prefix, *e["loc"]), input=e["input"], ctx=e.get("ctx", {}))
        for e in exc.errors()
    ]


def _channel_sections(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[InitErrorDetails]]:
    """The raw `alerts` mapping with each registered channel's section moved into `channels`
    (type -> that channel's config model), and the errors of those sections at the path the
    user wrote (`twilio.account_sid`, `webhooks[1].url`)."""
    by_section = {cls.section_name(): cls for cls in channel_classes()}
    rest: dict[str, Any] = {}
    found: dict[str, ChannelConfig] = {}  # in the order of the file: errors are listed so too
    errors: list[InitErrorDetails] = []
    for key, value in data.items():
        cls = by_section.get(key)
        if cls is None:
            rest[key] = value
            continue
        if value is None:  # an empty section in YAML: the channel is off
            continue
        try:
            found[cls.type] = cls.parse_section(value)
        except ValidationError as exc:
            errors.extend(_details(exc, (key,)))
    rest["channels"] = found
    return rest, errors


class AlertsConfig(_Section):
    enabled: bool = Field(True, description="Run fusion and alerting.")
    fusion: FusionConfig = Field(default_factory=FusionConfig, description="Rule events -> incidents.")
    policies: tuple[AlertPolicy, ...] = Field(
        (), description="Alert policies; an incident alerts every recipient of every matching policy.", max_length=1000
    )
    rate_limit: RateLimit = Field(
        default_factory=RateLimit, description="Per-recipient limit on the rate-limited channels (SMS, console)."
    )
    dispatcher: DispatcherConfig = Field(default_factory=DispatcherConfig, description="Outbox dispatcher.")
    console_channel: Literal["operators"] = Field("operators", description="Console that plays alert sounds.")
    smoke_sensors: SmokeSensorsConfig | None = Field(
        None, description="IoT smoke and heat detectors over MQTT, fused with the cameras' fire and smoke alerts."
    )
    channels: dict[str, SerializeAsAny[ChannelConfig]] = Field(
        default_factory=dict,
        description="Configured channels by type, filled from their sections (twilio, webhooks, mqtt, ...).",
        max_length=MAX_CHANNELS,
    )

    @model_validator(mode="wrap")
    @classmethod
    def _sections(cls, data: Any, handler: ModelWrapValidatorHandler[AlertsConfig]) -> AlertsConfig:
        if not isinstance(data, Mapping):
            return handler(data)
        if "channels" in data:
            raise ValueError("channels: not a setting; configure each channel in its own section (e.g. twilio, webhooks)")
        rest, errors = _channel_sections(data)
        try:
            out = handler(rest)
        except ValidationError as exc:  # the other sections' errors are listed with the channels'
            errors.extend(_details(exc))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return out

    @model_validator(mode="after")
    def _targets_exist(self) -> AlertsConfig:
        pnames = [p.name for p in self.policies]
        if len(set(pnames)) != len(pnames):
            raise ValueError("policies: duplicate policy names")
        for p in self.policies:
            if (why := self._policy_error(p)) is not None:
                raise ValueError(f"policies[{p.name}]{why}")
        return self

    def _policy_error(self, p: AlertPolicy) -> str | None:
        """What is wrong with the channels a policy names (registered, configured, valid target)."""
        for r in (*p.notify, *p.escalation):
            cls = channel_class(r.channel)
            if cls is None:
                known = ", ".join(sorted(c.type for c in channel_classes()))
                return f": unknown channel {r.channel!r} (known: {known})"
            cfg = self.channel_config(r.channel)
            if cfg is None:
                return f": {r.channel} recipient but no {cls.section_name()} section"
            if (why := cls.target_error(cfg, r.target)) is not None:
                return f": {why}"
        unknown = [c for c in (p.quiet_hours.channels or ()) if channel_class(c) is None] if p.quiet_hours else []
        return f".quiet_hours: unknown channel {unknown[0]!r}" if unknown else None

    def channel_config(self, channel_type: str) -> ChannelConfig | None:
        """The config of a channel: its section, else its defaults when it is always on."""
        cfg = self.channels.get(channel_type)
        if cfg is not None:
            return cfg
        cls = channel_class(channel_type)
        return cls.config_model.model_validate({}) if cls is not None and cls.always_on else None

    def active_channels(self) -> dict[str, ChannelConfig]:
        """Every channel alerting starts: those configured and those always on."""
        out: dict[str, ChannelConfig] = {}
        for cls in channel_classes():
            if (cfg := self.channel_config(cls.type)) is not None:
                out[cls.type] = cfg
        return out

    def resolved_policies(self) -> tuple[AlertPolicy, ...]:
        """The policies with each default quiet-hours channel list filled in: the channels
        whose plug-in wakes people."""
        waking = tuple(c.type for c in channel_classes() if c.wakes_people)
        out = []
        for p in self.policies:
            q = p.quiet_hours
            if q is not None and q.channels is None:
                p = p.model_copy(update={"quiet_hours": q.model_copy(update={"channels": waking})})
            out.append(p)
        return tuple(out)


def outbound_errors(alerts: AlertsConfig, networks: NetworkPolicy) -> list[str]:
    """`path: message` for each integration address outside `outbound_policy.networks` (IP
    literals: a host name is resolved only when the integration connects)."""
    where = "outbound_policy.networks"
    targets: list[tuple[str, str]] = []
    for channel_type, cfg in alerts.channels.items():
        cls = channel_class(channel_type)
        if cls is None:
            continue
        section = cls.section_name()
        targets += [(f"{section}{'' if sub.startswith('[') else '.'}{sub}", host) for sub, host in cls.outbound_hosts(cfg)]
    return [f"{path}: {why}" for path, host in targets if (why := check_host(host, networks, where)) is not None]
