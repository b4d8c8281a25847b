"""Configuration of the live views: frame rate, size and bitrate limits, codecs, ICE servers,
what viewers may ask for (offer size, slots) and where ICE may send packets."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from smartcity.core.netpolicy import canonical, networks

Codec = Literal["H264", "VP8"]


def _default_codecs() -> list[Codec]:
    # H.264 first: the cheaper encoder here (libx264 ultrafast) and hardware-decoded in browsers;
    # VP8 for browsers built without H.264 (some open-source Chromium builds)
    return ["H264", "VP8"]


class IceServerConfig(BaseModel):
    """One STUN or TURN server handed to aiortc (and to be handed to browsers by the console)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    urls: list[str] = Field(
        description="stun:, turn: or turns: URLs of one server, e.g. turn:turn.example.org:3478?transport=udp.",
        min_length=1,
        max_length=8,
    )
    username: str | None = Field(None, description="TURN user name.", max_length=256)
    credential: str | None = Field(None, description="TURN password.", max_length=256)

    @field_validator("urls")
    @classmethod
    def _schemes(cls, v: list[str]) -> list[str]:
        for url in v:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ValueError(f"ICE server URL {url!r} must start with stun:, turn: or turns:")
        return v

    @model_validator(mode="after")
    def _turn_needs_credentials(self) -> IceServerConfig:
        if any(u.startswith(("turn:", "turns:")) for u in self.urls) and not (self.username and self.credential):
            raise ValueError("a TURN server needs a username and a credential")
        return self


class LiveViewConfig(BaseModel):
    """Live views over WebRTC: one shared encoder per camera, relayed to every viewer."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    fps: float = Field(10.0, description="Frames per second sent to viewers (at most).", gt=0, le=30)
    max_width: int = Field(1280, description="Frames wider than this are scaled down, pixels.", ge=64, le=3840)
    max_height: int = Field(720, description="Frames taller than this are scaled down, pixels.", ge=64, le=2160)
    bitrate_kbps: int = Field(1000, description="Target video bitrate of each camera's encoder, kbit/s.", ge=50, le=20_000)
    keyframe_interval_s: float = Field(
        4.0, description="Seconds between periodic key frames (besides those viewers ask for).", ge=0.5, le=300
    )
    keyframe_min_interval_s: float = Field(
        0.5,
        description="Least seconds between key frames forced by viewers (joins, loss reports): "
        "one viewer's losses cannot flood every viewer of the camera with key frames.",
        ge=0,
        le=10,
    )
    codecs: list[Codec] = Field(
        default_factory=_default_codecs,
        description="Video codecs in order of preference; a viewer gets the first its offer supports.",
        min_length=1,
        max_length=2,
    )
    ice_servers: list[IceServerConfig] = Field(
        default_factory=list,
        description="STUN/TURN servers; empty means host candidates only (no outside server contacted).",
        max_length=16,
    )
    max_viewers_per_camera: int = Field(16, description="Live viewers allowed per camera.", ge=1, le=256)
    max_views_per_user: int = Field(
        2,
        description="Live views one user may hold at once, over all cameras, connected or still connecting "
        "(a reloaded page briefly holds two): one user cannot take a camera's every slot.",
        ge=1,
        le=256,
    )
    connect_timeout_s: float = Field(
        10.0,
        description="Seconds a viewer has to connect after its answer before it is dropped and its slot freed.",
        gt=0,
        le=300,
    )
    max_offer_bytes: int = Field(
        64 * 1024, description="Largest SDP offer accepted, bytes (a browser's is 3 to 10 KiB).", ge=1024, le=1 << 20
    )
    max_offer_candidates: int = Field(
        32, description="Most ICE candidates in one offer (a browser sends a handful).", ge=1, le=256
    )
    allowed_candidate_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="Networks (CIDR) a viewer's ICE candidates may be on; the others are dropped before the "
        "server sends them anything, and host names (mDNS) are never resolved. Add the networks your "
        "viewers (and TURN servers) are on; the default, loopback only, serves only this machine.",
        min_length=1,
        max_length=64,
    )
    advertise_addresses: list[str] = Field(
        default_factory=list,
        description="Server addresses its answers name as host candidates; the others are left out so that "
        "internal addresses are not revealed. Empty: those of its addresses that lie in "
        "allowed_candidate_networks.",
        max_length=16,
    )
    viewer_queue_frames: int = Field(
        30,
        description="Encoded frames buffered per viewer; on overflow the backlog is dropped, counted, "
        "and the viewer resumes at the next key frame.",
        ge=2,
        le=1000,
    )

    @field_validator("allowed_candidate_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        return networks(v, "10.20.0.0/16")

    @field_validator("advertise_addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        return canonical(v, ipaddress.ip_address, "an IP address (e.g. 10.20.0.5)")

    @field_validator("codecs")
    @classmethod
    def _unique(cls, v: list[Codec]) -> list[Codec]:
        if len(set(v)) != len(v):
            raise ValueError("codecs must not repeat")
        return v
