"""Whether a profile admits a destination: host allow-lists with SSRF in mind.

The danger of an allow-list of globs is what the glob admits by accident: ``*`` must not open the
cloud metadata service (169.254.169.254, fd00:ec2::254, 100.100.100.200, 192.0.0.192, ``metadata``),
loopback, the private network or an address written so that it does not look like one (``2130706433``,
``[::ffff:127.0.0.1]``, ``64:ff9b::a9fe:a9fe``). So internal destinations are admitted only by an entry
that names them explicitly: the exact name, or a network lying wholly inside internal address space.

A name can still resolve to an internal address (DNS rebinding, ``169.254.169.254.nip.io``); the proxy
calls ``enforce.check_connection`` with the address it connected to, before any request byte is sent.
"""

from __future__ import annotations

import ipaddress

from policies.gateway import GatewayProfile
from policies.globs import glob_matches
from policies.hosts import Address, Destination, HostPattern, normalize_destination

__all__ = ["admits", "is_internal", "refusal", "resolved_refusal"]

_INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        # IPv4 special-purpose blocks that no public service lives in (IANA registry, RFC 6890 and successors).
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        # IPv6: unspecified, loopback, discard, IETF assignments (Teredo, ORCHID...), documentation,
        # unique-local (AWS metadata fd00:ec2::254), link-local, site-local, multicast, local-use NAT64.
        "::/128", "::1/128", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10",
        "fec0::/10", "ff00::/8", "64:ff9b:1::/48",
    )
)  # fmt: skip

_EMBEDDING_V4 = tuple(
    ipaddress.ip_network(n)
    for n in ("::ffff:0:0/96", "::/96", "64:ff9b::/96", "::ffff:0:0:0/96")  # mapped, compatible, NAT64, SIIT
)

_INTERNAL_SUFFIXES = ("localhost", "localdomain", "local", "internal", "intranet", "private", "corp", "home", "lan",
                      "home.arpa")  # fmt: skip
"""RFC 6761 (localhost), RFC 6762 (local, and appendix G's private-use names), RFC 8375, ICANN's .internal."""
_DOTTED_SUFFIXES = tuple(f".{suffix}" for suffix in _INTERNAL_SUFFIXES)


def is_internal(dest: Destination) -> bool:
    """Whether a destination may be a host of the gateway's own network rather than a public service."""
    if isinstance(dest, str):
        return "." not in dest or dest in _INTERNAL_SUFFIXES or dest.endswith(_DOTTED_SUFFIXES)
    return any(not a.is_global or a.is_multicast or any(a in n for n in _INTERNAL_NETWORKS) for a in _views(dest))


def admits(pattern: HostPattern, dest: Destination, port: int, default_ports: tuple[int, ...]) -> bool:
    """Whether one allow-list entry admits ``dest:port``."""
    ranges = pattern.ports if pattern.ports is not None else tuple((p, p) for p in default_ports)
    if not any(low <= port <= high for low, high in ranges):
        return False
    if pattern.kind == "any":
        return not is_internal(dest)
    if pattern.kind == "name":
        return dest == pattern.name
    if pattern.kind == "glob":
        return isinstance(dest, str) and not is_internal(dest) and glob_matches(pattern.name, dest)
    network = pattern.network
    if isinstance(dest, str) or network is None:
        return False
    inside = [a for a in _views(dest) if a.version == network.version and a in network]
    return bool(inside) and (not is_internal(dest) or _wholly_internal(network))


def refusal(host: str, port: int, profile: GatewayProfile) -> str | None:
    """Why ``profile`` does not admit ``host:port`` (a host that does not parse is not admitted); None if it does."""
    try:
        dest = normalize_destination(host)
    except ValueError as exc:
        return f"not a valid destination: {exc}"
    if any(admits(p, dest, port, profile.default_ports) for p in profile.hosts):
        return None
    internal = " (an internal destination: only an explicit entry admits it)" if is_internal(dest) else ""
    return f"{_show(dest)}:{port} is not in profile {profile.name!r}'s hosts{internal}"


def resolved_refusal(host: str, address: str, port: int, profile: GatewayProfile) -> str | None:
    """Why ``host`` (already admitted) may not connect to ``address``, the address it resolved to; None if it may.

    Only an internal address is refused, and only when no entry names ``host`` exactly or lists the address.
    """
    try:
        dest, resolved = normalize_destination(host), ipaddress.ip_address(address.strip("[]"))
    except ValueError as exc:
        return f"not a valid destination: {exc}"
    if not is_internal(resolved):
        return None
    named = any(p.kind == "name" and p.name == dest for p in profile.hosts)
    if named or any(admits(p, resolved, port, profile.default_ports) for p in profile.hosts if p.kind == "network"):
        return None
    return f"{_show(dest)} resolved to internal address {resolved}, which profile {profile.name!r} does not list"


def _views(address: Address) -> tuple[Address, ...]:
    """The address and the IPv4 address it carries (mapped, compatible, NAT64, SIIT, 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return (address,)
    if address.sixtofour is not None:
        return (address, address.sixtofour)
    if any(address in n for n in _EMBEDDING_V4) and int(address) & 0xFFFFFFFF:
        return (address, ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return (address,)


def _wholly_internal(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    """0.0.0.0/0 admits public addresses only; 10.0.0.0/8 or 169.254.169.254/32 lists internal ones on purpose."""
    return any(network.version == n.version and network.subnet_of(n) for n in _INTERNAL_NETWORKS)  # type: ignore[arg-type]


def _show(dest: Destination) -> str:
    return f"[{dest}]" if isinstance(dest, ipaddress.IPv6Address) else str(dest)
