import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.hosts import is_internal, refusal, resolved_refusal
from policies.gateway import GatewayProfile

INTERNAL_SPELLINGS = [
    # cloud metadata, however it is written
    "169.254.169.254",
    "2852039166",
    "0xa9fea9fe",
    "0251.0376.0251.0376",
    "169.254.43518",
    "0xA9.0xFE.0xA9.0xFE",
    "[::ffff:169.254.169.254]",
    "::ffff:a9fe:a9fe",
    "64:ff9b::a9fe:a9fe",  # NAT64
    "2002:a9fe:a9fe::1",  # 6to4
    "::169.254.169.254",  # IPv4-compatible
    "fd00:ec2::254",  # AWS IPv6 metadata
    "100.100.100.200",  # Alibaba
    "192.0.0.192",  # Oracle
    "metadata",
    "metadata.google.internal",
    "Metadata.Google.Internal.",
    # loopback and "this host"
    "localhost",
    "LOCALHOST.",
    "api.localhost",
    "127.0.0.1",
    "127.1",
    "0177.1",
    "2130706433",
    "0.0.0.0",
    "0",
    "[::1]",
    "::",
    "[::ffff:127.0.0.1]",
    # private networks and other internal names
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "fe80::1",
    "[fe80::1%eth0]",
    "fc00::1",
    "printer.local",
    "nas.home.arpa",
    "intranet",
    "db.corp",
    "224.0.0.1",
    "255.255.255.255",
    "ff02::1",
]


def profile(*hosts: str, ports: tuple[int, ...] = (80, 443)) -> GatewayProfile:
    return GatewayProfile.model_validate({"name": "p", "hosts": hosts, "default_ports": ports})


@pytest.mark.parametrize("host", INTERNAL_SPELLINGS)
def test_no_glob_admits_an_internal_destination(host: str) -> None:
    why = refusal(host, 443, profile("*", "*:*", "*.internal", "*.google.internal", "*.local", "*.localhost"))
    assert why is not None and "internal destination" in why


@pytest.mark.parametrize("host", INTERNAL_SPELLINGS)
def test_all_of_ipv4_and_ipv6_as_networks_admit_no_internal_destination(host: str) -> None:
    assert refusal(host, 443, profile("0.0.0.0/0", "::/0")) is not None


@pytest.mark.parametrize(
    ("entry", "host"),
    [
        ("169.254.169.254", "169.254.169.254"),
        ("169.254.169.254", "2852039166"),  # the same address, however it is written
        ("169.254.169.254", "[::ffff:169.254.169.254]"),
        ("169.254.0.0/16", "169.254.1.2"),
        ("metadata", "metadata"),
        ("metadata.google.internal", "METADATA.google.internal."),
        ("localhost", "localhost"),
        ("127.0.0.0/8", "127.1"),
        ("::1", "[::1]"),
        ("10.0.0.0/8", "10.20.30.40"),
        ("10.0.0.0/8", "::ffff:10.20.30.40"),
        ("fd00::/8", "fd00:ec2::254"),
    ],
)
def test_an_explicit_entry_admits_an_internal_destination(entry: str, host: str) -> None:
    assert refusal(host, 443, profile(entry)) is None


@pytest.mark.parametrize(
    ("entry", "host", "admitted"),
    [
        ("*.example.com", "api.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "API.Example.COM.", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "evilexample.com", False),
        ("*.example.com", "example.com.evil.net", False),
        ("*.example.com", "api.example.com.evil.net", False),
        ("api-?.example.com", "api-1.example.com", True),
        ("api-?.example.com", "api-12.example.com", False),
        ("api.example.com", "api.example.com", True),
        ("api.example.com", "www.api.example.com", False),
        ("*.bücher.example", "www.xn--bcher-kva.example", True),
        ("xn--bcher-kva.example", "BÜCHER.example", True),
        ("*", "example.org", True),
        ("*", "8.8.8.8", True),
        ("*", "134744072", True),  # 8.8.8.8 as one number is still public
        ("*", "2606:4700::1111", True),
        ("*.example.com", "8.8.8.8", False),  # a name glob never matches an address
        ("0.0.0.0/0", "8.8.8.8", True),
        ("::/0", "[2606:4700::1111]", True),
        ("2606:4700::/32", "2606:4700::1111", True),
        ("2606:4700::/32", "2606:4701::1", False),
        ("8.8.8.0/24", "8.8.4.4", False),
        ("8.8.8.0/24", "::ffff:8.8.8.8", True),
    ],
)
def test_matching(entry: str, host: str, admitted: bool) -> None:
    assert (refusal(host, 443, profile(entry)) is None) is admitted


@pytest.mark.parametrize(
    ("entry", "port", "admitted"),
    [
        ("api.example.com", 443, True),
        ("api.example.com", 80, True),
        ("api.example.com", 22, False),  # not a default port
        ("api.example.com:8443", 8443, True),
        ("api.example.com:8443", 443, False),  # an explicit port replaces the defaults
        ("api.example.com:8000-8999", 8999, True),
        ("api.example.com:8000-8999", 9000, False),
        ("api.example.com:*", 22, True),
        ("[2606:4700::1111]:853", 853, True),
        ("10.0.0.0/8:5432", 5432, True),
        ("10.0.0.0/8:5432", 5433, False),
    ],
)
def test_ports(entry: str, port: int, admitted: bool) -> None:
    host = {"[": "2606:4700::1111", "1": "10.1.1.1"}.get(entry[0], "api.example.com")
    assert (refusal(host, port, profile(entry)) is None) is admitted


def test_default_ports_are_the_profiles() -> None:
    assert refusal("api.example.com", 80, profile("api.example.com", ports=(443,))) is not None
    assert refusal("api.example.com", 443, profile("api.example.com", ports=(443,))) is None


def test_an_empty_list_admits_nothing_and_says_so() -> None:
    why = refusal("api.example.com", 443, profile())
    assert why == "api.example.com:443 is not in profile 'p''s hosts"


def test_an_unparsable_host_is_refused() -> None:
    assert "not a valid destination" in (refusal("exa mple.com", 443, profile("*")) or "")


_INTERNAL_V4 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "192.168.0.0/16")]


@st.composite
def internal_spelling(draw: st.DrawFn) -> tuple[ipaddress.IPv4Network, str]:
    network = draw(st.sampled_from(_INTERNAL_V4))
    address = network[draw(st.integers(0, network.num_addresses - 1))]
    n = int(address)
    octets = [int(b) for b in address.packed]
    spelling = draw(
        st.sampled_from(
            [
                str(address),
                str(n),
                hex(n),
                "0" + oct(n)[2:],
                ".".join(hex(o) for o in octets),
                ".".join("0" + oct(o)[2:] for o in octets),
                f"{octets[0]}.{octets[1]}.{n & 0xFFFF}",
                f"{octets[0]}.{n & 0xFFFFFF}",
                f"{address}.",
                f"[::ffff:{address}]",
                str(ipaddress.IPv6Address((0xFFFF << 32) | n)),
                str(ipaddress.IPv6Address((0x64FF9B << 96) | n)),
                str(ipaddress.IPv6Address((0x2002 << 112) | (n << 80))),
            ]
        )
    )
    return network, spelling


@given(internal_spelling())
def test_every_spelling_of_an_internal_address_needs_its_network_listed(case: tuple[object, str]) -> None:
    network, spelling = case
    assert refusal(spelling, 443, profile("*", "0.0.0.0/0", "::/0")) is not None
    assert refusal(spelling, 443, profile(str(network))) is None


def test_internal_names() -> None:
    assert all(is_internal(n) for n in ("metadata", "localhost", "a.localhost", "x.internal", "h.home.arpa"))
    assert not any(is_internal(n) for n in ("example.com", "internal.example.com", "localhost.example.com"))


@pytest.mark.parametrize(
    ("hosts", "address", "refused"),
    [
        (("*.example.com",), "93.184.215.14", False),
        (("*.example.com",), "169.254.169.254", True),  # DNS rebinding, *.nip.io
        (("*.example.com",), "::ffff:10.0.0.1", True),
        (("*.example.com",), "[::1]", True),
        (("*.example.com", "10.0.0.0/8"), "10.1.2.3", False),
        (("*.example.com", "10.0.0.0/8:5432"), "10.1.2.3", True),  # the network is listed for another port
        (("db.example.com",), "10.1.2.3", False),  # named exactly: the operator knows where it points
        (("*",), "192.168.0.1", True),
    ],
)
def test_resolved_addresses(hosts: tuple[str, ...], address: str, refused: bool) -> None:
    host = "db.example.com"
    why = resolved_refusal(host, address, 443, profile(*hosts))
    assert (why is not None) is refused
    if refused:
        assert why is not None and "resolved to internal address" in why


def test_a_resolved_address_that_does_not_parse_is_refused() -> None:
    assert resolved_refusal("db.example.com", "not-an-ip", 443, profile("*")) is not None
