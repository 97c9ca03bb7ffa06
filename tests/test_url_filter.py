"""The URL filter's judgement of addresses, as properties over every IPv4 address: an IPv6 form
that carries an IPv4 address (IPv4-mapped, NAT64, SIIT, IPv4-compatible, 6to4) is refused exactly
when that IPv4 address is, and the forms that hide their destination are always refused."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from mcp_imagegen.images.fetch import refusal

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
SPECIAL = [
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    )
]  # fmt: skip
ipv4s = st.integers(min_value=0, max_value=2**32 - 1).map(V4)
special_ipv4s = st.sampled_from(SPECIAL).flatmap(
    lambda net: st.integers(0, net.num_addresses - 1).map(lambda offset: net[offset])
)


def forms(address: V4) -> dict[str, V6]:
    """The IPv6 addresses that reach `address`."""
    low = int(address)
    found = {
        "mapped": V6((0xFFFF << 32) | low),
        "nat64": V6((0x64FF9B << 96) | low),
        "siit": V6((0xFFFF << 48) | low),
        "6to4": V6((0x2002 << 112) | (low << 80) | 1),
    }
    if low > 1:  # `::` and `::1` are IPv6's own
        found["compatible"] = V6(low)
    return found


@given(ipv4s)
def test_a_form_carrying_an_ipv4_address_is_judged_by_it(address: V4) -> None:
    verdict = refusal(address, [])
    for name, form in forms(address).items():
        assert refusal(form, []) == verdict, f"{name} {form} for {address}"


@given(special_ipv4s)
def test_special_ranges_are_refused_in_every_form(address: V4) -> None:
    assert refusal(address, []) is not None
    for name, form in forms(address).items():
        assert refusal(form, []) is not None, f"{name} {form} reached {address}"


@given(st.integers(0, 2**80 - 1), st.integers(0, 2**96 - 1))
def test_forms_that_hide_their_destination_are_refused(local: int, teredo: int) -> None:
    local_nat64 = V6((0x0064FF9B0001 << 80) | local)
    assert refusal(local_nat64, []) == "a local-use NAT64 address, whose IPv4 destination cannot be checked"
    assert "a Teredo address" in (refusal(V6((0x20010000 << 96) | teredo), []) or "")


def test_an_allowed_network_lets_through_its_addresses_not_a_translators_form_of_them() -> None:
    nas = ipaddress.IPv4Network("10.1.0.0/16")
    assert refusal(V4("10.1.2.3"), [nas]) is None
    assert refusal(V6("::ffff:10.1.2.3"), [nas]) is None  # the same socket
    translated = {name: form for name, form in forms(V4("10.1.2.3")).items() if name != "mapped"}
    assert all(refusal(form, [nas]) == "a private or reserved address" for form in translated.values())
    assert refusal(V6("64:ff9b::a01:203"), [ipaddress.IPv6Network("64:ff9b::/96")]) is None
    assert refusal(V6("::1"), []) == "a loopback address"
    assert refusal(V6("2606:4700::1111"), []) is None
