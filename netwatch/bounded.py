"""Calls bounded in time: each runs in a daemon thread while the caller waits in short slices.

A socket timeout bounds each read, not a whole exchange: a server that drips one byte at a time
would hold the run for as long as it likes, and a stop (SIGTERM) would wait for it. Each HTTP try
(netwatch/clients/http.py) and each SMTP session (netwatch/notify/email.py) runs through
`BoundedCalls`, so it ends after the time it was given, or within a slice of a stop.
"""

from __future__ import annotations

import queue
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
# How long a thread whose call ended waits for the next call before it ends.
_IDLE_S = 2.0

T = TypeVar("T")
# A call's (result, error), and a call with its abandoned flag and where its reply goes.
_Reply = tuple[T | None, BaseException | None]
_Job = tuple[Callable[[threading.Event], T], threading.Event, "queue.SimpleQueue[_Reply[T]]"]


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


class BoundedCalls(Generic[T]):
    """Runs each `call(abandoned)` in a daemon thread while the caller waits; the caller may give up at any moment.

    A thread is kept between calls, so a run of calls (an HTTP client's pages) pays for one thread
    start, not one per call: a finished call's thread waits up to `idle_s` for the next call, then
    ends. A call starts in an idle thread, or in a new one when none is idle (a call still running,
    one given up on included, keeps its thread). `abandoned` is set once the caller gave up: the
    call should stop at its next chance. One that cannot see it (blocked in a read) goes on until
    that read ends, or until the process ends. The call must not return None, which `run` uses for
    "the time is up".
    """

    def __init__(self, name: str, idle_s: float = _IDLE_S) -> None:
        self._name = name
        self._idle_s = idle_s
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[_Job[T]]] = []

    def run(self, call: Callable[[threading.Event], T], within_s: float, check_stop: Callable[[], None]) -> T | None:
        """The call's result (or its exception), or None once `within_s` has passed.

        Whatever `check_stop` raises, checked every slice, ends the wait; the call is then abandoned.
        """
        abandoned = threading.Event()
        replies: queue.SimpleQueue[_Reply[T]] = queue.SimpleQueue()
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name=self._name, daemon=True).start()
        inbox.put((call, abandoned, replies))
        until = time.monotonic() + within_s
        while True:
            try:
                result, error = replies.get(timeout=min(_WAIT_SLICE_S, max(0.0, until - time.monotonic())))
            except queue.Empty:
                try:
                    check_stop()
                except BaseException:
                    abandoned.set()
                    raise
                if time.monotonic() >= until:
                    abandoned.set()
                    return None
            else:
                if error is not None:
                    raise error
                return result

    def _serve(self, inbox: queue.SimpleQueue[_Job[T]]) -> None:
        job = inbox.get()
        while True:
            call, abandoned, replies = job
            reply: _Reply[T]
            try:
                reply = (call(abandoned), None)
            except BaseException as exc:  # handed to the caller's thread, which raises it
                reply = (None, exc)
            # Idle before the caller has the reply, so that the caller's next call finds this thread.
            with self._lock:
                self._idle.append(inbox)
            replies.put(reply)
            del job, call, abandoned, replies, reply  # an idle thread holds on to no call or result
            try:
                job = inbox.get(timeout=self._idle_s)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:
                        self._idle.remove(inbox)
                        return
                # A caller took this thread as the wait ended: its call is on the way.
                job = inbox.get()
