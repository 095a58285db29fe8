"""The pass of service checks (netwatch/probes/pool.py) with checks that will not end by themselves.

The checks here are real `Check`s whose run blocks on a socket or an event, as a check stuck in a
name lookup or a TLS handshake does; the test ends each block when it is done with it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from netwatch.core.checks import CheckStatus
from netwatch.core.servicecheck import failed
from netwatch.probes.pool import Check, ProbeSettings, Sockets, run_checks
from netwatch.services import ServiceResult


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of a test: what a stuck check waits for, so that its thread ends."""
    event = threading.Event()
    yield event
    event.set()


def quick(name: str) -> Check:
    return Check(name, 5, lambda _budget, _sockets, _abandoned: ServiceResult(name, CheckStatus.OK, None, 1.0))


def settings(concurrency: int) -> ProbeSettings:
    return ProbeSettings(deadline_at=time.monotonic() + 60, concurrency=concurrency)


def test_a_check_that_cannot_be_cut_short_holds_up_no_other_check(release: threading.Event) -> None:
    told: list[threading.Event] = []

    def stuck(_budget: float, _sockets: Sockets, abandoned: threading.Event) -> ServiceResult:
        told.append(abandoned)
        release.wait(30)  # deaf to `abandoned`: a name lookup cannot be interrupted
        return failed("stuck", "released", None)

    started = time.monotonic()
    results = run_checks([Check("stuck", 0.3, stuck), quick("a"), quick("b")], settings(concurrency=1), lambda: None)

    assert time.monotonic() - started < 10
    assert (results["stuck"].status, results["stuck"].reason) == (CheckStatus.FAILED, "timeout after 0.3 s")
    assert [results[name].status for name in ("a", "b")] == [CheckStatus.OK] * 2
    assert told[0].is_set()


def test_a_check_past_its_time_has_its_sockets_shut_down() -> None:
    ours, theirs = socket.socketpair()
    ended = threading.Event()

    def reading(_budget: float, sockets: Sockets, _abandoned: threading.Event) -> ServiceResult:
        sockets.add(ours)
        try:
            data = ours.recv(1)  # no timeout: only the shutdown ends this read
        finally:
            ended.set()
        return ServiceResult("reading", CheckStatus.OK if data else CheckStatus.FAILED, None, 1.0)

    with ours, theirs:
        results = run_checks([Check("reading", 0.3, reading)], settings(concurrency=1), lambda: None)

        assert results["reading"].reason == "timeout after 0.3 s"
        assert ended.wait(10), "the read blocked in the check's socket did not end"


def test_the_late_result_of_a_check_given_up_on_is_ignored(release: threading.Event) -> None:
    told: list[threading.Event] = []
    started, returned = threading.Event(), threading.Event()

    def late(_budget: float, _sockets: Sockets, abandoned: threading.Event) -> ServiceResult:
        told.append(abandoned)
        started.set()
        release.wait(30)
        returned.set()
        return ServiceResult("late", CheckStatus.OK, None, 1.0)

    def gate(_budget: float, _sockets: Sockets, _abandoned: threading.Event) -> ServiceResult:
        # Keeps the pass going until "late", given up on, has come back with its result.
        started.wait(10)
        told[0].wait(10)
        release.set()
        returned.wait(10)
        return ServiceResult("gate", CheckStatus.OK, None, 1.0)

    results = run_checks([Check("late", 0.3, late), Check("gate", 20, gate)], settings(concurrency=2), lambda: None)

    assert returned.is_set()
    assert results["late"].reason == "timeout after 0.3 s"
    assert results["gate"].status is CheckStatus.OK
