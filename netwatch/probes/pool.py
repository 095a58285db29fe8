"""One pass of service checks: concurrent within a bound, each bounded in time, all by the run's deadline.

`concurrency` worker threads take the checks in order; each check runs as a BoundedCall
(netwatch/bounded.py) given min(its timeout, the time left before the deadline), so a server that
stalls or drips cannot stretch it. A check with too little time left is not started and fails as
"not checked". The caller's thread only waits: it checks the stop flag every slice (a SIGTERM
ends the pass within one) and returns at the deadline whatever is still running, which then fails
as cut short by the deadline. Every check gets a result, in the order given.
"""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from netwatch.bounded import BoundedCall, too_late
from netwatch.core.servicecheck import failed
from netwatch.services import ServiceResult

DEFAULT_CONCURRENCY = 50
# The most of an HTTP body read (and matched): a health page or an API answer is far smaller.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# How often the caller's thread looks at the stop flag while checks run.
_SLICE_S = 0.2


@dataclass(frozen=True)
class ProbeSettings:
    """One pass's limits. `deadline_at` is the run's deadline as a time.monotonic() instant."""

    deadline_at: float
    concurrency: int = DEFAULT_CONCURRENCY
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")


class Sockets:
    """The sockets a check has open, shut down when the pass gives up on it: a read blocked in one ends at once.

    A socket timeout bounds each read, not a whole answer, so a server that drips would otherwise
    keep an abandoned check reading (and its connection open) long after its result was written.
    A socket added once they were cut is shut down at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._cut = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            cut = self._cut
        if cut:
            _shut(sock)

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        # The plain socket's shutdown: a TLS socket's own would also drop its TLS state under the
        # feet of the thread reading from it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # closed already


@dataclass(frozen=True)
class Check:
    """One check of a pass: `run(budget_s, sockets, abandoned)` measures it within `budget_s` seconds.

    `run` adds the connections it opens to `sockets` (they are shut down if the pass gives up on
    it) and should stop at its next chance once `abandoned` is set; its result is then ignored.
    """

    name: str
    timeout_s: float
    run: Callable[[float, Sockets, threading.Event], ServiceResult]


def timed_out(name: str, timeout_s: float, budget_s: float) -> ServiceResult:
    """The result of a check that had `budget_s` of its `timeout_s` and did not finish within it."""
    if budget_s < timeout_s:
        return _cut_short(name, budget_s)
    return failed(name, f"timeout after {timeout_s:g} s", budget_s * 1000)


def _cut_short(name: str, elapsed_s: float) -> ServiceResult:
    return failed(name, f"timeout: the run's deadline came after {elapsed_s:.1f} s", elapsed_s * 1000)


class _PassOver(Exception):
    """Raised into a worker's wait once the pass has returned: the check is abandoned."""


class _Pass:
    def __init__(self, checks: Sequence[Check], deadline_at: float) -> None:
        self._checks = list(checks)
        self._deadline_at = deadline_at
        self._lock = threading.Lock()
        self._next = 0
        self._started: dict[str, float] = {}
        self._results: dict[str, ServiceResult] = {}
        self._error: BaseException | None = None
        self._over = threading.Event()
        self.finished = threading.Event()

    def work(self) -> None:
        while (check := self._take()) is not None:
            left = self._deadline_at - time.monotonic()
            late = too_late(left, check.timeout_s)
            if late is not None:
                self._record(failed(check.name, f"not checked: {late}", None))
                continue
            budget = min(check.timeout_s, left)
            with self._lock:
                self._started[check.name] = time.monotonic()
            sockets = Sockets()
            try:
                result = BoundedCall(functools.partial(check.run, budget, sockets), "netwatch-check").wait(
                    budget, self._check_over)
            except _PassOver:
                sockets.cut()
                return
            except BaseException as exc:  # a bug in a check: the caller's thread raises it
                with self._lock:
                    self._error = self._error or exc
                self.finished.set()
                return
            if result is None:
                sockets.cut()
                result = timed_out(check.name, check.timeout_s, budget)
            self._record(result)

    def _take(self) -> Check | None:
        with self._lock:
            if self._over.is_set() or self._next == len(self._checks):
                return None
            self._next += 1
            return self._checks[self._next - 1]

    def _check_over(self) -> None:
        if self._over.is_set():
            raise _PassOver

    def _record(self, result: ServiceResult) -> None:
        with self._lock:
            if self._over.is_set():
                return
            self._results[result.name] = result
            if len(self._results) == len(self._checks):
                self.finished.set()

    def abandon(self) -> None:
        """Every check still running is abandoned; later results are ignored."""
        self._over.set()

    def end(self) -> dict[str, ServiceResult]:
        """Every check's result, in order: one still running was cut short by the deadline."""
        with self._lock:
            self._over.set()
            if self._error is not None:
                raise self._error
            now = time.monotonic()
            results = {}
            for check in self._checks:
                result = self._results.get(check.name)
                if result is None and check.name in self._started:
                    result = _cut_short(check.name, now - self._started[check.name])
                results[check.name] = result or failed(check.name, "not checked: the run's deadline was used up",
                                                       None)
            return results


def run_checks(checks: Sequence[Check], settings: ProbeSettings,
               check_stop: Callable[[], None]) -> dict[str, ServiceResult]:
    """Runs `checks` (unique names) at most `settings.concurrency` at a time; returns by the deadline.

    Whatever `check_stop` raises (Stopped) ends the pass within a slice: every check still running
    is abandoned and the exception goes to the caller.
    """
    names = [check.name for check in checks]
    if len(set(names)) != len(names):
        raise ValueError("check names must be unique")
    if not checks:
        return {}
    state = _Pass(checks, settings.deadline_at)
    for number in range(min(settings.concurrency, len(checks))):
        # Daemon threads: a check blocked in a read must not hold the process at exit.
        threading.Thread(target=state.work, name=f"netwatch-checks-{number}", daemon=True).start()
    try:
        while not state.finished.wait(min(_SLICE_S, max(0.0, settings.deadline_at - time.monotonic()))):
            check_stop()
            if time.monotonic() >= settings.deadline_at:
                break
    except BaseException:
        state.abandon()
        raise
    return state.end()
