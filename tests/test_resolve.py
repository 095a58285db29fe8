"""Name resolution for sweeps, against the machine's real resolver (/etc/hosts and DNS)."""

from __future__ import annotations

import logging
import socket

import pytest

from netwatch.probes.resolve import Resolution, lookup_addresses, resolve_all


def test_ipv4_literal_passes_through_without_dns() -> None:
    assert resolve_all(["192.0.2.7", "127.0.0.1"]) == {
        "192.0.2.7": Resolution("192.0.2.7", None),
        "127.0.0.1": Resolution("127.0.0.1", None),
    }


def test_localhost_resolves_to_loopback() -> None:
    assert resolve_all(["localhost"]) == {"localhost": Resolution("127.0.0.1", None)}


def test_unknown_name_gets_an_error_not_an_exception() -> None:
    result = resolve_all(["nothing.invalid", "localhost"])

    assert result["nothing.invalid"] == Resolution(None, "DNS: name does not resolve (nothing.invalid)")
    assert result["localhost"].address == "127.0.0.1"


def test_malformed_name_gets_an_error() -> None:
    name = "a" * 70 + ".invalid"  # a DNS label is at most 63 characters

    result = resolve_all([name])[name]

    assert result.address is None
    assert result.error is not None
    assert result.error.startswith("DNS: ")


def test_duplicates_are_resolved_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="netwatch.probes.resolve")

    result = resolve_all(name for name in ["localhost", "localhost", "127.0.0.1", "localhost"])

    assert list(result) == ["localhost", "127.0.0.1"]
    assert [r.getMessage().split()[1] for r in caplog.records if r.getMessage().startswith("resolved")] == [
        "localhost"
    ]


def test_many_names_are_resolved_concurrently() -> None:
    names = [f"host-{n}.invalid" for n in range(40)] + ["localhost"]

    result = resolve_all(names, max_workers=8, timeout_s=10.0)

    assert len(result) == 41
    assert result["localhost"].address == "127.0.0.1"
    assert all(result[name].error for name in names[:-1])


def test_ip_literals_of_either_family_pass_through_without_dns() -> None:
    assert resolve_all(["::1", "fd00::7", "127.0.0.1"], lookup=no_dns) == {
        "::1": Resolution("::1", None), "fd00::7": Resolution("fd00::7", None),
        "127.0.0.1": Resolution("127.0.0.1", None)}


def test_a_literal_of_the_other_family_is_an_error_not_a_lookup() -> None:
    assert resolve_all(["::1", "127.0.0.1"], family="4", lookup=no_dns)["::1"] == Resolution(
        None, "not an IPv4 address (::1)")
    assert resolve_all(["::1", "127.0.0.1"], family="6", lookup=no_dns)["127.0.0.1"] == Resolution(
        None, "not an IPv6 address (127.0.0.1)")


# What a resolver would answer, in its order: the system one here has no name with an IPv6 address.
ZONE = {"dual.test": ["192.0.2.1", "2001:db8::1", "192.0.2.2"], "v6first.test": ["2001:db8::1", "192.0.2.1"],
        "v6only.test": ["2001:db8::2", "2001:db8::3"], "v4only.test": ["192.0.2.3"]}


def no_dns(name: str) -> list[str]:
    raise AssertionError(f"looked up {name}")


def zone(name: str) -> list[str]:
    if name not in ZONE:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return ZONE[name]


@pytest.mark.parametrize(("family", "expected"), [
    ("auto", {"dual.test": "192.0.2.1", "v6first.test": "192.0.2.1", "v6only.test": "2001:db8::2",
              "v4only.test": "192.0.2.3"}),
    ("4", {"dual.test": "192.0.2.1", "v6first.test": "192.0.2.1", "v6only.test": "DNS: no IPv4 address (v6only.test)",
           "v4only.test": "192.0.2.3"}),
    ("6", {"dual.test": "2001:db8::1", "v6first.test": "2001:db8::1", "v6only.test": "2001:db8::2",
           "v4only.test": "DNS: no IPv6 address (v4only.test)"}),
])
def test_family_picks_the_address_of_each_name(family: str, expected: dict[str, str]) -> None:
    """auto: the name's first IPv4 address, else its first IPv6 one; 4 and 6: that family only."""
    result = resolve_all(ZONE, family=family, lookup=zone)

    assert {name: r.address or r.error for name, r in result.items()} == expected


def test_the_system_lookup_asks_for_both_families() -> None:
    """getaddrinfo of a literal needs no DNS: one query answers IPv4 and IPv6 alike."""
    assert (lookup_addresses("::1"), lookup_addresses("127.0.0.1")) == (["::1"], ["127.0.0.1"])


def test_empty_input() -> None:
    assert resolve_all([]) == {}
