"""BoundedCalls (netwatch/bounded.py): calls bounded in time that share a thread while they follow one another."""

from __future__ import annotations

import threading

import pytest

from netwatch.bounded import BoundedCalls, never_stopped
from netwatch.errors import Stopped


def current(abandoned: threading.Event) -> threading.Thread:
    return threading.current_thread()


def test_calls_one_after_another_share_one_thread() -> None:
    calls: BoundedCalls[threading.Thread] = BoundedCalls("test-bounded-share")
    first = calls.run(current, 5.0, never_stopped)
    second = calls.run(current, 5.0, never_stopped)
    assert first is not None and first is second
    assert first is not threading.current_thread() and first.daemon


def test_a_call_that_overruns_is_abandoned_and_the_next_call_gets_another_thread() -> None:
    release = threading.Event()
    seen: list[threading.Event] = []

    def blocked(abandoned: threading.Event) -> threading.Thread:
        seen.append(abandoned)
        release.wait(10)
        return threading.current_thread()

    calls: BoundedCalls[threading.Thread] = BoundedCalls("test-bounded-overrun")
    assert calls.run(blocked, 0.05, never_stopped) is None
    assert seen[0].is_set()
    other = calls.run(current, 5.0, never_stopped)
    release.set()
    assert other is not None and other.is_alive()
    # The overrun call's thread ends its call and becomes idle: a later call may use either thread.
    assert calls.run(current, 5.0, never_stopped) is not None


def test_an_error_of_the_call_is_raised_in_the_caller() -> None:
    def fails(abandoned: threading.Event) -> int:
        raise LookupError("no such thing")

    calls: BoundedCalls[int] = BoundedCalls("test-bounded-error")
    with pytest.raises(LookupError, match="no such thing"):
        calls.run(fails, 5.0, never_stopped)
    assert calls.run(lambda abandoned: 7, 5.0, never_stopped) == 7


def test_a_stop_ends_the_wait_and_abandons_the_call() -> None:
    release = threading.Event()
    seen: list[threading.Event] = []

    def blocked(abandoned: threading.Event) -> int:
        seen.append(abandoned)
        release.wait(10)
        return 1

    def stop() -> None:
        raise Stopped("SIGTERM")

    calls: BoundedCalls[int] = BoundedCalls("test-bounded-stop")
    try:
        with pytest.raises(Stopped):
            calls.run(blocked, 30.0, stop)
        assert seen[0].is_set()
    finally:
        release.set()


def test_concurrent_calls_run_in_threads_of_their_own() -> None:
    both = threading.Barrier(2, timeout=10)

    def meet(abandoned: threading.Event) -> threading.Thread:
        both.wait()  # returns only once the other call runs at the same time
        return threading.current_thread()

    calls: BoundedCalls[threading.Thread] = BoundedCalls("test-bounded-concurrent")
    results: list[threading.Thread | None] = []
    caller = threading.Thread(target=lambda: results.append(calls.run(meet, 10.0, never_stopped)))
    caller.start()
    mine = calls.run(meet, 10.0, never_stopped)
    caller.join(10)
    assert mine is not None and results[0] is not None and mine is not results[0]


def test_an_idle_thread_ends_and_a_later_call_starts_a_new_one() -> None:
    calls: BoundedCalls[threading.Thread] = BoundedCalls("test-bounded-idle", idle_s=0.01)
    first = calls.run(current, 5.0, never_stopped)
    assert first is not None
    first.join(10)
    assert not first.is_alive()
    second = calls.run(current, 5.0, never_stopped)
    assert second is not None and second is not first
