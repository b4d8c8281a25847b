"""What a live view takes from a viewer's offer and tells in its answer: size and candidate caps,
ICE candidates only on allowed networks, host candidates only at advertised addresses.

An offer's candidates are where the server sends STUN checks: without a policy a viewer could make
the server send packets to any host and port. An answer's host candidates name the server's own
interfaces: without a policy they reveal internal addresses. These are plain functions over SDP text
(no I/O); the hub runs the parsing ones off the event loop.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from smartcity.webrtc.types import InvalidOffer, LiveViewError

CANDIDATE = "a=candidate:"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_offer_size(sdp: str, max_bytes: int, max_candidates: int) -> None:
    """InvalidOffer when the offer is too big to be parsed at all (cheap: no parsing)."""
    if len(sdp) > max_bytes or len(sdp.encode()) > max_bytes:
        raise InvalidOffer(f"the offer is {len(sdp.encode())} bytes: at most {max_bytes} (live_view.max_offer_bytes)")
    n = sdp.count(CANDIDATE)
    if n > max_candidates:
        raise InvalidOffer(f"the offer has {n} ICE candidates: at most {max_candidates} (live_view.max_offer_candidates)")


def _fields(line: str) -> tuple[str, str] | None:
    """(address, type) of an `a=candidate:` line, None when malformed."""
    parts = line.strip()[len(CANDIDATE) :].split()
    if len(parts) < 8 or parts[6] != "typ":
        return None
    return parts[4], parts[7]


def _ip(address: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None  # a host name (an mDNS .local name, ...): never resolved on a viewer's behalf
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1, judged by the IPv4 networks
    return ip


@dataclass(frozen=True)
class CandidatePolicy:
    """Networks a viewer's candidates may be on, and the server addresses its answers may name
    (empty: the server's own addresses that lie in `networks`)."""

    networks: tuple[IPNetwork, ...]
    advertise: frozenset[IPAddress] = frozenset()

    @classmethod
    def of(cls, networks: Iterable[str], advertise: Iterable[str] = ()) -> CandidatePolicy:
        return cls(
            tuple(ipaddress.ip_network(n, strict=False) for n in networks),
            frozenset(ipaddress.ip_address(a) for a in advertise),
        )

    def allows(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in net for net in self.networks)

    def advertises(self, address: str) -> bool:
        if not self.advertise:
            return self.allows(address)
        ip = _ip(address)
        return ip is not None and ip in self.advertise


def restrict_offer(sdp: str, policy: CandidatePolicy) -> str:
    """The offer without its candidates outside the allowed networks; InvalidOffer if none is left."""
    kept: list[str] = []
    offered = usable = 0
    for line in sdp.splitlines(keepends=True):
        if line.startswith(CANDIDATE):
            offered += 1
            fields = _fields(line)
            if fields is None or not policy.allows(fields[0]):
                continue
            usable += 1
        kept.append(line)
    if not offered:
        raise InvalidOffer("the offer carries no ICE candidate (send it once ICE gathering is complete)")
    if not usable:
        raise InvalidOffer(
            f"none of the offer's {offered} ICE candidates is on a network live views accept "
            "(live_view.allowed_candidate_networks)"
        )
    return "".join(kept)


def restrict_answer(sdp: str, policy: CandidatePolicy) -> str:
    """The answer with only the host candidates the policy advertises (relayed and server-reflexive
    ones are kept: they name a TURN server or the public address a STUN server saw)."""
    kept: list[str] = []
    left = 0
    for line in sdp.splitlines(keepends=True):
        if line.startswith(CANDIDATE):
            fields = _fields(line)
            if fields is None or (fields[1] == "host" and not policy.advertises(fields[0])):
                continue
            left += 1
        kept.append(line)
    if not left:
        raise LiveViewError(
            "no server address to offer the viewer: set live_view.advertise_addresses (and "
            "allowed_candidate_networks) to the addresses viewers reach this server at"
        )
    return "".join(kept)
