"""Where the server may reach: which schemes, files and networks a camera URL may name
(`cameras_policy`), and which networks alert integrations (webhooks, MQTT) may send to
(`outbound_policy`). An admin's camera URL must not make the server read `/etc/passwd` or query
the cloud metadata service.

Defaults, and why: a city's cameras sit on private networks (10/8, 172.16/12, 192.168/16,
fc00::/7) and some hosted ones on public addresses, and a relay on the server itself (mediamtx,
go2rtc) is common, so private, public and loopback addresses are allowed. Denied are the
addresses no camera or integration has: link-local (169.254/16, fe80::/10: the cloud metadata
services at 169.254.169.254, fd00:ec2::254 and 100.100.100.200 are denied too), "this host"
(0.0.0.0/8, ::), multicast and reserved ranges. A deployment without a local relay should add
127.0.0.0/8 and ::1 to `deny`; one whose cameras are all on known networks should list them in
`allow` instead of everything.

The checks here are pure (no I/O, for config validation): an IP literal is checked against the
networks, a host name only when resolved (`check_resolved`, at API time), a file path as
written (`check_file_realpath` resolves links, at API time).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CameraScheme = Literal["rtsp", "rtsps", "http", "https", "file", "demo"]
CAMERA_SCHEMES: tuple[CameraScheme, ...] = ("rtsp", "rtsps", "http", "https", "file", "demo")
NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https")

DENIED_BY_DEFAULT = (
    "0.0.0.0/8",  # "this host": reaches the server's own services
    "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
    "100.100.100.200/32",  # Alibaba Cloud metadata
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, broadcast
    "::/128",
    "fe80::/10",  # link-local
    "fd00:ec2::254/128",  # AWS metadata over IPv6
    "ff00::/8",  # multicast
)



def canonical(items: list[str], parse: Callable[[str], object], what: str) -> list[str]:
    """Every item parsed and written in its canonical form, or a ValueError naming the bad one."""
    out = []
    for item in items:
        try:
            out.append(str(parse(item.strip())))
        except ValueError:
            raise ValueError(f"{item!r} is not {what}") from None
    return out


def networks(items: list[str], example: str = "10.0.0.0/24") -> list[str]:
    """IP networks (an address is a network of one) in canonical CIDR form, or a ValueError."""
    return canonical(items, lambda s: ipaddress.ip_network(s, strict=False), f"an IP address or CIDR network (e.g. {example})")

class NetworkPolicy(BaseModel):
    """Addresses that may be reached: in one of `allow` and in none of `deny` (deny wins)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0", "::/0"],
        description="Networks (CIDR) that may be reached; everything by default.",
        max_length=1000,
    )
    deny: list[str] = Field(
        default_factory=lambda: list(DENIED_BY_DEFAULT),
        description="Networks (CIDR) that may never be reached, even inside `allow`: link-local and cloud "
        "metadata, 'this host', multicast and reserved ranges by default. Add 127.0.0.0/8 and ::1/128 "
        "when no camera relay runs on the server.",
        max_length=1000,
    )

    @field_validator("allow", "deny")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        return networks(v, "10.0.0.0/8")

    def permits(self, address: str | IPAddress) -> bool:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
        nets = [ipaddress.ip_network(n, strict=False) for n in self.deny]
        if any(ip.version == n.version and ip in n for n in nets):
            return False
        return any(ip.version == n.version and ip in n for n in (ipaddress.ip_network(a, strict=False) for a in self.allow))


class CamerasPolicy(BaseModel):
    """What a camera URL may name, checked in the configuration and in the API."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schemes: list[CameraScheme] = Field(
        default_factory=lambda: list(CAMERA_SCHEMES),
        description="URL schemes cameras may use (drop `file` when cameras are only network streams).",
        max_length=6,
    )
    file_roots: list[Path] = Field(
        default_factory=list,
        description="Folders file:// cameras may read from; empty: the data folder (storage.data_dir). "
        "The bundled demo clip is reached as demo://vtest and needs none.",
        max_length=100,
    )
    networks: NetworkPolicy = Field(default_factory=NetworkPolicy, description="Networks cameras may be on.")


class OutboundPolicy(BaseModel):
    """Where alert integrations (webhooks, MQTT broker, Twilio API base) may connect to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    networks: NetworkPolicy = Field(default_factory=NetworkPolicy, description="Networks integrations may reach.")


def check_host(host: str, networks: NetworkPolicy, where: str = "cameras_policy.networks") -> str | None:
    """Why `host` may not be reached, for an IP literal outside the policy; None otherwise
    (a host name is checked once resolved)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if networks.permits(ip):
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return f"address {ip} is not allowed ({where})"


def check_camera_url(url: str, policy: CamerasPolicy, data_dir: Path) -> str | None:
    """Why a camera URL is refused by the policy (scheme, file outside the roots, address);
    None when it is allowed. Pure: host names and links are checked elsewhere."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in policy.schemes:
        return f"scheme {scheme or '(none)'!r} is not allowed (cameras_policy.schemes: {', '.join(policy.schemes)})"
    if scheme == "file":
        path = os.path.abspath(unquote(parts.netloc + parts.path))
        roots = [os.path.abspath(r) for r in (policy.file_roots or [data_dir])]
        if not any(os.path.commonpath([path, r]) == r for r in roots):
            return f"file outside the allowed folders ({', '.join(roots)}: cameras_policy.file_roots)"
        return None
    if scheme in NETWORK_SCHEMES and parts.hostname:
        return check_host(parts.hostname, policy.networks)
    return None


def check_file_realpath(url: str, policy: CamerasPolicy, data_dir: Path) -> str | None:
    """`check_camera_url` for a file:// URL with its links resolved (reads the file system)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        return None
    real = os.path.realpath(unquote(parts.netloc + parts.path))
    return check_camera_url(Path(real).as_uri(), policy, Path(os.path.realpath(data_dir)))


async def check_resolved(
    host: str, networks: NetworkPolicy, port: int | None = None, where: str = "cameras_policy.networks"
) -> str | None:
    """Resolve `host` (without blocking the loop) and check every address it has: a name that
    points at a denied address is refused like the address. An unresolvable name passes (the
    camera may come online later; it cannot be reached meanwhile)."""
    if (refused := check_host(host, networks, where)) is not None:
        return refused
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        address = str(info[4][0])
        if not networks.permits(address.split("%", 1)[0]):
            return f"{host} resolves to {address}, which is not allowed ({where})"
    return None


async def vet_camera_url(url: str, policy: CamerasPolicy, data_dir: Path) -> str | None:
    """Every check of a camera URL, for the API: the pure ones, then links followed (file) or
    the host name resolved (network), without blocking the loop. None when allowed."""
    if (refused := check_camera_url(url, policy, data_dir)) is not None:
        return refused
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        return await asyncio.to_thread(check_file_realpath, url, policy, data_dir)
    if parts.scheme.lower() in NETWORK_SCHEMES and parts.hostname:
        return await check_resolved(parts.hostname, policy.networks)
    return None
