"""A call bounded in time: it runs in a daemon thread while the caller waits in short slices.

A socket timeout bounds each read, not a whole exchange: a server that drips one byte at a time
would hold the run for as long as it likes, and a stop (SIGTERM) would wait for it. Each HTTP try
(netwatch/clients/http.py) and each SMTP session (netwatch/notify/email.py) runs as a
`BoundedCall`, so it ends after the time it was given, or within a slice of a stop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

# Below this much time left before the run's deadline (or the request's own timeout, if shorter), a
# request is not started at all: it could hardly reach the receiver, yet it would spend a delivery
# attempt (documented in README).
MIN_REQUEST_S = 1.0
# How often a caller waiting for a call checks the stop flag and the call's own deadline.
_WAIT_SLICE_S = 0.2

T = TypeVar("T")


def too_late(left_s: float, timeout_s: float) -> str | None:
    """Why a request with `timeout_s` may not start with `left_s` seconds left before the run's deadline, or None."""
    if left_s <= 0:
        return "the run's deadline was used up"
    needs_s = min(MIN_REQUEST_S, timeout_s)
    if left_s < needs_s:
        return f"{left_s:.2f}s left before the run's deadline (a request needs {needs_s:g}s)"
    return None


def never_stopped() -> None:
    """The default stop check: never stopped."""


class BoundedCall(Generic[T]):
    """`call(abandoned)` in a daemon thread; the caller waits for it and may give up at any moment.

    `abandoned` is set once the caller gave up: the call should stop at its next chance. One that
    cannot see it (blocked in a read) goes on until that read ends, or until the process ends.
    The call must not return None, which `wait` uses for "the time is up".
    """

    def __init__(self, call: Callable[[threading.Event], T], name: str) -> None:
        self._call = call
        self._done = threading.Event()
        self.abandoned = threading.Event()
        self._result: T | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        try:
            self._result = self._call(self.abandoned)
        except BaseException as exc:  # handed to the caller's thread, which raises it
            self._error = exc
        finally:
            self._done.set()

    def wait(self, within_s: float, check_stop: Callable[[], None]) -> T | None:
        """The call's result (or its exception), or None once `within_s` has passed.

        Whatever `check_stop` raises, checked every slice, ends the wait; the call is then abandoned.
        """
        until = time.monotonic() + within_s
        while not self._done.wait(min(_WAIT_SLICE_S, max(0.0, until - time.monotonic()))):
            try:
                check_stop()
            except BaseException:
                self.abandoned.set()
                raise
            if time.monotonic() >= until:
                self.abandoned.set()
                return None
        if self._error is not None:
            raise self._error
        return self._result
