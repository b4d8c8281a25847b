"""Configuration of emergency dispatch (the `alerts.dispatch` section of the `cap` channel):
who sends, where each camera is, how each kind of incident is worded in CAP, the policy per
site or camera (`immediate` or `confirm_first`), the signed HTTP endpoints, the Twilio voice
calls and SMS, and the Atom feed.

Targets a policy may name on the `cap` channel: an endpoint's name (signed CAP POST),
`voice:+E164` (a Twilio call reading the alert aloud), `sms:+E164` (a Twilio SMS).
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from smartcity.integrations.channel import ChannelConfig, http_url
from smartcity.integrations.channels.webhook import WebhookEndpoint

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
CapCategory = Literal[
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
]
CapUrgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
CapSeverity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DispatchPolicy(_Section):
    mode: Literal["immediate", "confirm_first"] = Field(
        "immediate",
        description="immediate: the alert goes out at once; confirm_first: it waits for an operator's "
        "confirmation (acknowledge) for at most confirm_within_s, then goes out anyway.",
    )
    confirm_within_s: float = Field(
        60.0, description="confirm_first: seconds an operator has to confirm or cancel.", gt=0, le=3600
    )


class CameraPlace(_Section):
    lat: float = Field(description="Latitude, WGS84 degrees.", ge=-90, le=90)
    lon: float = Field(description="Longitude, WGS84 degrees.", ge=-180, le=180)
    address: str = Field(
        description="Street address read to emergency services.", min_length=1, max_length=300
    )
    radius_m: float = Field(
        100.0, description="Radius of the CAP area around the camera, metres.", gt=0, le=50_000
    )


class KindProfile(_Section):
    category: CapCategory = Field(description="CAP category.")
    event: str = Field(
        description="CAP event text (e.g. 'Fire', 'Person fallen').", min_length=1, max_length=100
    )
    urgency: CapUrgency = Field("Immediate", description="CAP urgency.")
    severity: CapSeverity = Field("Severe", description="CAP severity.")
    instruction: str = Field("", description="CAP instruction text.", max_length=1000)


DEFAULT_KINDS: dict[str, KindProfile] = {
    "fire": KindProfile(category="Fire", event="Fire", severity="Extreme"),
    "smoke": KindProfile(category="Fire", event="Smoke", severity="Severe"),
    "fall": KindProfile(category="Health", event="Person fallen", severity="Severe"),
    "person_down": KindProfile(category="Health", event="Person down", severity="Severe"),
}
OTHER_KIND = KindProfile(category="Safety", event="Incident", severity="Moderate", urgency="Immediate")


class CapTwilio(_Section):
    account_sid: str = Field(description="Twilio account SID (AC...).", pattern=r"^AC[0-9a-zA-Z]{8,64}$")
    auth_token: SecretStr = Field(description="Twilio auth token.")
    from_number: str = Field(description="Caller id / SMS sender (E.164).", pattern=E164.pattern)
    api_base_url: str = Field(
        "https://api.twilio.com", description="Twilio REST API base (a loopback in tests)."
    )
    voice: str = Field("alice", description="TwiML <Say> voice.", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    repeat: int = Field(2, description="Times the message is read in one call.", ge=1, le=5)

    @field_validator("api_base_url")
    @classmethod
    def _api(cls, v: str) -> str:
        return http_url(v)


class CapConfig(ChannelConfig):
    """The `alerts.dispatch` section."""

    type: Literal["cap"] = "cap"
    sender: str = Field(
        description="CAP sender id, no spaces, commas or '<&' (e.g. video@city.example).",
        pattern=r"^[^\s,<&]{1,120}$",
    )
    sender_name: str = Field(
        "City video supervision", description="CAP senderName.", min_length=1, max_length=200
    )
    status: Literal["Actual", "Exercise", "Test"] = Field(
        "Actual", description="CAP status of every message."
    )
    scope: Literal["Restricted", "Public"] = Field("Restricted", description="CAP scope.")
    restriction: str = Field(
        "Emergency services only", description="CAP restriction (scope Restricted).", max_length=200
    )
    language: str = Field(
        "en-US",
        description="RFC 3066 language of the CAP info and of the voice call (en-*, fr-*).",
        pattern=r"^[a-z]{2}(-[A-Z]{2})?$",
    )
    utc_offset_min: int = Field(
        0, description="Offset written in CAP times, minutes east of UTC.", ge=-840, le=840
    )
    expires_min: float = Field(
        120.0, description="Minutes after which a message expires (CAP expires).", gt=0, le=10_080
    )
    public_url: str | None = Field(
        None, description="Public base URL of this server (links to the CAP documents and the evidence)."
    )
    feed_token: SecretStr | None = Field(
        None,
        description="Bearer token of the Atom feed and CAP documents, and the key of the signed evidence links "
        "(>= 16 characters); empty: no feed.",
    )
    link_ttl_s: float = Field(
        86_400.0, description="Lifetime of a signed evidence link, seconds.", gt=0, le=30 * 86_400
    )
    default_policy: DispatchPolicy = Field(
        default_factory=DispatchPolicy, description="Policy of cameras not listed."
    )
    sites: dict[str, DispatchPolicy] = Field(
        default_factory=dict, description="Policy per camera site.", max_length=1000
    )
    cameras: dict[str, DispatchPolicy] = Field(
        default_factory=dict, description="Policy per camera (wins over its site's).", max_length=10_000
    )
    places: dict[str, CameraPlace] = Field(
        default_factory=dict, description="Where each camera is (CAP area).", max_length=10_000
    )
    kinds: dict[str, KindProfile] = Field(
        default_factory=dict,
        description="CAP wording per incident kind (fire, smoke, fall, person_down built in).",
        max_length=100,
    )
    endpoints: tuple[WebhookEndpoint, ...] = Field(
        (), description="Signed HTTP endpoints (name, url, secret: signed like webhooks).", max_length=100
    )
    twilio: CapTwilio | None = Field(None, description="Voice calls and SMS through Twilio.")

    @field_validator("public_url")
    @classmethod
    def _public(cls, v: str | None) -> str | None:
        return None if not v else http_url(v)

    @field_validator("feed_token")
    @classmethod
    def _token(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return v

    @model_validator(mode="after")
    def _unique(self) -> CapConfig:
        names = [e.name for e in self.endpoints]
        if len(set(names)) != len(names):
            raise ValueError("endpoints: duplicate names")
        return self

    def policy_for(self, camera_id: str, site: str | None) -> DispatchPolicy:
        if camera_id in self.cameras:
            return self.cameras[camera_id]
        if site and site in self.sites:
            return self.sites[site]
        return self.default_policy

    def kind(self, kind: str) -> KindProfile:
        return self.kinds.get(kind) or DEFAULT_KINDS.get(kind) or OTHER_KIND

    def target_error(self, target: str) -> str | None:
        how, _, number = target.partition(":")
        if how in ("voice", "sms") and number:
            if self.twilio is None:
                return f"cap target {target!r} needs a dispatch.twilio section"
            return None if E164.match(number) else f"cap target {target!r}: not an E.164 number"
        if target in {e.name for e in self.endpoints}:
            return None
        return f"unknown cap target {target!r} (an endpoint name, voice:+E164 or sms:+E164)"

    def hosts(self) -> list[tuple[str, str]]:
        out = [(f"endpoints[{i}].url", urlsplit(e.url).hostname or "") for i, e in enumerate(self.endpoints)]
        if self.twilio is not None:
            out.append(("twilio.api_base_url", urlsplit(self.twilio.api_base_url).hostname or ""))
        return out
