"""One pass of service checks: concurrent within a bound, each bounded in time, all by the run's deadline.

`concurrency` worker threads take the checks in order and run each one themselves, given min(its
timeout, the time left before the deadline). The caller's thread watches them: a check whose time
is up fails as timed out there and then, its sockets are shut down (a read blocked in one ends at
once) and it is told it was abandoned, so a server that stalls or drips cannot stretch it; a new
worker takes the place of its worker, so one that cannot be cut short (a name lookup, a TLS
handshake under way) holds up no other check. Running each check in its worker, not in a thread of
its own (netwatch/bounded.py), saves a thread start and two thread hand-offs per check: a sixth of
the CPU of a pass of 1,000 HTTPS checks on loopback. A check with too little time left is not
started and fails as "not checked". The caller's thread also checks the stop flag every slice (a
SIGTERM ends the pass within one) and returns at the deadline whatever is still running, which then
fails as cut short by the deadline. Every check gets a result, in the order given.
"""

from __future__ import annotations

import heapq
import math
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from netwatch.bounded import too_late
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


class _Running:
    """A check under way: when it started and when its budget is up, its sockets, and whether it was given up on."""

    def __init__(self, check: Check, budget_s: float, started: float) -> None:
        self.check = check
        self.budget_s = budget_s
        self.started = started
        self.ends = started + budget_s
        self.sockets = Sockets()
        self.abandoned = threading.Event()

    def give_up(self) -> None:
        self.abandoned.set()
        self.sockets.cut()


class _Pass:
    def __init__(self, checks: Sequence[Check], deadline_at: float) -> None:
        self._checks = list(checks)
        self._deadline_at = deadline_at
        self._lock = threading.Lock()
        # Wakes the watching thread: every check has a result, a check failed with a bug, or a
        # check started whose budget is up before the watcher would wake.
        self._changed = threading.Condition(self._lock)
        self._next = 0
        self._running: dict[str, _Running] = {}
        # (ends, index, name) of the checks started, soonest first; those done are dropped when their time comes.
        # Names, not the checks: a check done holds nothing (its sockets) until then.
        self._ends: list[tuple[float, int, str]] = []
        self._wake_at = math.inf
        self._results: dict[str, ServiceResult] = {}
        self._error: BaseException | None = None
        self._over = False
        self._workers = 0

    def start_worker(self) -> None:
        self._workers += 1
        # Daemon threads: a check blocked in a read must not hold the process at exit.
        threading.Thread(target=self._work, name=f"netwatch-checks-{self._workers}", daemon=True).start()

    def _work(self) -> None:
        while (running := self._take()) is not None:
            try:
                result = running.check.run(running.budget_s, running.sockets, running.abandoned)
            except BaseException as exc:  # a bug in a check: the caller's thread raises it
                self._fail(running, exc)
                return
            if not self._record(running, result):
                return  # given up on: another worker has taken this one's place

    def _take(self) -> _Running | None:
        with self._lock:
            while not self._over and self._next < len(self._checks):
                check = self._checks[self._next]
                self._next += 1
                now = time.monotonic()
                left = self._deadline_at - now
                late = too_late(left, check.timeout_s)
                if late is not None:
                    self._set(failed(check.name, f"not checked: {late}", None))
                    continue
                running = _Running(check, min(check.timeout_s, left), now)
                self._running[check.name] = running
                heapq.heappush(self._ends, (running.ends, self._next, check.name))
                if running.ends < self._wake_at:
                    self._changed.notify()
                return running
            return None

    def _record(self, running: _Running, result: ServiceResult) -> bool:
        """Keeps the result of a check still watched; False when the pass gave up on it (its result is ignored)."""
        with self._lock:
            if self._running.pop(running.check.name, None) is None:
                return False
            self._set(result)
            return True

    def _fail(self, running: _Running, exc: BaseException) -> None:
        with self._lock:
            if self._running.pop(running.check.name, None) is not None:
                self._error = self._error or exc
                self._changed.notify()

    def _set(self, result: ServiceResult) -> None:
        self._results[result.name] = result
        if len(self._results) == len(self._checks):
            self._changed.notify()

    def _done(self) -> bool:
        return self._error is not None or len(self._results) == len(self._checks)

    def watch(self, check_stop: Callable[[], None]) -> None:
        """Returns once every check has a result, or at the deadline; gives up on each check when its budget is up.

        Calls `check_stop` at least every slice; what it raises goes to the caller.
        """
        while True:
            with self._lock:
                if self._done():
                    return
                now = time.monotonic()
                self._wake_at = min(now + _SLICE_S, self._deadline_at, self._ends[0][0] if self._ends else math.inf)
                self._changed.wait(max(0.0, self._wake_at - now))
                if self._done():
                    return
            check_stop()
            now = time.monotonic()
            if now >= self._deadline_at:
                return
            self._expire(now)

    def _expire(self, now: float) -> None:
        """The checks whose budget is up fail as timed out; a new worker takes the place of each one's worker."""
        expired = []
        with self._lock:
            while self._ends and self._ends[0][0] <= now:
                running = self._running.pop(heapq.heappop(self._ends)[2], None)
                if running is not None:  # else done already
                    self._set(timed_out(running.check.name, running.check.timeout_s, running.budget_s))
                    expired.append(running)
            replacements = min(len(expired), len(self._checks) - self._next)
        for running in expired:
            running.give_up()
        for _ in range(replacements):
            self.start_worker()

    def abandon(self) -> dict[str, _Running]:
        """Every check still running is given up on (its sockets shut down); later results are ignored."""
        with self._lock:
            self._over = True
            running, self._running = self._running, {}
        for check in running.values():
            check.give_up()
        return running

    def end(self) -> dict[str, ServiceResult]:
        """Every check's result, in order: one still running was cut short by the deadline."""
        running = self.abandon()
        with self._lock:
            if self._error is not None:
                raise self._error
            now = time.monotonic()
            results = {}
            for check in self._checks:
                result = self._results.get(check.name)
                if result is None and check.name in running:
                    result = _cut_short(check.name, now - running[check.name].started)
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
    for _ in range(min(settings.concurrency, len(checks))):
        state.start_worker()
    try:
        state.watch(check_stop)
    except BaseException:
        state.abandon()
        raise
    return state.end()
