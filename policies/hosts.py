"""Host names and addresses as a policy writes them and as a destination arrives: one normalisation for both.

A destination is compared in one canonical form, so that ``Example.COM.``, ``example.com`` and
``ｅｘａｍｐｌｅ．ｃｏｍ`` are the same host and ``2130706433``, ``0x7f.1`` and ``0177.0.0.1`` are all
127.0.0.1: names become lower-case IDNA A-labels without the trailing dot, and any name whose last label
is a number is parsed the way URL parsers and ``inet_aton`` parse IPv4 (WHATWG URL, "ends in a number"),
because that is the address a client library will connect to. Anything else is not a host.

Host patterns, as written in ``gateway.profiles[].hosts``::

    api.example.com        that name (exact: admits an internal name such as ``metadata`` only like this)
    *.example.com          a glob over public names (``*`` spans dots; never the top-level label)
    *                      any public name or public address
    10.0.0.0/8  192.0.2.7  an IPv4 network or address (dotted decimal only)
    fd00::/8  [::1]        an IPv6 network or address (brackets needed when a port follows)
    ...:443  ...:8000-8999  ...:*     a port, a range or any port; without one, the profile's default_ports
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

import idna

from policies.globs import is_glob

__all__ = ["Address", "Destination", "HostPattern", "normalize_destination", "parse_host_pattern"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Destination = str | Address
"""A normalised destination: an A-label host name, or an IP address."""

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_GLOB_LABEL = re.compile(r"[a-z0-9_*?-]{1,63}")
_PORT = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?")
_MAX_NAME = 253


@dataclass(frozen=True)
class HostPattern:
    """One parsed entry of a host allow-list."""

    text: str
    """As written in the policy (what findings and errors quote)."""
    kind: Literal["any", "name", "glob", "network"]
    name: str = ""
    """For ``name`` and ``glob``: the normalised name or glob."""
    network: Network | None = None
    ports: tuple[tuple[int, int], ...] | None = None
    """Inclusive port ranges; None: the profile's default ports."""

    def __str__(self) -> str:
        return self.text


def normalize_destination(host: str) -> Destination:
    """The canonical form of a destination host, or ValueError saying why it is not a host."""
    if host.startswith("[") and host.endswith("]"):
        return _ipv6(host[1:-1])
    if ":" in host:
        return _ipv6(host)
    return _name_or_ipv4(host)


def parse_host_pattern(text: str) -> HostPattern:
    """Parse one allow-list entry; ValueError (a policy load error) when it is ambiguous or malformed."""
    text = text.strip()
    host, ports = _split_port(text)
    if host == "*":
        return HostPattern(text, "any", ports=ports)
    if "/" in host or ":" in host:
        return HostPattern(text, "network", network=_network(host), ports=ports)
    if is_glob(host):
        return HostPattern(text, "glob", name=_glob(host), ports=ports)
    dest = _name_or_ipv4(host)
    if isinstance(dest, str):
        return HostPattern(text, "name", name=dest, ports=ports)
    if str(dest) != host:
        raise ValueError(f"host pattern {text!r}: write IPv4 addresses in dotted decimal ({dest})")
    return HostPattern(text, "network", network=ipaddress.ip_network(dest), ports=ports)


def _split_port(text: str) -> tuple[str, tuple[tuple[int, int], ...] | None]:
    if not text:
        raise ValueError("a host pattern must not be empty")
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"host pattern {text!r}: '[' without ']'")
        host, rest = text[1:close], text[close + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(f"host pattern {text!r}: only ':port' may follow ']'")
        return host, _ports(text, rest[1:])
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, _ports(text, port)
    return text, None  # no port, or a bare IPv6 address/network


def _ports(text: str, spec: str) -> tuple[tuple[int, int], ...]:
    if spec == "*":
        return ((1, 65535),)
    match = _PORT.fullmatch(spec)
    low, high = (int(match[1]), int(match[2] or match[1])) if match else (0, 0)
    if not (1 <= low <= high <= 65535):
        raise ValueError(f"host pattern {text!r}: port must be 1-65535, a range low-high or '*'")
    return ((low, high),)


def _network(host: str) -> Network:
    try:
        return ipaddress.ip_network(host, strict=True)
    except ValueError as exc:
        raise ValueError(f"host pattern {host!r} is not an IP address or network: {exc}") from exc


def _glob(host: str) -> str:
    labels = [label if is_glob(label) else _label(host, label) for label in host.lower().removesuffix(".").split(".")]
    if all(is_glob(label) or label.isdigit() for label in labels) and any(label.isdigit() for label in labels):
        raise ValueError(f"host pattern {host!r} looks like an address glob: use a network (10.0.0.0/8)")
    if is_glob(labels[-1]):
        raise ValueError(f"host pattern {host!r}: a wildcard may not stand for the top-level label")
    if not all(_GLOB_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"host pattern {host!r}: wildcard labels may use a-z, 0-9, '-', '_', '*' and '?'")
    return ".".join(labels)


def _label(host: str, label: str) -> str:
    if not label.isascii():
        try:
            label = idna.encode(label, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"{host!r} is not a valid internationalised host name: {exc}") from exc
    if not _LABEL.fullmatch(label):
        raise ValueError(f"{host!r} is not a valid host name")
    return label


def _ipv6(text: str) -> ipaddress.IPv6Address:
    try:
        return ipaddress.IPv6Address(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an IPv6 address") from exc


def _name_or_ipv4(host: str) -> Destination:
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"{host!r} is not a valid internationalised host name: {exc}") from exc
    name = host.lower().removesuffix(".")
    labels = name.split(".")
    if _is_number(labels[-1]):
        return _ipv4(name)
    if len(name) > _MAX_NAME or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{host!r} is not a valid host name")
    return name


def _is_number(label: str) -> bool:
    return label.isdigit() or (label.startswith("0x") and all(c in "0123456789abcdef" for c in label[2:]))


def _ipv4(name: str) -> ipaddress.IPv4Address:
    """WHATWG URL's IPv4 parser: 1-4 parts, each decimal, octal (leading 0) or hex (0x); the last fills the rest."""
    parts = name.split(".")
    if len(parts) > 4:
        raise ValueError(f"{name!r} ends in a number but is not an IPv4 address")
    numbers = [_ipv4_part(name, part) for part in parts]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{name!r} is out of range for an IPv4 address")
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _ipv4_part(name: str, part: str) -> int:
    if part.startswith("0x"):
        digits, base = part[2:] or "0", 16
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    if not digits.isascii() or not digits.isalnum():
        raise ValueError(f"{name!r} ends in a number but is not an IPv4 address")
    try:
        return int(digits, base)
    except ValueError as exc:
        raise ValueError(f"{name!r} ends in a number but is not an IPv4 address") from exc
