"""The `signals` extension's config entry: junctions (the junction model plus the controller,
the mode and the adapter that actuates the real signal controller) and the fall-back limits."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from smartcity.extensions.base import ExtensionConfig

from .controllers import ControllerSettings, MaxPressureSettings
from .junction import JunctionConfig

TOPIC = r"^[^#+\x00]{1,200}$"
Mode = Literal["advisory", "active"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class NoAdapter(_Strict):
    """No outside controller: advisory mode only (recommendations for an operator)."""

    type: Literal["none"] = "none"


class NtcipAdapterConfig(_Strict):
    """An NTCIP 1202 controller over SNMP v2c: phase hold, force-off, vehicle and pedestrian calls."""

    type: Literal["ntcip"] = "ntcip"
    host: str = Field(min_length=1, max_length=255, description="Controller address.")
    port: int = Field(161, ge=1, le=65535)
    community: SecretStr = Field(SecretStr("private"), description="SNMP v2c write community.")
    timeout_s: float = Field(1.0, gt=0, le=10)
    phases: dict[str, int] = Field(
        min_length=1,
        max_length=64,
        description="Signal group id -> NTCIP phase number (1..32) of the controller.",
    )

    @model_validator(mode="after")
    def _numbers(self) -> NtcipAdapterConfig:
        bad = {g: n for g, n in self.phases.items() if not 1 <= n <= 32}
        if bad:
            raise ValueError(f"phases: NTCIP phase numbers are 1..32, got {bad}")
        return self


class HttpAdapterConfig(_Strict):
    """A controller gateway that takes the commanded aspects as JSON (POST)."""

    type: Literal["http"] = "http"
    url: str = Field(pattern=r"^https?://", max_length=2000)
    headers: dict[str, str] = Field(default_factory=dict, max_length=16)
    timeout_s: float = Field(2.0, gt=0, le=30)


class MqttAdapterConfig(_Strict):
    """A controller gateway that takes the commanded aspects as JSON on an MQTT topic (QoS 1)."""

    type: Literal["mqtt"] = "mqtt"
    host: str = Field("127.0.0.1", min_length=1, max_length=255)
    port: int = Field(1883, ge=1, le=65535)
    topic: str = Field(pattern=TOPIC, description="Commands are published here; `<topic>/release` on stop.")
    client_id: str = Field("smartcity-signals", min_length=1, max_length=64)


class TraciAdapterConfig(_Strict):
    """A SUMO simulation (started with --remote-port): the traffic light's state string is set each step."""

    type: Literal["traci"] = "traci"
    host: str = Field("127.0.0.1", min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    tls_id: str = Field(min_length=1, max_length=128)
    links: dict[str, list[int]] = Field(
        min_length=1, max_length=64, description="Signal group id -> indices of the traffic light's links."
    )


AdapterConfig = Annotated[
    NoAdapter | NtcipAdapterConfig | HttpAdapterConfig | MqttAdapterConfig | TraciAdapterConfig,
    Field(discriminator="type"),
]


class SignalJunction(JunctionConfig):
    """A junction as the extension runs it."""

    controller: ControllerSettings = Field(
        default_factory=MaxPressureSettings, description="The live controller."
    )
    mode: Mode = Field(
        "advisory", description="advisory: recommend to an operator; active: command the adapter."
    )
    adapter: AdapterConfig = Field(default_factory=NoAdapter, description="How commands reach the signals.")

    @model_validator(mode="after")
    def _adapter(self) -> SignalJunction:
        if self.mode == "active" and isinstance(self.adapter, NoAdapter):
            raise ValueError("mode 'active' needs an adapter (ntcip, http, mqtt or traci)")
        mapped = getattr(self.adapter, "phases", None) or getattr(self.adapter, "links", None) or {}
        groups = {g.id for g in self.signal_groups}
        unknown = sorted(set(mapped) - groups)
        missing = sorted(groups - set(mapped)) if mapped else []
        if unknown:
            raise ValueError(f"adapter: unknown signal groups {unknown}")
        if missing:
            raise ValueError(f"adapter: signal groups without a mapping {missing}")
        return self


class SignalsConfig(ExtensionConfig):
    """Traffic-signal control from the cameras (config `type: signals`)."""

    type: Literal["signals"] = "signals"
    junctions: list[SignalJunction] = Field(min_length=1, max_length=256)
    tick_s: float = Field(1.0, ge=0.1, le=10, description="Seconds between control decisions.")
    stale_after_s: float = Field(
        10.0,
        ge=1,
        le=600,
        description="A lane group whose camera said nothing this long is stale: fixed plan.",
    )
    min_confidence: float = Field(0.5, ge=0, le=1, description="Measures below this confidence: fixed plan.")
    retime_s: float = Field(
        900.0, ge=60, le=86_400, description="The fixed plan is retimed (Webster) this often."
    )

    @model_validator(mode="after")
    def _unique(self) -> SignalsConfig:
        ids = [j.id for j in self.junctions]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"junctions defined twice: {dup}")
        return self
