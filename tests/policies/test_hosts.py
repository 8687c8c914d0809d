import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.hosts import normalize_destination, parse_host_pattern

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address


@pytest.mark.parametrize(
    ("host", "canonical"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.Example.", "xn--bcher-kva.example"),
        ("ｅｘａｍｐｌｅ．ｃｏｍ", "example.com"),  # fullwidth letters and full stop (UTS 46)
        ("example.com\u3002", "example.com"),  # ideographic full stop as the trailing dot
        ("_dmarc.example.com", "_dmarc.example.com"),
        ("127.0.0.1", V4("127.0.0.1")),
        ("127.0.0.1.", V4("127.0.0.1")),
        ("2130706433", V4("127.0.0.1")),  # one decimal number
        ("0x7f000001", V4("127.0.0.1")),
        ("0X7F.1", V4("127.0.0.1")),
        ("0177.0.0.1", V4("127.0.0.1")),  # octal
        ("127.1", V4("127.0.0.1")),
        ("169.254.43518", V4("169.254.169.254")),
        ("0", V4("0.0.0.0")),
        ("0x", V4("0.0.0.0")),  # WHATWG: an empty hex number is zero
        ("1.2.3.0x", V4("1.2.3.0")),
        ("１２７．０．０．１", V4("127.0.0.1")),  # fullwidth digits
        ("::1", V6("::1")),
        ("[::1]", V6("::1")),
        ("[::ffff:127.0.0.1]", V6("::ffff:7f00:1")),
        ("FE80::1", V6("fe80::1")),
    ],
)
def test_destinations_are_normalised(host: str, canonical: object) -> None:
    assert normalize_destination(host) == canonical


@pytest.mark.parametrize(
    "host",
    [
        "",
        ".",
        "a..b",
        "example.com..",
        "a b.com",
        "exa$mple.com",
        "example.com:443",  # a port is not part of the host
        "foo.123",  # ends in a number, so it must be an address, and is not one
        "1.2.3.4.5",
        "256.0.0.1",
        "1.2.3.09",  # 09 is not octal
        "4294967296",
        "-example.com",
        "x" * 64 + ".com",
        ".".join(["a" * 60] * 5),  # over 253 characters
        "[::1",
        "[example.com]",
        "1.2.3.4%2f",
        "example.com\x00.evil",
        "xn--.com",
    ],
)
def test_malformed_destinations_are_refused(host: str) -> None:
    with pytest.raises(ValueError):
        normalize_destination(host)


@given(st.text(alphabet="0123456789abcdefxX.", min_size=1, max_size=24))
def test_every_form_inet_aton_accepts_is_read_as_the_same_address(text: str) -> None:
    try:
        packed = socket.inet_aton(text)
    except OSError:
        return
    assert normalize_destination(text) == V4(packed)


@given(st.text(max_size=80))
def test_normalisation_only_ever_raises_value_error(text: str) -> None:
    try:
        result = normalize_destination(text)
    except ValueError:
        return
    assert isinstance(result, (str, V4, V6))


@given(st.text(max_size=80))
def test_pattern_parsing_only_ever_raises_value_error(text: str) -> None:
    try:
        parse_host_pattern(text)
    except ValueError:
        pass


@pytest.mark.parametrize(
    ("text", "kind", "name", "network", "ports"),
    [
        ("*", "any", "", None, None),
        ("*:*", "any", "", None, ((1, 65535),)),
        ("API.Example.com.", "name", "api.example.com", None, None),
        ("api.example.com:8443", "name", "api.example.com", None, ((8443, 8443),)),
        ("*.Example.com", "glob", "*.example.com", None, None),
        ("api-?.bücher.example:8000-8999", "glob", "api-?.xn--bcher-kva.example", None, ((8000, 8999),)),
        ("metadata", "name", "metadata", None, None),
        ("192.0.2.7", "network", "", "192.0.2.7/32", None),
        ("10.0.0.0/8:5432", "network", "", "10.0.0.0/8", ((5432, 5432),)),
        ("fd00::/8", "network", "", "fd00::/8", None),
        ("::1", "network", "", "::1/128", None),
        ("[::1]:8080", "network", "", "::1/128", ((8080, 8080),)),
        ("[2001:db8::/32]:*", "network", "", "2001:db8::/32", ((1, 65535),)),
    ],
)
def test_host_patterns(text: str, kind: str, name: str, network: str | None, ports: object) -> None:
    pattern = parse_host_pattern(text)
    assert (pattern.kind, pattern.name, pattern.ports, str(pattern)) == (kind, name, ports, text)
    assert pattern.network == (None if network is None else ipaddress.ip_network(network))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("example.*", "top-level"),
        ("*.*", "top-level"),
        ("10.*.*.*", "use a network"),
        ("127.1", "dotted decimal"),
        ("2130706433", "dotted decimal"),
        ("10.0.0.1/8", "host bits"),
        ("10.0.0.0/33", "not an IP address or network"),
        ("example.com:0", "port must be"),
        ("example.com:65536", "port must be"),
        ("example.com:443-80", "port must be"),
        ("example.com:https", "port must be"),
        ("[::1]8080", "only ':port'"),
        ("[::1", "without ']'"),
        ("*.exa$mple.com", "not a valid host name"),
        ("ex ample.com", "not a valid host name"),
        ("*.ex ample.com", "not a valid host name"),
        ("a*$.example.com", "wildcard labels"),
    ],
)
def test_malformed_patterns_are_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_host_pattern(text)
