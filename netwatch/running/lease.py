"""A lease row held by one process: acquired once, renewed in the background, checked inside commits.

Lease times come from the database server's clock (`server_now`), so a node whose clock is off
can neither take a live run's lease nor keep one past its expiry. How long this process may still
trust its lease is measured on the monotonic clock, which no clock step moves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from netwatch.db import leases
from netwatch.errors import LeaseHeld

log = logging.getLogger(__name__)

ServerClock = Callable[[Connection], datetime]


class Lease:
    """A job's lease row: acquired once, renewed in the background, checked inside the commit."""

    def __init__(self, engine: Engine, name: str, holder: str, ttl_seconds: float, server_now: ServerClock,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.monotonic = monotonic
        self.name = name
        self.holder = holder
        self.ttl_seconds = ttl_seconds
        self.server_now = server_now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False
        self._trusted_until: float | None = None  # time.monotonic()

    def try_acquire(self) -> bool:
        """Claims the lease if it is free, expired or ours; False when another run holds it.

        Each step is a transaction of its own (see leases.claim_lease); the row is created the
        first time a lease of this name is claimed.
        """
        if self._claim():
            return True
        with self.engine.begin() as conn:
            leases.ensure_lease_row(conn, self.name)
        return self._claim()

    def _claim(self) -> bool:
        started = self.monotonic()
        with self.engine.begin() as conn:
            if not leases.claim_lease(conn, self.name, self.holder, self.server_now(conn), self.ttl_seconds):
                return False
        self._trust_from(started)
        return True

    def _trust_from(self, started: float) -> None:
        # Counted from before the statement was sent: the server's expiry is no earlier than that.
        # A run whose renewals keep failing stops trusting the lease a third of the TTL before it
        # expires (one renewal period: room for a late renewal), before another run can take it.
        self._trusted_until = started + self.ttl_seconds * 2 / 3

    def valid(self) -> bool:
        """Whether this process may still act as the holder: not taken, and not near its expiry."""
        if self.lost or self._trusted_until is None:
            return False
        return self.monotonic() < self._trusted_until

    def acquire(self) -> None:
        """Claims the lease or raises LeaseHeld naming the current holder."""
        if self.try_acquire():
            return
        with self.engine.begin() as conn:
            current = leases.read_lease(conn, self.name)
        until = current.expires_at.isoformat() if current.expires_at else "unknown"
        raise LeaseHeld(f"another run holds the {self.name} lease ({current.holder}, until {until}); exiting")

    def keep_renewed(self) -> None:
        """Renews every third of the TTL until `release`, on its own connection."""
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def _renew(self, conn: Connection) -> bool:
        started = self.monotonic()
        if not leases.renew_lease(conn, self.name, self.holder, self.server_now(conn), self.ttl_seconds):
            return False
        self._trust_from(started)
        return True

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_seconds / 3):
            try:
                with self.engine.begin() as conn:
                    if not self._renew(conn):
                        self.lost = True
                        log.warning("lease %s was taken by another run", self.name)
                        return
            except SQLAlchemyError as exc:
                log.warning("could not renew lease %s: %s", self.name, type(exc).__name__)

    def fence(self, conn: Connection) -> None:
        """Inside the job's transaction: renews the lease or raises so the commit never happens."""
        if self.lost or not self._renew(conn):
            raise LeaseHeld(f"lost the {self.name} lease to another run; nothing committed")

    def release(self) -> None:
        """Frees the lease; best effort: if the database is gone, it expires on its own."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            with self.engine.begin() as conn:
                leases.release_lease(conn, self.name, self.holder)
        except SQLAlchemyError as exc:
            log.warning("could not release lease %s (it expires by itself): %s", self.name, type(exc).__name__)
