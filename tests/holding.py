"""A Sigma that holds a POST until the test releases it, and helpers for runs killed meanwhile.

    with HoldingApis(token=TOKEN, hold_from=3) as sigma:   # the 3rd POST /v1/events and later wait
        running = nw.start("run", "ping-sweep")
        sigma.wait_held()                                  # the run is now inside that request
        running.kill()
        sigma.release()

A held POST is already decided and recorded (201 for a new key, like a Sigma that received it and
is slow to answer), so a retry of its key after a kill is answered 409.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from fakeapi import FakeApis
from sqlalchemy import update
from sqlalchemy.engine import Engine

from netwatch.db import tables
from netwatch.deps import utc_now

HOLD_LIMIT_S = 60.0


@dataclass
class HoldingApis(FakeApis):
    """FakeApis whose POST /v1/events number `hold_from` (1-based) and later wait for `release()`."""

    hold_from: int | None = None
    _held: threading.Event = field(default_factory=threading.Event, repr=False)
    _released: threading.Event = field(default_factory=threading.Event, repr=False)
    _posts: int = field(default=0, repr=False)

    def delay_s(self, method: str, path: str) -> float:
        if (method, path) == ("POST", "/v1/events") and self.hold_from is not None:
            with self.lock:
                self._posts += 1
                number = self._posts
            if number >= self.hold_from:
                self._held.set()
                self._released.wait(HOLD_LIMIT_S)
        return super().delay_s(method, path)

    def wait_held(self, timeout: float = 30) -> None:
        """Returns once a POST is being held; fails the test after `timeout`."""
        assert self._held.wait(timeout), f"no POST /v1/events was held within {timeout} s"

    def release(self) -> None:
        """Answers the held POSTs and every later one at once."""
        self._released.set()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
        super().__exit__(*exc_info)

    def posts_per_key(self) -> Counter[str]:
        """How often each Idempotency-Key was POSTed to /v1/events."""
        return Counter(r.headers["idempotency-key"] for r in self.requests_to("POST", "/v1/events"))

    def bodies_of(self, key: str) -> list[object]:
        """The bodies of every POST /v1/events that carried `key`, in arrival order."""
        return [r.body for r in self.requests_to("POST", "/v1/events") if r.headers["idempotency-key"] == key]


def expire_leases(engine: Engine) -> None:
    """What time does for a killed run: its leases expire (set here, instead of waiting them out)."""
    with engine.begin() as conn:
        conn.execute(update(tables.leases).where(tables.leases.c.holder.is_not(None))
                     .values(expires_at=utc_now() - timedelta(days=1)))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    """Polls `condition` (bounded in time) until it holds; fails the test naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout} s")
