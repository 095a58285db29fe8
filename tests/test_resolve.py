"""Name resolution for sweeps, against the machine's real resolver (/etc/hosts and DNS)."""

from __future__ import annotations

import logging

import pytest

from netwatch.probes.resolve import Resolution, resolve_all


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


def test_empty_input() -> None:
    assert resolve_all([]) == {}
