"""Which address family a host's address is, and which of a name's addresses a sweep pings."""

from __future__ import annotations

import ipaddress

import pytest

from netwatch.core.addresses import choose_address, families_needed, families_of, ip_version, is_ipv4


@pytest.mark.parametrize(("text", "version"), [
    ("127.0.0.1", 4), ("::1", 6), ("FD00::0001", 6), ("::ffff:192.0.2.1", 6), ("fe80::1%eth0", None),
    ("router.invalid", None), ("10.0.0", None), ("", None), ("1:2:3:4:5:6:7:8:9", None),
])
def test_ip_version(text: str, version: int | None) -> None:
    assert ip_version(text) == version
    assert is_ipv4(text) == (version == 4)


@pytest.mark.parametrize("text", [
    "0.0.0.0", "255.255.255.255", "127.1.2.3", "127.0.0.01", "0127.0.0.1", "127.0.0.256", "127.0.0.1 ",
    " 127.0.0.1", "127.0.0.1.", ".127.0.0.1", "1.2.3.4.5", "127..0.1", "1.2.3.4444", "\uff11.0.0.1",
    "\u0663.0.0.1", "0x7f.0.0.1", "+1.2.3.4", "1.2.3.-4", "1_0.2.3.4", "127.1",
])
def test_ip_version_of_dotted_text_is_what_ipaddress_reads(text: str) -> None:
    """ip_version's own check of dotted IPv4 text accepts exactly what ipaddress does."""
    try:
        expected: int | None = ipaddress.ip_address(text).version
    except ValueError:
        expected = None

    assert ip_version(text) == expected


NAME = ["2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2"]  # a resolver's order


@pytest.mark.parametrize(("addresses", "family", "chosen"), [
    (NAME, "auto", "192.0.2.1"), (NAME, "4", "192.0.2.1"), (NAME, "6", "2001:db8::1"),
    (["2001:db8::2"], "auto", "2001:db8::2"), (["2001:db8::2"], "4", None),
    (["192.0.2.9"], "6", None), ([], "auto", None),
])
def test_choose_address_prefers_ipv4_under_auto(addresses: list[str], family: str, chosen: str | None) -> None:
    assert choose_address(addresses, family) == chosen


@pytest.mark.parametrize(("addresses", "family", "needed"), [
    (["127.0.0.1"], "auto", (4,)), (["::1"], "auto", (6,)), (["127.0.0.1", "::1"], "auto", (4, 6)),
    (["router.invalid"], "auto", (4, 6)), (["router.invalid"], "4", (4,)), (["router.invalid"], "6", (6,)),
    ([], "auto", ()),
])
def test_families_needed(addresses: list[str], family: str, needed: tuple[int, ...]) -> None:
    assert families_needed(addresses, family) == needed


def test_families_of() -> None:
    assert [families_of(f) for f in ("auto", "4", "6")] == [(4, 6), (4,), (6,)]
