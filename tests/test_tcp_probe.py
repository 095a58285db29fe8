"""TCP service checks against real loopback sockets: one that accepts, one that refuses, one that never answers.

A listener with a backlog of 0 that never accepts takes one connection into its queue; the kernel
then drops the SYNs of every later one, so their connects hang until their timeout.
"""

from __future__ import annotations

import errno
import re
import socket
import time
from collections.abc import Iterator, Sequence

import pytest

from netwatch.core.checks import CheckStatus
from netwatch.probes.neterrors import connect_problem
from netwatch.probes.pool import ProbeSettings
from netwatch.probes.tcp import check_tcp
from netwatch.services import ServiceResult, TcpCheckSpec


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@pytest.fixture
def refusing() -> Iterator[int]:
    # Bound but not listening: the port stays ours, and a connect to it is refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def silent() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):  # fills the queue
            yield port


def run(specs: Sequence[TcpCheckSpec], *, deadline_s: float = 60, concurrency: int = 50) -> dict[str, ServiceResult]:
    return check_tcp(specs, ProbeSettings(deadline_at=time.monotonic() + deadline_s, concurrency=concurrency),
                     lambda: None)


def test_a_port_that_accepts_is_ok_with_the_connect_time(listening: int) -> None:
    result = run([TcpCheckSpec("db", "127.0.0.1", listening)])["db"]

    assert (result.status, result.reason, result.status_code, result.size_bytes) == (CheckStatus.OK, None, None, None)
    assert result.elapsed_ms is not None and 0 < result.elapsed_ms < 5000


def test_a_port_that_refuses_fails(refusing: int) -> None:
    result = run([TcpCheckSpec("db", "127.0.0.1", refusing)])["db"]

    assert (result.status, result.reason) == (CheckStatus.FAILED, "connection refused")
    assert result.elapsed_ms is not None


def test_a_name_that_does_not_resolve_fails_with_a_dns_error(listening: int) -> None:
    results = run([TcpCheckSpec("dns", "nothing-here.invalid", listening),
                   TcpCheckSpec("bad-name", "a" * 70 + ".invalid", listening)])

    assert results["dns"].reason == "DNS error: name does not resolve"
    assert results["bad-name"].status is CheckStatus.FAILED
    assert (results["bad-name"].reason or "").startswith("DNS error: ")


def test_a_connect_that_hangs_fails_at_the_timeout(silent: int) -> None:
    started = time.monotonic()
    result = run([TcpCheckSpec("db", "127.0.0.1", silent, timeout_seconds=0.5)])["db"]

    assert (result.status, result.reason) == (CheckStatus.FAILED, "timeout after 0.5 s")
    assert time.monotonic() - started < 5


def test_a_slow_connect_is_degraded(listening: int) -> None:
    results = run([TcpCheckSpec("slow", "127.0.0.1", listening, degraded_after_ms=0),
                   TcpCheckSpec("fast", "127.0.0.1", listening, degraded_after_ms=5000)])

    assert results["slow"].status is CheckStatus.DEGRADED
    assert re.fullmatch(r"slow: \d+ ms >= 0 ms", results["slow"].reason or "")
    assert results["fast"].status is CheckStatus.OK


def test_the_run_deadline_ends_a_pass_of_hanging_connects(silent: int, listening: int) -> None:
    specs = [TcpCheckSpec(f"h{n}", "127.0.0.1", silent, timeout_seconds=30) for n in range(3)]
    started = time.monotonic()
    results = run([*specs, TcpCheckSpec("open", "127.0.0.1", listening)], deadline_s=1.5, concurrency=2)

    assert time.monotonic() - started < 5
    assert list(results) == ["h0", "h1", "h2", "open"]
    assert all((results[f"h{n}"].reason or "").startswith("timeout: the run's deadline came after 1.") for n in (0, 1))
    assert results["h2"].reason == results["open"].reason == "not checked: the run's deadline was used up"


@pytest.mark.parametrize(("error", "reason"), [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "connection refused"),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), "network unreachable"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "host unreachable"),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "connection reset"),
    (OSError(errno.EACCES, "Permission denied"), "connection error: permission denied"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "DNS error: name does not resolve"),
    (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), "DNS error: temporary failure"),
])
def test_connect_problems_are_named(error: OSError, reason: str) -> None:
    assert connect_problem(error) == reason


@pytest.mark.parametrize("limits", [{"concurrency": 0}, {"max_body_bytes": 0}])
def test_settings_refuse_a_pass_that_could_check_nothing(limits: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be at least 1"):
        ProbeSettings(deadline_at=time.monotonic() + 60, **limits)


def test_an_empty_pass_returns_at_once() -> None:
    started = time.monotonic()
    assert run([]) == {}
    assert time.monotonic() - started < 1
