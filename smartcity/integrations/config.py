"""Configuration of alerting: fusion, policies, dispatcher, Twilio SMS, webhooks, MQTT.

One `AlertsConfig` section (add it to Settings as `alerts`). Every model forbids unknown keys
and bounds its fields; secrets are SecretStr so they never appear in logs or reprs.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from smartcity.core.netpolicy import NetworkPolicy, check_host
from smartcity.fusion.config import FusionConfig
from smartcity.fusion.policy import AlertPolicy, RateLimit

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(v: str) -> str:
    if not v.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return v.rstrip("/")


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


class TwilioConfig(_Section):
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
        return _http_url(v)

    @field_validator("status_callback_url")
    @classmethod
    def _cb(cls, v: str | None) -> str | None:
        return None if not v else _http_url(v)


class WebhookEndpoint(_Section):
    name: str = Field(description="Name policies use as the webhook target.", pattern=_NAME)
    url: str = Field(description="URL the JSON alert is POSTed to.")
    secret: SecretStr = Field(description="HMAC-SHA256 key of the X-Smartcity-Signature header.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _http_url(v)

    @field_validator("secret")
    @classmethod
    def _secret_len(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return v


class MqttConfig(_Section):
    host: str = Field("127.0.0.1", description="Broker host.", min_length=1, max_length=255)
    port: int = Field(1883, description="Broker TCP port.", ge=1, le=65535)
    username: str | None = Field(None, description="Broker user name.", max_length=200)
    password: SecretStr | None = Field(None, description="Broker password.")
    client_id: str = Field("smartcity", description="MQTT client identifier.", min_length=1, max_length=64)
    topic_prefix: str = Field("smartcity", description="Root of the topic tree.", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    publish_events: bool = Field(True, description="Publish every rule event.")
    publish_counts: bool = Field(True, description="Publish count buckets.")
    publish_incidents: bool = Field(True, description="Publish every incident change.")
    publish_camera_status: bool = Field(True, description="Publish camera health (retained).")
    queue_size: int = Field(
        10_000, description="Live events held while the broker is away; the oldest are dropped and counted.", ge=10, le=1_000_000
    )
    reconnect_max_s: float = Field(30.0, description="Longest delay between reconnection attempts.", gt=0, le=600)


class AlertsConfig(_Section):
    enabled: bool = Field(True, description="Run fusion and alerting.")
    fusion: FusionConfig = Field(default_factory=FusionConfig, description="Rule events -> incidents.")
    policies: tuple[AlertPolicy, ...] = Field(
        (), description="Alert policies; an incident alerts every recipient of every matching policy.", max_length=1000
    )
    rate_limit: RateLimit = Field(default_factory=RateLimit, description="Per-recipient limit on SMS and console alerts.")
    dispatcher: DispatcherConfig = Field(default_factory=DispatcherConfig, description="Outbox dispatcher.")
    twilio: TwilioConfig | None = Field(None, description="SMS through Twilio (none: SMS deliveries fail over).")
    webhooks: tuple[WebhookEndpoint, ...] = Field((), description="Webhook endpoints.", max_length=100)
    mqtt: MqttConfig | None = Field(None, description="MQTT broker (none: no MQTT).")
    console_channel: Literal["operators"] = Field("operators", description="Console that plays alert sounds.")

    @model_validator(mode="after")
    def _targets_exist(self) -> AlertsConfig:
        names = [w.name for w in self.webhooks]
        if len(set(names)) != len(names):
            raise ValueError("webhooks: duplicate endpoint names")
        pnames = [p.name for p in self.policies]
        if len(set(pnames)) != len(pnames):
            raise ValueError("policies: duplicate policy names")
        for p in self.policies:
            for r in (*p.notify, *p.escalation):
                if r.channel == "webhook" and r.target not in names:
                    raise ValueError(f"policies[{p.name}]: unknown webhook {r.target!r}")
                if r.channel == "sms" and self.twilio is None:
                    raise ValueError(f"policies[{p.name}]: SMS recipient but no twilio section")
                if r.channel == "mqtt" and self.mqtt is None:
                    raise ValueError(f"policies[{p.name}]: MQTT recipient but no mqtt section")
        return self


def outbound_errors(alerts: AlertsConfig, networks: NetworkPolicy) -> list[str]:
    """`path: message` for each integration address outside `outbound_policy.networks` (IP
    literals: a host name is resolved only when the integration connects)."""
    where = "outbound_policy.networks"
    targets = [(f"webhooks[{i}].url", urlsplit(w.url).hostname or "") for i, w in enumerate(alerts.webhooks)]
    if alerts.mqtt is not None:
        targets.append(("mqtt.host", alerts.mqtt.host))
    if alerts.twilio is not None:
        targets.append(("twilio.api_base_url", urlsplit(alerts.twilio.api_base_url).hostname or ""))
    return [f"{path}: {why}" for path, host in targets if (why := check_host(host, networks, where)) is not None]
